// The one pod builder of unit and contract tests: a small valid pod, every part overridable.
import type { Container, Pod } from '../../src/kube/types.ts';

export interface PodOptions {
  name?: string;
  namespace?: string;
  uid?: string;
  nodeName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  restartPolicy?: string;
  containers?: Container[];
  initContainers?: Container[];
  activeDeadlineSeconds?: number;
  hostNetwork?: boolean;
  /** Omitted status when null; default Pending/BestEffort. */
  phase?: string | null;
}

export function makePod(o: PodOptions = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name ?? 'p',
      namespace: o.namespace ?? 'default',
      uid: o.uid ?? 'uid-1',
      generation: 1,
      ...(o.labels && { labels: o.labels }),
      ...(o.annotations && { annotations: o.annotations }),
    },
    spec: {
      nodeName: o.nodeName ?? 'vk',
      restartPolicy: o.restartPolicy ?? 'Always',
      containers: o.containers ?? [{ name: 'app', image: 'nginx:1.27', env: [{ name: 'GREETING', value: 'hello' }] }],
      ...(o.initContainers && { initContainers: o.initContainers }),
      ...(o.activeDeadlineSeconds !== undefined && { activeDeadlineSeconds: o.activeDeadlineSeconds }),
      ...(o.hostNetwork && { hostNetwork: true }),
    },
    ...(o.phase !== null && { status: { phase: o.phase ?? 'Pending', qosClass: 'BestEffort' } }),
  };
}
