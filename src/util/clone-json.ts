// A deep copy of plain JSON data (what the API and configs hand us: objects, arrays, strings,
// numbers, booleans, null). structuredClone serializes and deserializes through V8's value
// serializer: 17.6 µs for a pod against 3.7 µs for this walk, and a copy is made per pod resolve.

/** A deep copy of `value`; own enumerable properties only, as JSON would keep them. */
export function cloneJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = cloneJson(value[i]);
    return out as T;
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const copy = cloneJson((value as Record<string, unknown>)[key]);
    // JSON.parse makes "__proto__" an own key (a valid ConfigMap key, say); assigning it would set the prototype instead.
    if (key === '__proto__') Object.defineProperty(out, key, { value: copy, enumerable: true, writable: true, configurable: true });
    else out[key] = copy;
  }
  return out as T;
}
