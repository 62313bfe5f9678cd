// What a container "does" on the contract server: its command read as a tiny subset of sh
// (echo, sleep, exit, `while true; do ...; done`, true/false/cat), enough for the conformance
// suite's busybox commands, giving its log lines over time, how long it runs and its exit code.
// No process runs; this is the simulated backend behind the ARM contract.

export interface Program {
  /** Log lines of one run, each with the time (ms from start) it is printed. */
  lines: { atMs: number; text: string }[];
  /** A loop that never ends: from `startMs` on, `body` lines every `periodMs`. */
  loop?: { startMs: number; periodMs: number; body: { offsetMs: number; text: string }[] };
  /** How long a run lasts (Infinity: until deleted). */
  durationMs: number;
  exitCode: number;
}

/** Splits on top-level `;`, `&&` and newlines (quotes kept whole), then rejoins `while …; do …; done` blocks. */
function statements(script: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quote: string | undefined;
  for (let i = 0; i < script.length; i++) {
    const ch = script[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      current += ch;
    } else if (ch === ';' || ch === '\n' || (ch === '&' && script[i + 1] === '&')) {
      if (ch === '&') i++;
      parts.push(current.trim());
      current = '';
    } else current += ch;
  }
  parts.push(current.trim());
  const out: string[] = [];
  let depth = 0;
  let block: string[] = [];
  for (const part of parts.filter(Boolean)) {
    if (/^(while|until|for)\b/.test(part)) depth++;
    if (depth > 0) {
      block.push(part);
      if (/^done\b/.test(part)) depth--;
      if (depth === 0) {
        out.push(block.join('; '));
        block = [];
      }
    } else out.push(part);
  }
  if (block.length) out.push(block.join('; '));
  return out;
}

function unquote(text: string): string {
  return text.replace(/^(["'])(.*)\1$/s, '$2');
}

interface Run {
  t: number;
  lines: { atMs: number; text: string }[];
  exit?: number;
  forever?: boolean;
  loop?: Program['loop'];
}

function exec(statement: string, run: Run): void {
  if (run.exit !== undefined || run.forever) return;
  const s = statement.replace(/\s*&$/, '').trim();
  const loop = /^while\s+(?:true|:)\s*;\s*do\s+(.*?);?\s*done$/s.exec(s);
  if (loop) {
    const body: Run = { t: 0, lines: [] };
    for (const inner of statements(loop[1]!)) exec(inner, body);
    run.loop = { startMs: run.t, periodMs: Math.max(body.t, 1000), body: body.lines.map((l) => ({ offsetMs: l.atMs, text: l.text })) };
    run.forever = true;
    return;
  }
  const [word, ...rest] = s.split(/\s+/);
  const arg = rest.join(' ');
  switch (word) {
    case 'echo':
      // Redirected output goes to a file, not the log.
      if (!/(^|\s)>/.test(arg)) run.lines.push({ atMs: run.t, text: unquote(arg) });
      return;
    case 'sleep':
      run.t += Number(rest[0] ?? 0) * 1000;
      return;
    case 'exit':
      run.exit = Number(rest[0] ?? 0);
      return;
    case 'false':
      run.exit = 1;
      return;
    case 'cat':
    case 'httpd':
    case 'nginx':
      run.forever = true;
      return;
    default:
      // trap, wait, true, mkdir, cd, …: take no time and print nothing.
      return;
  }
}

/** The program an ACI container's command array runs (no command: the image's default, which runs until deleted). */
export function programOf(command: string[] | undefined): Program {
  if (!command?.length) return { lines: [], durationMs: Infinity, exitCode: 0 };
  const script = command[0] === 'sh' && command[1] === '-c' ? (command[2] ?? '') : command.join(' ');
  const run: Run = { t: 0, lines: [] };
  for (const s of statements(script)) exec(s, run);
  return {
    lines: run.lines,
    ...(run.loop && { loop: run.loop }),
    durationMs: run.forever ? Infinity : run.t,
    exitCode: run.exit ?? 0,
  };
}

/** The lines a run has printed `elapsedMs` after it started, with their times. */
export function linesAt(program: Program, elapsedMs: number): { atMs: number; text: string }[] {
  const out = program.lines.filter((l) => l.atMs <= elapsedMs);
  const loop = program.loop;
  if (loop) {
    for (let start = loop.startMs; start <= elapsedMs && out.length < 10_000; start += loop.periodMs) {
      for (const l of loop.body) if (start + l.offsetMs <= elapsedMs) out.push({ atMs: start + l.offsetMs, text: l.text });
    }
  }
  return out;
}
