// Env vars from the downward API's status.podIP / status.podIPs: the core resolves env before the
// sandbox has given the pod its address, so they would be empty. The kubelet resolves env when it
// starts the container, after the pod's network exists; the sandbox fills them in at that point.
// ($(VAR) references to them in command and args were expanded earlier and keep the empty value.)
import type { Container } from '../../kube/types.ts';

/** `env` (NAME=value entries) with the pod-IP fields of `original`'s env set to `podIPs`. */
export function withPodIPs(env: readonly string[], original: Container | undefined, podIPs: readonly string[]): string[] {
  if (podIPs.length === 0) return [...env];
  const values = new Map<string, string>();
  for (const v of original?.env ?? []) {
    const field = v.valueFrom?.fieldRef?.fieldPath;
    if (field === 'status.podIP') values.set(v.name, podIPs[0]!);
    else if (field === 'status.podIPs') values.set(v.name, podIPs.join(','));
  }
  if (values.size === 0) return [...env];
  return env.map((entry) => {
    const name = entry.slice(0, entry.indexOf('='));
    const value = values.get(name);
    return value === undefined ? entry : `${name}=${value}`;
  });
}
