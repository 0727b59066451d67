/**
 * The child processes of the e2e run, as the orchestrator sees them: their output line by line,
 * a wait for a line with a deadline that fails naming what did not happen, their exit, and a
 * cleanup that leaves nothing running. Each child leads its own process group, so that killing
 * it also kills what it started (node:cluster workers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** TypeScript without a build step, in every Node child. */
const tsNodeHook = require.resolve('ts-node/register/transpile-only');

/** How a process ended: `code` when it exited, `signal` when a signal ended it. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One line a child wrote, with the orchestrator's clock (ms) when it was read. */
export interface Line {
  readonly at: number;
  readonly text: string;
}

const live = new Set<Child>();

/** A child process and everything it printed (stdout and stderr, in the order read). */
export class Child {
  readonly lines: Line[] = [];
  readonly pid: number;
  /** When the orchestrator learned of its exit (Date.now()). */
  exitedAt: number | undefined;
  private exit: Exit | undefined;
  /** Its stdout and stderr are closed: no line will come any more. */
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly name: string,
    private readonly process: ChildProcess,
  ) {
    if (process.pid === undefined) throw new Error(`${name}: could not be started`);
    this.pid = process.pid;
    live.add(this);
    for (const stream of [process.stdout, process.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (text) => {
        this.lines.push({ at: Date.now(), text });
        this.wake();
      });
    }
    process.on('exit', (code, signal) => {
      this.exit = { code, signal };
      this.exitedAt = Date.now();
      this.wake();
    });
    process.on('close', () => {
      this.closed = true;
      live.delete(this);
      this.wake();
    });
    process.on('error', (error) => {
      this.lines.push({ at: Date.now(), text: `[e2e: ${error.message}]` });
      this.exit ??= { code: null, signal: null };
      this.exitedAt ??= Date.now();
      this.wake();
    });
  }

  /** How it ended, once it has. */
  get exited(): Exit | undefined {
    return this.exit;
  }

  /**
   * The first line from index `from` on that matches `pattern`; rejects after `timeoutMs`, or once
   * the child can print nothing more, with an error that names `what` did not happen.
   */
  async waitForLine(pattern: RegExp, what: string, timeoutMs: number, from = 0): Promise<{ match: RegExpMatchArray; index: number }> {
    const deadline = Date.now() + timeoutMs;
    for (let index = from; ; ) {
      for (; index < this.lines.length; index++) {
        const match = (this.lines[index] as Line).text.match(pattern);
        if (match !== null) return { match, index };
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) {
        const why = this.closed ? `it ${this.describeExit()} first` : `not within ${timeoutMs} ms`;
        throw new Error(`${this.name} (pid ${this.pid}): ${what} did not happen: ${why}; its last lines:\n${this.tail(8)}`);
      }
      await this.sleepUntilWoken(left);
    }
  }

  /** How it ended, or undefined if it is still running after `timeoutMs`. */
  async exits(timeoutMs: number): Promise<Exit | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.exit === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await this.sleepUntilWoken(left);
    }
    return this.exit;
  }

  /** True once its output is closed (all it printed has been read), within `timeoutMs`. */
  async outputClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.sleepUntilWoken(left);
    }
    return true;
  }

  /** Sends `signal` to this process alone (not its group), unless it has exited. */
  signal(signal: NodeJS.Signals): void {
    if (this.exit === undefined) this.process.kill(signal);
  }

  /** SIGKILLs its whole process group, and waits (bounded) until its output has closed. */
  async kill(): Promise<void> {
    killGroup(this.pid);
    await this.outputClosed(5_000);
  }

  /** Its last `count` lines, indented, for an error message. */
  tail(count: number): string {
    const last = this.lines.slice(-count).map((line) => `    ${line.text}`);
    return last.length > 0 ? last.join('\n') : '    (nothing)';
  }

  /** "exited with code 0", "was killed by SIGKILL" or "is still running". */
  describeExit(): string {
    if (this.exit === undefined) return 'is still running';
    return this.exit.signal === null ? `exited with code ${String(this.exit.code)}` : `was killed by ${this.exit.signal}`;
  }

  private sleepUntilWoken(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, timeoutMs);
      this.waiters.add(wake);
    });
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }
}

/** Starts `e2e/<script>` (or any path relative to e2e/) under ts-node with `args` and extra `env`. */
export function startTs(name: string, script: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Child {
  return startBinary(name, process.execPath, ['-r', tsNodeHook, join(__dirname, script), ...args], env);
}

/** Starts the program `file` with `args`, in its own process group, its output piped to us. */
export function startBinary(name: string, file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  return new Child(name, child);
}

/**
 * SIGKILLs every child whose output is still open (it, or a process of its group, still runs);
 * returns what each was doing before, for the report.
 */
export async function killLeftovers(): Promise<string[]> {
  const left = [...live];
  const described = left.map((child) => `${child.name} (pid ${child.pid}) ${child.describeExit()}, its output still open`);
  await Promise.all(left.map((child) => child.kill()));
  return described;
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone already.
  }
}

// Whatever ends the orchestrator, no child outlives it.
process.on('exit', () => {
  for (const child of live) killGroup(child.pid);
});
