// Configuration of the cluster provider (`--provider cluster --provider-config cluster.yaml`):
// which cluster pods burst into, how namespaces map, and what happens to the scheduling fields
// meant for the source cluster. Unknown fields are rejected and a bad one is named in one line.
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { quantitySchema } from '../../kube/quantity.ts';
import { formatZodError } from '../../util/zod-error.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const namespaceName = z.string().max(63).regex(DNS_LABEL, 'must be a DNS label (lowercase letters, digits, "-")');

const tolerationSchema = z.strictObject({
  key: z.string().optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});

export const DEFAULT_SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

const httpsUrl = z
  .string()
  .refine((text) => URL.canParse(text) && new URL(text).protocol === 'https:', 'must be an https:// URL, e.g. https://target.example:6443');

export const clusterConfigSchema = z
  .strictObject({
    /** Kubeconfig of the target cluster (this or inCluster). */
    kubeconfig: z.string().min(1).optional(),
    /** Context in that kubeconfig (default: its current-context). */
    context: z.string().min(1).optional(),
    /** The target's service-account credentials, as client-go's InClusterConfig reads them, from a given directory and server. */
    inCluster: z
      .strictObject({
        /** The target's API server. */
        server: httpsUrl,
        /** Holds `token` (re-read as it rotates) and `ca.crt`. */
        serviceAccountDir: z.string().min(1).default(DEFAULT_SERVICE_ACCOUNT_DIR),
      })
      .optional(),
    namespaces: z
      .strictObject({
        /** Target namespace = prefix + source namespace, unless `map` names it. */
        prefix: z.string().default(''),
        /** Explicit source → target namespaces; several sources may share one target (names then get a hash suffix). */
        map: z.record(z.string().min(1), namespaceName).default({}),
        /** Create a missing target namespace (labelled as ours); else pods of that namespace fail. */
        create: z.boolean().default(true),
        /** Only these source namespaces may burst (empty: all). */
        allow: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),
    scheduling: z
      .strictObject({
        /** Binds every target pod to this target node, bypassing the target's scheduler (default: the target schedules). */
        nodeName: z.string().min(1).optional(),
        /** Replaces the source pod's nodeSelector (which names source nodes) in the target. */
        nodeSelector: z.record(z.string().min(1), z.string()).default({}),
        /** Replaces the source pod's tolerations (which tolerate the virtual node). */
        tolerations: z.array(tolerationSchema).default([]),
        /** Keep the pod's affinity rules (they usually name source-cluster labels). */
        keepAffinity: z.boolean().default(false),
        /** Keep topologySpreadConstraints. */
        keepTopologySpread: z.boolean().default(false),
        /** priorityClassName: keep, drop, or map source → target names (unmapped ones dropped). */
        priorityClassName: z.union([z.enum(['keep', 'drop']), z.record(z.string().min(1), z.string().min(1))]).default('drop'),
        /** runtimeClassName: keep, drop, or map. */
        runtimeClassName: z.union([z.enum(['keep', 'drop']), z.record(z.string().min(1), z.string().min(1))]).default('keep'),
      })
      .prefault({}),
    /** A cap on the node's capacity (each resource the smaller of this and what the target has free). */
    capacity: z.record(z.string().min(1), quantitySchema).default({}),
    /** Extra node labels, e.g. topology.kubernetes.io/region and /zone of the target. */
    labels: z.record(z.string().min(1), z.string()).default({}),
    /** How often the target's nodes and pods are read for the node's capacity. */
    capacityRefreshMs: z.number().int().min(100).default(30_000),
    /** Deadline of each request to the target. */
    requestTimeoutMs: z.number().int().min(100).default(15_000),
    /** Our pod writes (create, delete, their objects) in flight to the target at once; more wait their turn. */
    maxRequestsInFlight: z.number().int().min(1).default(16),
    streams: z
      .strictObject({
        /** exec/attach/port-forward to the target: WebSocket, SPDY/3.1, or WebSocket with SPDY when the target refuses the WebSocket upgrade. */
        protocol: z.enum(['auto', 'websocket', 'spdy']).default('auto'),
      })
      .prefault({}),
  })
  .check((ctx) => {
    const { kubeconfig, inCluster, context } = ctx.value;
    if ((kubeconfig === undefined) === (inCluster === undefined))
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['kubeconfig'],
        message: 'give the target either a kubeconfig or inCluster credentials (exactly one)',
      });
    if (inCluster && context !== undefined)
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['context'], message: 'a context applies to a kubeconfig, not to inCluster credentials' });
  });

export type ClusterConfig = z.output<typeof clusterConfigSchema>;

/** Validates and defaults the provider config; a bad field throws a one-line ConfigError naming its path. */
export function parseClusterConfig(input: unknown): ClusterConfig {
  const result = clusterConfigSchema.safeParse(input ?? {});
  if (!result.success) throw new ConfigError(`cluster provider config: ${formatZodError(result.error)}`);
  return result.data;
}
