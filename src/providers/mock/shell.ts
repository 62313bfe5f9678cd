// The mock provider's exec: a tiny scripted shell, enough to drive exec end to end.
//
//   sh -c '<script>' (also bash/ash/dash, /bin/...): `;`, newline, `&&` and `||` lists; '...' and "..."
//     quoting, backslash escapes; $VAR, ${VAR} and $? expansion (not inside '...'); `# comment`;
//     redirections >&2 / 1>&2 (to stderr), 2>&1 (stderr to stdout), >/dev/null, 2>/dev/null.
//   sh (no -c) with stdin: reads commands line by line, like an interactive shell; with a TTY it
//     prints a "$ " prompt, echoes what is typed, and handles backspace, Ctrl-C and Ctrl-D.
//   Anything else is one command, argv as given (no shell parsing).
// Commands: echo [-n], cat (stdin to stdout until EOF), exit [N], hostname (the pod's name),
// printenv [VAR...], env, sleep N (seconds; ends early when the session is aborted), true,
// false, pwd. Unknown: "sh: <cmd>: not found" on stderr, exit 127.
// With a TTY, stderr goes to stdout and "\n" is written as "\r\n", as a terminal would show it.
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidRequestError } from '../../errors.ts';
import { waitForDrain } from '../../util/streams.ts';

export interface ShellIO {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty: boolean;
  signal: AbortSignal;
  env: Record<string, string>;
  hostname: string;
}

type Part = { text: string; expand: boolean };
type Token =
  | { kind: 'word'; parts: Part[] }
  | { kind: 'op'; op: ';' | '&&' | '||' }
  | { kind: 'redir'; redir: 'stdout>stderr' | 'stderr>stdout' | 'stdout>null' | 'stderr>null' };

/** A script the mock shell cannot parse (VK_INVALID_REQUEST); the shell reports it on stderr with exit 2. */
export class ShellSyntaxError extends InvalidRequestError {}

const SHELLS = new Set(['sh', 'bash', 'ash', 'dash']);
const REDIRECTIONS: [RegExp, Extract<Token, { kind: 'redir' }>['redir']][] = [
  [/^1?>&2/, 'stdout>stderr'],
  [/^2>&1/, 'stderr>stdout'],
  [/^2>\s*\/dev\/null/, 'stderr>null'],
  [/^1?>\s*\/dev\/null/, 'stdout>null'],
];

export function tokenize(script: string): Token[] {
  const tokens: Token[] = [];
  let parts: Part[] | undefined;
  const endWord = () => {
    if (parts) tokens.push({ kind: 'word', parts });
    parts = undefined;
  };
  const add = (text: string, expand: boolean) => {
    parts ??= [];
    const last = parts.at(-1);
    if (last && last.expand === expand) last.text += text;
    else parts.push({ text, expand });
  };
  let i = 0;
  while (i < script.length) {
    const ch = script[i]!;
    const rest = script.slice(i);
    if (ch === ' ' || ch === '\t' || ch === '\r') {
      endWord();
      i++;
    } else if (ch === '\n' || ch === ';') {
      endWord();
      tokens.push({ kind: 'op', op: ';' });
      i++;
    } else if (rest.startsWith('&&') || rest.startsWith('||')) {
      endWord();
      tokens.push({ kind: 'op', op: rest.slice(0, 2) as '&&' | '||' });
      i += 2;
    } else if (ch === '#' && !parts) {
      const nl = script.indexOf('\n', i);
      i = nl < 0 ? script.length : nl;
    } else if (!parts && REDIRECTIONS.some(([re]) => re.test(rest))) {
      const [re, redir] = REDIRECTIONS.find(([r]) => r.test(rest))!;
      tokens.push({ kind: 'redir', redir });
      i += re.exec(rest)![0].length;
    } else if (ch === "'") {
      const end = script.indexOf("'", i + 1);
      if (end < 0) throw new ShellSyntaxError('unterminated quoted string');
      add(script.slice(i + 1, end), false);
      i = end + 1;
    } else if (ch === '"') {
      let j = i + 1;
      let text = '';
      for (; j < script.length && script[j] !== '"'; j++) {
        if (script[j] === '\\' && '"\\$`'.includes(script[j + 1] ?? '')) {
          if (text) add(text, true);
          text = '';
          add(script[j + 1]!, false);
          j++;
        } else {
          text += script[j];
        }
      }
      if (j >= script.length) throw new ShellSyntaxError('unterminated quoted string');
      add(text, true);
      i = j + 1;
    } else if (ch === '\\') {
      if (script[i + 1] === '\n')
        i += 2; // line continuation
      else {
        add(script[i + 1] ?? '', false);
        i += 2;
      }
    } else if (ch === '&' || ch === '|' || ch === '<' || ch === '>' || ch === '(' || ch === ')') {
      throw new ShellSyntaxError(`syntax error: "${ch}" is not supported by the mock shell`);
    } else {
      add(ch, true);
      i++;
    }
  }
  endWord();
  return tokens;
}

