// What the conformance cases and the suite that runs them share: the case's shape, the context
// a case runs in, and the profile of images. cases.ts and suite.ts both import it; neither
// imports the other's types through the other.
import type { KubeClient } from '../src/kube/client.ts';
import type { Logger } from '../src/log.ts';
import type { Capability, Provider, ResolvedPod } from '../src/providers/provider.ts';

/**
 * What the pods run, for backends that really pull and run images. Every pod's container uses
 * `image` with busybox commands (sh -c '...', sleep, cat, httpd, printenv, exit N), so the image
 * must be a busybox, or another image with those commands. Simulated backends ignore it.
 */
export interface ConformanceProfile {
  /** The image of every pod (default busybox:1.36). */
  image?: string;
  /** The image the update case changes a running pod to; must differ from `image` (default busybox:1.37). */
  updateImage?: string;
}

export const DEFAULT_PROFILE: Required<ConformanceProfile> = { image: 'busybox:1.36', updateImage: 'busybox:1.37' };

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface CaseContext {
  client: KubeClient;
  provider: Provider;
  namespace: string;
  nodeName: string;
  /** kubectl in the suite's namespace. */
  kubectl: (args: string[], input?: string, timeoutMs?: number) => Promise<KubectlResult>;
  kubectlBinary: string;
  kubeconfig: string;
  inspect?: (namespace: string, name: string) => Promise<ResolvedPod | undefined>;
  restart?: { stop(): Promise<void>; start(): Promise<void> };
  /** The images the pods use. */
  profile: Required<ConformanceProfile>;
  /** Aborted when the case times out. */
  signal: AbortSignal;
  log: Logger;
}

export interface ConformanceCase {
  name: string;
  /** core: what every provider must do; lifecycle: pod semantics; capability: an optional method; resilience: failures of the backend. */
  tier: 'core' | 'lifecycle' | 'capability' | 'resilience';
  description: string;
  /** Optional Provider methods the case needs (a typo does not compile). */
  capabilities?: Capability[];
  /** What the case needs of the target. */
  needs?: ('inspect' | 'restart' | 'simulated')[];
  run(ctx: CaseContext): Promise<void>;
}
