// Env vars from the downward API's status.podIP / status.podIPs: the core resolves env before the
// sandbox has given the pod its address, so they would be empty. The kubelet resolves env when it
// starts the container, after the pod's network exists; the sandbox fills them in at that point.
// ($(VAR) references to them in command and args were expanded earlier and keep the empty value.)
import type { Container } from '../../kube/types.ts';
import { podIPEnvFields } from '../../resolve/fieldref.ts';

/** `env` (NAME=value entries) with the pod-IP fields of `original`'s env set to `podIPs`. */
export function withPodIPs(env: readonly string[], original: Container | undefined, podIPs: readonly string[]): string[] {
  if (podIPs.length === 0) return [...env];
  const fields = podIPEnvFields(original);
  if (fields.size === 0) return [...env];
  return env.map((entry) => {
    const name = entry.slice(0, entry.indexOf('='));
    const field = fields.get(name);
    if (field === undefined) return entry;
    return `${name}=${field === 'status.podIP' ? podIPs[0]! : podIPs.join(',')}`;
  });
}