function expand(parts: Part[], env: Record<string, string>, status: number): string {
  return parts
    .map((p) =>
      p.expand
        ? p.text.replace(/\$(\?|[A-Za-z_]\w*|\{[A-Za-z_]\w*\})/g, (_m, name: string) =>
            name === '?' ? String(status) : (env[name.replace(/[{}]/g, '')] ?? ''),
          )
        : p.text,
    )
    .join('');
}

/** Buffered stdin that several commands (and the interactive loop) read in turn. */
class Input {
  private readonly iterator: AsyncIterator<Buffer | string> | undefined;
  private readonly pending: Buffer[] = [];
  private ended = false;

  constructor(stream: Readable | undefined) {
    this.iterator = stream?.[Symbol.asyncIterator]() as AsyncIterator<Buffer | string> | undefined;
    if (!stream) this.ended = true;
  }

  async read(signal: AbortSignal): Promise<Buffer | null> {
    const next = this.pending.shift();
    if (next) return next;
    if (this.ended || !this.iterator || signal.aborted) return null;
    const aborted = new Promise<null>((resolve) => signal.addEventListener('abort', () => resolve(null), { once: true }));
    const result = await Promise.race([this.iterator.next().catch(() => ({ done: true as const, value: undefined })), aborted]);
    if (!result || result.done) {
      this.ended = true;
      return null;
    }
    return typeof result.value === 'string' ? Buffer.from(result.value) : result.value;
  }

  unread(buf: Buffer): void {
    if (buf.length) this.pending.unshift(buf);
  }
}

export class MockShell {
  private readonly io: ShellIO;
  private readonly input: Input;
  private status = 0;

  constructor(io: ShellIO) {
    this.io = io;
    this.input = new Input(io.stdin);
  }

  /** Runs argv as a container's exec would; resolves with the exit code. */
  async run(argv: string[]): Promise<number> {
    const name = (argv[0] ?? '').split('/').pop() ?? '';
    if (SHELLS.has(name)) {
      if (argv[1] === '-c') return this.script(argv[2] ?? '');
      if (argv.length === 1) return this.interactive();
    }
    if (argv.length === 0) return 0;
    const result = await this.command(argv, { stdout: 'stdout', stderr: 'stderr' });
    return result.exit ?? result.status;
  }

  private async write(to: 'stdout' | 'stderr' | 'null', text: string | Buffer): Promise<void> {
    if (to === 'null') return;
    const stream = this.io.tty ? this.io.stdout : to === 'stdout' ? this.io.stdout : this.io.stderr;
    if (!stream || stream.destroyed || stream.writableEnded) return;
    const data = this.io.tty
      ? Buffer.from(
          Buffer.isBuffer(text) ? text.toString('latin1').replace(/\r?\n/g, '\r\n') : text.replace(/\r?\n/g, '\r\n'),
          Buffer.isBuffer(text) ? 'latin1' : 'utf8',
        )
      : text;
    if (!stream.write(data)) await waitForDrain(stream, this.io.signal);
  }

  /** Runs a script; `exit` ends it. */
  async script(text: string): Promise<number> {
    return (await this.runScript(text)).code;
  }

  private async runScript(text: string): Promise<{ code: number; exited: boolean }> {
    let tokens: Token[];
    try {
      tokens = tokenize(text);
    } catch (err) {
      await this.write('stderr', `sh: ${(err as Error).message}\n`);
      this.status = 2;
      return { code: 2, exited: false };
    }
    let words: Token[] = [];
    let skip = false;
    const flush = async (): Promise<number | undefined> => {
      const current = words;
      words = [];
      if (skip || current.length === 0) return undefined;
      const argv: string[] = [];
      const target = { stdout: 'stdout' as 'stdout' | 'stderr' | 'null', stderr: 'stderr' as 'stdout' | 'stderr' | 'null' };
      for (const t of current) {
        if (t.kind === 'word') argv.push(expand(t.parts, this.io.env, this.status));
        else if (t.kind === 'redir') {
          if (t.redir === 'stdout>stderr') target.stdout = 'stderr';
          else if (t.redir === 'stderr>stdout') target.stderr = 'stdout';
          else if (t.redir === 'stdout>null') target.stdout = 'null';
          else target.stderr = 'null';
        }
      }
      if (argv.length === 0) return undefined;
      const result = await this.command(argv, target);
      this.status = result.status;
      return result.exit;
    };
    for (const token of tokens) {
      if (this.io.signal.aborted) return { code: 130, exited: true };
      if (token.kind !== 'op') {
        words.push(token);
        continue;
      }
      const exit = await flush();
      if (exit !== undefined) return { code: exit, exited: true };
      skip = token.op === '&&' ? this.status !== 0 : token.op === '||' ? this.status === 0 : false;
    }
    const exit = await flush();
    return exit !== undefined ? { code: exit, exited: true } : { code: this.status, exited: false };
  }

