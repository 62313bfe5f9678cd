// The mock's copies of its pods share their equal parts. Pods of one workload have the same
// containers, env, tolerations, labels...: the mock keeps one frozen copy of each distinct part,
// for all the pods of all the nodes of the process. A bench pod's copy was ~2 KB, mostly these
// parts and their strings (10,000 pods: two copies of "node.kubernetes.io/not-ready" per pod
// counting the informer's, seven KUBERNETES_* env variables each).
//
// Parts are found by a key built from their content (short keys as they are, longer ones as a
// SHA-1), held weakly: a part no pod uses any more is collected, and its entry goes with it.
import { createHash } from 'node:crypto';

/** A key longer than this is hashed (keys are kept, one per distinct part). */
const MAX_PLAIN_KEY = 64;

const parts = new Map<string, WeakRef<object>>();
const forget = new FinalizationRegistry<string>((key) => {
  if (parts.get(key)?.deref() === undefined) parts.delete(key);
});

/** Distinct parts held now (for tests). */
export function internedParts(): number {
  return parts.size;
}

/**
 * A deep copy of `value` (plain JSON data) that shares its objects and arrays with earlier
 * copies where they are equal; everything in it is frozen. The top level is a fresh object,
 * so per-pod fields (name, uid) cost no table entry. Never returns the caller's objects.
 */
export function internedCopy<T extends object>(value: T): T {
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    // metadata is per pod too: its own fields stay, its maps (labels, annotations...) are shared.
    copy[k] = k === 'metadata' && isRecord(v) ? Object.freeze(internedCopy(v)) : intern(v).value;
  }
  return copy as T;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function intern(value: unknown): { value: unknown; key: string } {
  if (typeof value !== 'object' || value === null) return { value, key: JSON.stringify(value) ?? 'undefined' };
  let fresh: unknown[] | Record<string, unknown>;
  let content: string;
  if (Array.isArray(value)) {
    const items = value.map(intern);
    fresh = items.map((i) => i.value);
    content = `[${items.map((i) => i.key).join(',')}]`;
  } else {
    const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, intern(v)] as const);
    fresh = Object.fromEntries(entries.map(([k, i]) => [k, i.value]));
    content = `{${entries.map(([k, i]) => `${JSON.stringify(k)}:${i.key}`).join(',')}}`;
  }
  const key = content.length <= MAX_PLAIN_KEY ? content : `#${createHash('sha1').update(content).digest('base64')}`;
  const known = parts.get(key)?.deref();
  if (known) return { value: known, key };
  Object.freeze(fresh);
  parts.set(key, new WeakRef(fresh));
  forget.register(fresh, key);
  return { value: fresh, key };
}
