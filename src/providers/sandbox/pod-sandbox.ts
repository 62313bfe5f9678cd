// A pod's sandbox: the pause process holding its namespaces, its hostname, its network (or
// loopback only with hostNetwork), /dev/shm and the /etc files its containers bind.
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, VkError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { ResolvedPod } from '../provider.ts';
import type { SandboxConfig } from './config.ts';
import { PodNetworks, type PodNetwork } from './network.ts';
import type { PodEventReporter } from '../support/pod-events.ts';
import { startPause, stopPause, type PauseProcess } from './pause.ts';
import { podIP } from './pod-status.ts';
import type { PodRecordState } from './state.ts';
import { applySysctls } from './sysctls.ts';
import { podHostname, writePodEtc, writeVolumes } from './volumes.ts';
import { podResolvConf, type ResolvConf } from '../../network/dns/resolv-conf.ts';

/** How many /30s held by another provider or node a sandbox start skips before it gives up. */
const MAX_TAKEN_SLOTS = 256;

/** The kubelet's DNS inputs: --cluster-dns (asked per pod: kube-dns may appear later), --cluster-domain, --resolv-conf. */
export interface PodDnsSettings {
  clusterDNS(): string[];
  clusterDomain: string;
  host: ResolvConf | undefined;
}

export interface SandboxHost {
  readonly tools: SandboxConfig['tools'];
  readonly networks: PodNetworks;
  readonly hostIP: string;
  readonly dns: PodDnsSettings;
  readonly events: PodEventReporter;
  readonly log: Logger;
}

/**
 * Creates the sandbox of the pod in `dir` and records it in `state` (saved through `save` as
 * soon as the pause process exists, so a crash cannot lose it; marked `creating` until it is
 * complete). Throws when any part fails; the caller tears down what was made.
 */
export async function createSandbox(host: SandboxHost, dir: string, state: PodRecordState, resolved: ResolvedPod, save: () => void): Promise<void> {
  const pod = state.pod;
  const t0 = performance.now();
  // The pod's shared memory and volume directories are made while its pause process starts.
  const files = (async () => {
    await mkdir(path.join(dir, 'shm'), { recursive: true });
    await chmod(path.join(dir, 'shm'), 0o1777);
    await writeVolumes(dir, resolved.volumes);
    return performance.now();
  })();
  files.catch(() => {}); // awaited below
  // The pause process comes up with the pod's network and hostname (network.ts); a /30 another
  // provider holds is skipped.
  const errFile = path.join(dir, 'sandbox-setup.err');
  let pause: PauseProcess | undefined;
  let network: PodNetwork | undefined;
  try {
    for (let taken = 0; ; taken++) {
      network = pod.spec?.hostNetwork ? undefined : host.networks.claim();
      try {
        pause = await startPause(host.tools, dir, { ...host.networks.setup(network, podHostname(pod)), errFile });
        break;
      } catch (err) {
        if (network) host.networks.release(network);
        if (!PodNetworks.slotTaken(err)) throw err;
        if (taken === MAX_TAKEN_SLOTS)
          throw new VkError('VK_PROVIDER', `${MAX_TAKEN_SLOTS} /30s of the pod CIDR in a row are taken by other interfaces`, { cause: err });
      }
    }
  } finally {
    // Nothing writes into the pod's directory once this has thrown.
    if (!pause) await files.catch(() => {});
  }
  const t2 = performance.now();
  const sandbox: NonNullable<PodRecordState['sandbox']> = { pause, readyAt: Date.now(), creating: true, ...(network && { network }) };
  state.sandbox = sandbox;
  save();
  const t1 = await files;
  const dns = podResolvConf(pod, { clusterDNS: host.dns.clusterDNS(), clusterDomain: host.dns.clusterDomain, host: host.dns.host });
  // The kubelet records these as Warning Events on the pod.
  const ref = { namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' };
  for (const warning of dns.warnings) host.events.report({ ...ref, type: 'Warning', reason: warning.reason, message: warning.message });
  // Independent of each other: forwarding on the host end, the pod's sysctls, its /etc files.
  const t3 = performance.now();
  // All settled before a failure is thrown: nothing writes into the pod's directory once this has thrown.
  const steps = await Promise.allSettled([
    network && host.networks.enableForwarding(network),
    applySysctls(host.tools, pause.pid, pod.spec?.securityContext?.sysctls ?? []),
    writePodEtc(dir, pod, podIP(state, host.hostIP), dns.text, host.dns.clusterDomain),
  ]);
  const failed = steps.find((step) => step.status === 'rejected');
  if (failed) throw failed.reason;
  const t4 = performance.now();
  // Complete: saved with the next change of the record (the caller's, before any container starts).
  delete sandbox.creating;
  const ms = (a: number, b: number) => Math.round(b - a);
  host.log.info(
    {
      pausePid: pause.pid,
      podIP: sandbox.network?.podIP,
      ms: { files: ms(t0, t1), pauseAndNetwork: ms(t0, t2), forwardingSysctlsEtc: ms(t3, t4) },
    },
    'pod sandbox created',
  );
}

/** Stops the pause process and removes the pod's network; forgets the sandbox in `state`. */
export async function teardownSandbox(host: SandboxHost, state: PodRecordState): Promise<void> {
  const sandbox = state.sandbox;
  if (!sandbox) return;
  await stopPause(sandbox.pause);
  if (sandbox.network) {
    try {
      await host.networks.detach(sandbox.network);
    } catch (err) {
      host.log.warn({ err: errorMessage(err) }, 'could not remove the pod network');
    }
  }
  state.sandbox = undefined;
}
