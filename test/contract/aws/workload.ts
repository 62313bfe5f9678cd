// What a container "does" inside the contract server: a small interpreter for the busybox
// commands the tests and the conformance suite run (sh -c with echo, printenv, sleep, exit, trap
// and `while true; do ...; done`; plain sleep/echo/true/false). Anything else runs until stopped,
// as a server would. Output lines go to the container's CloudWatch Logs stream.
import { setTimeout as sleep } from 'node:timers/promises';

type Step =
  | { kind: 'echo'; text: string }
  | { kind: 'printenv'; name: string }
  | { kind: 'sleep'; ms: number }
  | { kind: 'exit'; code: number }
  | { kind: 'status'; code: number }
  | { kind: 'forever' }
  | { kind: 'loop'; body: Step[] };

export interface Program {
  steps: Step[];
  /** `trap "exit 0" TERM`: a stop request makes it exit 0 instead of being killed (137). */
  trapsTerm: boolean;
}

/** Splits a shell script into statements on ; & and newlines, keeping quoted text together. */
function statements(script: string): string[] {
  const out: string[] = [];
  let current = '';
  let quote: string | undefined;
  for (const ch of script) {
    if (quote) {
      if (ch === quote) quote = undefined;
      current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      current += ch;
    } else if (ch === ';' || ch === '&' || ch === '\n') {
      out.push(current.trim());
      current = '';
    } else current += ch;
  }
  out.push(current.trim());
  return out.filter(Boolean);
}

function words(statement: string): string[] {
  const out: string[] = [];
  for (const m of statement.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

function command(argv: string[]): Step[] {
  const [name, ...args] = argv;
  switch (name) {
    case 'echo':
      return [{ kind: 'echo', text: args.join(' ') }];
    case 'printenv':
      return [{ kind: 'printenv', name: args[0] ?? '' }];
    case 'sleep':
      return [{ kind: 'sleep', ms: Math.round(Number(args[0] ?? 0) * 1000) }];
    case 'exit':
      return [{ kind: 'exit', code: Number(args[0] ?? 0) }];
    case 'true':
    case ':':
    case 'wait':
    case 'mkdir':
      return [{ kind: 'status', code: 0 }];
    case 'false':
      return [{ kind: 'status', code: 1 }];
    default:
      return [{ kind: 'forever' }];
  }
}

function parseScript(script: string, program: Program): Step[] {
  const list = statements(script);
  const steps: Step[] = [];
  for (let i = 0; i < list.length; i++) {
    const statement = list[i]!;
    if (/^trap\s/.test(statement)) {
      if (/exit 0/.test(statement) && /TERM/.test(statement)) program.trapsTerm = true;
      continue;
    }
    if (/^while\s+(true|:)$/.test(statement)) {
      const body: string[] = [];
      for (i++; i < list.length && list[i] !== 'done'; i++) body.push(list[i]!.replace(/^do\s+/, ''));
      steps.push({ kind: 'loop', body: parseScript(body.join(';'), program) });
      continue;
    }
    steps.push(...command(words(statement)));
  }
  return steps;
}

/** The program a container runs: entryPoint then command, as Docker joins them. */
export function parseProgram(argv: string[]): Program {
  const program: Program = { steps: [], trapsTerm: false };
  const shell = argv[0] === 'sh' || argv[0] === '/bin/sh';
  if (shell && argv[1] === '-c') program.steps = parseScript(argv[2] ?? '', program);
  else if (argv.length === 0) program.steps = [{ kind: 'forever' }];
  else program.steps = command(argv);
  return program;
}

class Exit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}

/** One run of a program; `stop` is SIGTERM (exit 0 when trapped, else killed: 137). */
export class ProcessSim {
  private readonly program: Program;
  private readonly env: Record<string, string>;
  private readonly abort = new AbortController();
  private exited = false;
  private readonly onLine: (text: string) => void;
  private readonly onExit: (code: number) => void;

  constructor(program: Program, env: Record<string, string>, onLine: (text: string) => void, onExit: (code: number) => void) {
    this.program = program;
    this.env = env;
    this.onLine = onLine;
    this.onExit = onExit;
  }

  start(): void {
    void this.run(this.program.steps).then(
      (status) => this.finish(status),
      (err: unknown) => {
        if (err instanceof Exit) this.finish(err.code);
        // An abort is a stop: stop() has reported the exit already.
      },
    );
  }

  stop(): void {
    if (this.exited) return;
    this.abort.abort();
    this.finish(this.program.trapsTerm ? 0 : 137);
  }

  private finish(code: number): void {
    if (this.exited) return;
    this.exited = true;
    this.onExit(code);
  }

  private expand(text: string): string {
    return text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => this.env[name] ?? '');
  }

  private async run(steps: Step[]): Promise<number> {
    let status = 0;
    for (const step of steps) {
      this.abort.signal.throwIfAborted();
      switch (step.kind) {
        case 'echo':
          this.onLine(this.expand(step.text));
          status = 0;
          break;
        case 'printenv':
          if (this.env[step.name] !== undefined) this.onLine(this.env[step.name]!);
          status = this.env[step.name] !== undefined ? 0 : 1;
          break;
        case 'sleep':
          await sleep(step.ms, undefined, { signal: this.abort.signal });
          status = 0;
          break;
        case 'exit':
          throw new Exit(step.code);
        case 'status':
          status = step.code;
          break;
        case 'forever':
          await sleep(2 ** 31 - 1, undefined, { signal: this.abort.signal });
          break;
        case 'loop':
          for (;;) {
            await this.run(step.body);
            // A loop without a sleep would spin the server's event loop.
            if (!step.body.some((s) => s.kind === 'sleep' || s.kind === 'forever')) await sleep(50, undefined, { signal: this.abort.signal });
          }
      }
    }
    return status;
  }
}
