// A provider's report of a pod Event (PodEvent), checked before it becomes a core/v1 Event:
// it must be about the pod incarnation the API holds, its reason must look like the kubelet's
// (CamelCase, what `kubectl get events --field-selector reason=…` matches on), and its message
// is cut to the length events.k8s.io allows. Pure, so the rules are tested on their own.
import type { Pod } from '../kube/types.ts';
import type { PodEvent } from '../providers/provider.ts';
import { rfc3339 } from '../version.ts';
import type { EventDetails, EventType } from './events.ts';

/** events.k8s.io's limits on reason and note (the core/v1 API checks neither, so we do). */
export const MAX_REASON_LENGTH = 128;
export const MAX_MESSAGE_BYTES = 1024;
const CAMEL_CASE = /^[A-Z][A-Za-z0-9]*$/;
/** One report stands for at most this many occurrences (a runaway count is still one Event). */
const MAX_COUNT = 1_000_000;

export type CheckedEvent = { ok: true; type: EventType; reason: string; message: string; details: EventDetails } | { ok: false; why: string };

/** Whether `event` may be recorded against `apiPod` (the API's pod of the same key, if any), and in what form. */
export function checkPodEvent(event: PodEvent, apiPod: Pod | undefined): CheckedEvent {
  if (!apiPod) return { ok: false, why: 'the pod is not in the API' };
  if (apiPod.metadata?.uid !== event.uid) return { ok: false, why: `the event is about uid ${event.uid}, the API holds uid ${apiPod.metadata?.uid}` };
  if (event.type !== 'Normal' && event.type !== 'Warning') return { ok: false, why: `type ${JSON.stringify(event.type)} is neither Normal nor Warning` };
  if (typeof event.reason !== 'string' || !CAMEL_CASE.test(event.reason) || event.reason.length > MAX_REASON_LENGTH)
    return { ok: false, why: `reason ${JSON.stringify(event.reason)} is not a CamelCase word of at most ${MAX_REASON_LENGTH} characters` };
  if (typeof event.message !== 'string') return { ok: false, why: 'the message is not a string' };
  const details: EventDetails = {};
  if (event.count !== undefined) {
    if (!Number.isInteger(event.count) || event.count < 1) return { ok: false, why: `count ${event.count} is not a positive integer` };
    details.count = Math.min(event.count, MAX_COUNT);
  }
  if (event.firstTimestamp !== undefined) {
    const at = event.firstTimestamp.getTime();
    // A time in the future would make the Event look newer than it is: clamp it to now.
    if (Number.isFinite(at)) details.firstTimestamp = rfc3339(new Date(Math.min(at, Date.now())));
  }
  const fieldPath = event.container === undefined ? undefined : containerFieldPath(apiPod, event.container);
  if (fieldPath) details.fieldPath = fieldPath;
  return { ok: true, type: event.type, reason: event.reason, message: truncateMessage(event.message), details };
}

/** `spec.containers{name}` as the kubelet writes it, or undefined for a name the pod does not have. */
export function containerFieldPath(pod: Pod, container: string): string | undefined {
  const spec = pod.spec;
  if (spec?.containers?.some((c) => c.name === container)) return `spec.containers{${container}}`;
  if (spec?.initContainers?.some((c) => c.name === container)) return `spec.initContainers{${container}}`;
  if (spec?.ephemeralContainers?.some((c) => c.name === container)) return `spec.ephemeralContainers{${container}}`;
  return undefined;
}

/** At most MAX_MESSAGE_BYTES of UTF-8, ending in " ..." when cut, never splitting a character. */
export function truncateMessage(message: string): string {
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= MAX_MESSAGE_BYTES) return message;
  const suffix = ' ...';
  let end = MAX_MESSAGE_BYTES - suffix.length;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // back to the start of a character
  return bytes.subarray(0, end).toString('utf8') + suffix;
}
