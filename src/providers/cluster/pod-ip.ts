// What of a target container depends on the pod's address, which only the target's kubelet
// learns: the core resolved it with the address empty (ResolvedPod.podIPTemplates says where).
// status.podIP(s) variables travel as those field refs; a literal value or a command/args that
// uses them travels as written in the source spec, for the target's kubelet to expand. A literal
// travels so only where the target's expansion, at its place in the target's list, gives what the
// source's kubelet would (checked on the template); elsewhere it keeps the empty address.
import type { Container, EnvVar } from '../../kube/types.ts';
import { expand, mappingFor } from '../../resolve/expansion.ts';
import { podIPEnvFields } from '../../resolve/fieldref.ts';
import type { PodIPTemplate } from '../provider.ts';

export interface AddressUse {
  /** Target env entries by name, in place of the resolved value. */
  env: Map<string, EnvVar>;
  command?: string[];
  args?: string[];
}

/**
 * The parts of a container the target's kubelet must compute. `original`: the container as
 * written; `resolved`: its env as the core resolved it, in order; `targetEnv`: the names the
 * target pod lists, in order; `implicitEnv`: what the target's kubelet sets by itself.
 */
export function addressUse(
  original: Container | undefined,
  template: PodIPTemplate | undefined,
  resolved: Pick<Container, 'env' | 'command' | 'args'>,
  targetEnv: readonly string[],
  implicitEnv: ReadonlyMap<string, string>,
): AddressUse {
  const use: AddressUse = { env: new Map() };
  if (!original || !template) return use;
  for (const [name, fieldPath] of podIPEnvFields(original)) use.env.set(name, { name, valueFrom: { fieldRef: { fieldPath } } });

  const templateValues = new Map(template.env.map(({ name, value }) => [name, value]));
  const resolvedValues = new Map((resolved.env ?? []).map(({ name, value }) => [name, value ?? '']));
  const literals = new Map<string, string | undefined>();
  for (const variable of original.env ?? []) literals.set(variable.name, variable.valueFrom ? undefined : (variable.value ?? ''));
  for (const [position, name] of targetEnv.entries()) {
    const literal = literals.get(name);
    if (use.env.has(name) || literal === undefined || templateValues.get(name) === resolvedValues.get(name)) continue;
    // The target's kubelet expands against what its list defines before this entry, then its own service variables.
    const before = new Map(targetEnv.slice(0, position).map((n) => [n, templateValues.get(n) ?? '']));
    if (expand(literal, mappingFor(before, implicitEnv)) === templateValues.get(name)) use.env.set(name, { name, value: literal });
  }
  const differs = (a: string[] | undefined, b: string[] | undefined) => JSON.stringify(a) !== JSON.stringify(b);
  if (original.command && differs(template.command, resolved.command)) use.command = original.command;
  if (original.args && differs(template.args, resolved.args)) use.args = original.args;
  return use;
}
