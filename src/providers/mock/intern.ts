// The mock's copies of its pods share their equal parts. Pods of one workload have the same
// containers, env, tolerations, labels...: the mock keeps one frozen copy of each distinct part,
// for all the pods of all the nodes of the process. A bench pod's copy was ~2 KB, mostly these
// parts and their strings (10,000 pods: two copies of "node.kubernetes.io/not-ready" per pod
// counting the informer's, seven KUBERNETES_* env variables each).
//
// Parts are found by a key built from their content, held weakly: a part no pod uses any more is
// collected, and its entry goes with it. A part's key names its nested parts by their ids, not by
// their content, so keys stay short and need no hashing (a SHA-1 per level cost 80 µs per pod,
// this 27); strings are length-prefixed, so no content can pass for another.
import { setOwn } from '../../util/clone-json.ts';

const parts = new Map<string, WeakRef<object>>();
/** Each held part's id, for the keys of the parts that contain it. Never reused: a collected part's id names nothing. */
const ids = new WeakMap<object, string>();
let nextId = 0;
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
  for (const k of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[k];
    // metadata is per pod too: its own fields stay, its maps (labels, annotations...) are shared.
    setOwn(copy, k, k === 'metadata' && isRecord(v) ? Object.freeze(internedCopy(v)) : intern(v));
  }
  return copy as T;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How a value appears in the key of the part holding it: a part by its id, a string by length and content. */
function keyOf(v: unknown): string {
  if (typeof v === 'object' && v !== null) return ids.get(v)!;
  return typeof v === 'string' ? `${v.length}:${v}` : `${typeof v}:${String(v)}`;
}

function intern(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  let fresh: unknown[] | Record<string, unknown>;
  let key: string;
  if (Array.isArray(value)) {
    fresh = new Array<unknown>(value.length);
    key = '[';
    for (let i = 0; i < value.length; i++) {
      const item = intern(value[i]);
      fresh[i] = item;
      key += (i > 0 ? ',' : '') + keyOf(item);
    }
    key += ']';
  } else {
    fresh = {};
    key = '{';
    for (const k of Object.keys(value)) {
      const item = intern((value as Record<string, unknown>)[k]);
      setOwn(fresh, k, item);
      key += (key.length > 1 ? ',' : '') + `${k.length}:${k}=` + keyOf(item);
    }
    key += '}';
  }
  const known = parts.get(key)?.deref();
  if (known) return known;
  Object.freeze(fresh);
  ids.set(fresh, `#${(nextId++).toString(36)}`);
  parts.set(key, new WeakRef(fresh));
  forget.register(fresh, key);
  return fresh;
}
