// The pod's address in env, command and args. The kubelet resolves a container's env when it
// starts it, after the pod's network exists, so `status.podIP(s)` env and every $(VAR) that
// refers to them see the address. The core resolves before the provider gives the pod one: the
// ResolvedPod has them empty, and, for a provider that learns the address before it starts the
// container, a template of each such container resolved with placeholders in place of the
// addresses. Filling the placeholders in is exact: expansion only concatenates strings.
import type { Container, Pod } from '../kube/types.ts';
import type { PodIPTemplate, ResolvedPod } from '../providers/provider.ts';
import { expandedCommand, resolveContainerEnv, type EnvContainer } from './env.ts';
import { podIPEnvFields } from './fieldref.ts';
import type { ObjectCache } from './objects.ts';
import type { ResolveContext } from './types.ts';

// NUL cannot reach a process's environment or argv (the sandbox refuses it), so a placeholder
// that is not filled in fails loudly instead of running with a wrong address.
const FIRST = '\0pod-ip-0\0';
const SECOND = '\0pod-ip-1\0';
// status.podIPs of the placeholder context: both, comma-joined, as fieldref.ts joins them.
const ALL = `${FIRST},${SECOND}`;

/** Whether a resolution in `context` leaves this container's pod-IP variables empty. */
export function needsPodIPTemplate(container: EnvContainer, context: ResolveContext): boolean {
  return !context.podIP && !context.podIPs?.length && podIPEnvFields(container).size > 0;
}

/** `container`'s env, command and args resolved with placeholder addresses (see podIPFilled). */
export async function podIPTemplate(
  pod: Pod,
  container: EnvContainer,
  objects: ObjectCache,
  serviceEnv: ReadonlyMap<string, string>,
  context: ResolveContext,
): Promise<PodIPTemplate> {
  const { env } = await resolveContainerEnv(pod, container, objects, serviceEnv, { ...context, podIP: FIRST, podIPs: [FIRST, SECOND] });
  return { containerName: container.name, env, ...expandedCommand(container, env) };
}

/**
 * `container` (of `resolved.pod`) with its env, command and args as the kubelet would resolve
 * them once the pod has `podIPs` (primary first); the container itself when it has no template
 * or there is no address yet.
 */
export function withPodIPs(resolved: ResolvedPod, container: Container, podIPs: readonly string[]): Container {
  const template = resolved.podIPTemplates?.find((t) => t.containerName === container.name);
  if (!template || podIPs.length === 0) return container;
  // ALL first: SECOND appears only within it (status.podIPs), FIRST also alone (status.podIP).
  const fill = (text: string) => text.replaceAll(ALL, podIPs.join(',')).replaceAll(FIRST, podIPs[0]!);
  const filled: Container = { ...container, env: template.env.map(({ name, value }) => ({ name, value: fill(value) })) };
  if (template.command) filled.command = template.command.map(fill);
  if (template.args) filled.args = template.args.map(fill);
  return filled;
}
