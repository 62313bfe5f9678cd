// An ACI container group's instance-view events (per container, and the group's own) → the pod
// Events the provider reports. ACI keeps one entry per kind of event with a count and the time of
// its latest occurrence, and shows them all on every read; NewOccurrences turns that into each
// occurrence reported once.
import type { PodEvent } from '../provider.ts';
import type { NewOccurrences } from '../support/pod-events.ts';
import type { AciEvent, ContainerGroup } from './arm-types.ts';

const CAMEL_CASE = /^[A-Z][A-Za-z0-9]*$/;
/** ACI marks some failures Normal (its own example has FailedMount as Normal): go by the name too. */
const WARNING_NAME = /^(Fail|Err|BackOff|Unhealthy|Inaccessible)|Failed|Error/i;

interface Located {
  /** Where the event lives: `container/<name>`, `init/<name>` or `group`. */
  scope: string;
  container?: string;
  event: AciEvent;
}

function located(group: ContainerGroup): Located[] {
  const props = group.properties;
  const out: Located[] = [];
  for (const c of props.initContainers ?? [])
    for (const event of c.properties.instanceView?.events ?? []) out.push({ scope: `init/${c.name}`, container: c.name, event });
  for (const c of props.containers ?? [])
    for (const event of c.properties.instanceView?.events ?? []) out.push({ scope: `container/${c.name}`, container: c.name, event });
  for (const event of props.instanceView?.events ?? []) out.push({ scope: 'group', event });
  return out;
}

/** ACI's event name as a Kubernetes reason: kept when it already is one, else its words joined in CamelCase. */
export function reasonOf(name: string | undefined): string {
  if (name && CAMEL_CASE.test(name)) return name.slice(0, 128);
  const words = (name ?? '').split(/[^A-Za-z0-9]+/).filter(Boolean);
  const joined = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
  return CAMEL_CASE.test(joined) ? joined.slice(0, 128) : 'ContainerGroupEvent';
}

const keyOf = (l: Located) => `${l.scope}/${l.event.name ?? ''}/${l.event.message ?? ''}`;

/**
 * The occurrences in `group` that `seen` has not reported yet, as pod Events (the group's own
 * events carry no container). `seen` remembers them.
 */
export function newGroupEvents(group: ContainerGroup, seen: NewOccurrences, pod: { namespace: string; name: string; uid: string }): PodEvent[] {
  const events: PodEvent[] = [];
  for (const l of located(group)) {
    const total = l.event.count ?? 1;
    const fresh = seen.take(keyOf(l), total, l.event.lastTimestamp);
    if (fresh === 0) continue;
    const first = fresh >= total && l.event.firstTimestamp ? new Date(l.event.firstTimestamp) : undefined;
    const name = l.event.name ?? '';
    events.push({
      ...pod,
      type: l.event.type === 'Warning' || WARNING_NAME.test(name) ? 'Warning' : 'Normal',
      reason: reasonOf(name),
      message: l.event.message || name || 'container group event',
      ...(l.container && { container: l.container }),
      count: fresh,
      ...(first && !Number.isNaN(first.getTime()) && { firstTimestamp: first }),
    });
  }
  return events;
}

/** Marks every event of `group` as reported (a group adopted after a restart: its history was reported before). */
export function baselineGroupEvents(group: ContainerGroup, seen: NewOccurrences): void {
  seen.baseline(located(group).map((l) => ({ key: keyOf(l), count: l.event.count ?? 1, lastTimestamp: l.event.lastTimestamp })));
}