  private async command(
    argv: string[],
    to: { stdout: 'stdout' | 'stderr' | 'null'; stderr: 'stdout' | 'stderr' | 'null' },
  ): Promise<{ status: number; exit?: number }> {
    const [name = '', ...args] = argv;
    const out = (text: string) => this.write(to.stdout, text);
    const err = (text: string) => this.write(to.stderr, text);
    switch (name.split('/').pop()) {
      case 'echo': {
        const noNewline = args[0] === '-n';
        await out(`${(noNewline ? args.slice(1) : args).join(' ')}${noNewline ? '' : '\n'}`);
        return { status: 0 };
      }
      case 'cat': {
        if (args.length > 0 && args[0] !== '-') {
          await err(`cat: ${args[0]}: No such file or directory\n`);
          return { status: 1 };
        }
        return { status: await this.cat(to.stdout) };
      }
      case 'exit': {
        const code = args[0] === undefined ? this.status : Number(args[0]);
        if (!Number.isInteger(code)) {
          await err(`sh: exit: Illegal number: ${args[0]}\n`);
          return { status: 2, exit: 2 };
        }
        return { status: code & 255, exit: code & 255 };
      }
      case 'hostname':
        await out(`${this.io.hostname}\n`);
        return { status: 0 };
      case 'printenv': {
        if (args.length === 0) {
          await out(
            Object.entries(this.io.env)
              .map(([k, v]) => `${k}=${v}\n`)
              .join(''),
          );
          return { status: 0 };
        }
        let status = 0;
        for (const key of args) {
          if (key in this.io.env) await out(`${this.io.env[key]}\n`);
          else status = 1;
        }
        return { status };
      }
      case 'env':
        await out(
          Object.entries(this.io.env)
            .map(([k, v]) => `${k}=${v}\n`)
            .join(''),
        );
        return { status: 0 };
      case 'sleep': {
        const seconds = Number(args[0]);
        if (!(seconds >= 0)) {
          await err(`sleep: invalid number '${args[0] ?? ''}'\n`);
          return { status: 1 };
        }
        try {
          await sleep(seconds * 1000, undefined, { signal: this.io.signal });
          return { status: 0 };
        } catch {
          return { status: 130, exit: 130 };
        }
      }
      case 'true':
        return { status: 0 };
      case 'false':
        return { status: 1 };
      case 'pwd':
        await out('/\n');
        return { status: 0 };
      case 'sh':
      case 'bash':
      case 'ash':
      case 'dash':
        if (args[0] === '-c') return { status: await new MockShell({ ...this.io, stdin: undefined }).script(args[1] ?? '') };
        break;
    }
    await this.write(to.stderr, `sh: ${name}: not found\n`);
    return { status: 127 };
  }

  /** stdin to stdout until EOF (with a TTY: Ctrl-D ends it, Ctrl-C interrupts). */
  private async cat(to: 'stdout' | 'stderr' | 'null'): Promise<number> {
    while (true) {
      const chunk = await this.input.read(this.io.signal);
      if (!chunk) return this.io.signal.aborted ? 130 : 0;
      if (this.io.tty) {
        const stop = chunk.findIndex((b) => b === 0x03 || b === 0x04);
        if (stop >= 0) {
          await this.write(to, chunk.subarray(0, stop).toString('latin1').replace(/\r/g, '\n'));
          this.input.unread(chunk.subarray(stop + 1));
          if (chunk[stop] === 0x03) {
            await this.write(to, '^C\n');
            return 130;
          }
          return 0;
        }
        await this.write(to, chunk.toString('latin1').replace(/\r/g, '\n'));
      } else {
        await this.write(to, chunk);
      }
    }
  }

  /** `sh` reading commands from stdin. */
  private async interactive(): Promise<number> {
    const prompt = () => (this.io.tty ? this.write('stdout', '$ ') : Promise.resolve());
    let line = '';
    await prompt();
    while (true) {
      const chunk = await this.input.read(this.io.signal);
      if (!chunk) {
        // EOF: a last line without a newline still runs.
        if (line.trim() && !this.io.tty) return (await this.runScript(line)).code;
        return this.io.signal.aborted ? 130 : this.status;
      }
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]!;
        if (this.io.tty && b === 0x03) {
          line = '';
          await this.write('stdout', '^C\n');
          this.status = 130;
          await prompt();
        } else if (this.io.tty && b === 0x04) {
          if (line === '') {
            await this.write('stdout', 'exit\n');
            return this.status;
          }
        } else if (this.io.tty && (b === 0x7f || b === 0x08)) {
          if (line.length) {
            line = line.slice(0, -1);
            await this.write('stdout', '\b \b');
          }
        } else if (b === 0x0a || (this.io.tty && b === 0x0d)) {
          if (this.io.tty) await this.write('stdout', '\n');
          const text = line;
          line = '';
          // Commands such as cat read the rest of the input themselves.
          this.input.unread(chunk.subarray(i + 1));
          const { code, exited } = await this.runScript(text);
          if (exited) return code;
          await prompt();
          break;
        } else {
          const ch = String.fromCharCode(b);
          line += ch;
          if (this.io.tty) await this.write('stdout', ch);
        }
      }
    }
  }
}
