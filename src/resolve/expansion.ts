// $(VAR) expansion with the kubelet's rules (third_party/forked/golang/expansion):
// `$$` is an escaped `$`, `$(NAME)` is replaced when NAME is known and left as written
// otherwise, an unclosed `$(` and a `$` before any other character stay literal.

export type Mapping = (name: string) => string | undefined;

/** A mapping that looks names up in each source in turn. */
export function mappingFor(...sources: ReadonlyMap<string, string>[]): Mapping {
  return (name) => {
    for (const source of sources) {
      const found = source.get(name);
      if (found !== undefined) return found;
    }
    return undefined;
  };
}

export function expand(input: string, mapping: Mapping): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    // A trailing lone `$` is copied with the rest.
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    if (next === '$') {
      out += '$';
      cursor += 1;
    } else if (next === '(') {
      const close = input.indexOf(')', cursor + 2);
      if (close === -1) {
        // Incomplete reference: keep `$(` and carry on after it.
        out += '$(';
        cursor += 1;
      } else {
        const name = input.slice(cursor + 2, close);
        out += mapping(name) ?? `$(${name})`;
        cursor = close;
      }
    } else {
      out += '$' + next;
      cursor += 1;
    }
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}
