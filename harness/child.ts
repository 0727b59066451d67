/**
 * A child process as the orchestrator sees it: the messages it sent over IPC and the lines it
 * printed, both kept in order; waits for one of them that are bounded and fail naming what did not
 * happen; typed calls that the child answers with harness/parent.ts; and its exit. Each child leads
 * its own process group, so that killing it also kills what it started (node:cluster workers), and
 * none outlives the orchestrator.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
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

/** A message over the IPC channel, told apart by its `type`. */
export interface Message {
  readonly type: string;
}

/** Call name → its arguments and result, for a child that answers calls with `answerCalls`. */
export type CallMap<C> = { [K in keyof C]: { args: unknown; result: unknown } };

/** A call from the orchestrator; its reply echoes `seq`. */
export interface CallMessage {
  readonly type: 'call';
  readonly seq: number;
  readonly call: string;
  readonly args: unknown;
}

/** A child's reply to a call: its result, or why it failed. */
export interface ReplyMessage {
  readonly type: 'reply';
  readonly seq: number;
  readonly result?: unknown;
  readonly error?: string;
}

/** How to start a TypeScript child: its arguments, environment, Node flags, a core, its output and IPC. */
export interface StartOptions {
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Node flags beyond the ts-node hook (`--expose-gc`). */
  readonly nodeFlags?: readonly string[];
  /** Pins the process to this core with taskset(1), so that it shares it with no other child. */
  readonly cpu?: number | null;
  /** `lines` (the default) reads its stdout and stderr line by line; `inherit` passes them through. */
  readonly output?: 'lines' | 'inherit';
  /** An IPC channel for messages and calls (default true). */
  readonly ipc?: boolean;
}

/** Every child whose output is still open. */
const live = new Set<{ readonly pid: number; readonly name: string; describeExit(): string; kill(): Promise<void> }>();

/** A running child process, what it sent and printed, and how it ended. */
export class Child<M extends Message = Message, Calls extends CallMap<Calls> = Record<string, never>> {
  readonly lines: Line[] = [];
  readonly messages: Message[] = [];
  readonly pid: number;
  /** When the orchestrator learned of its exit (Date.now()). */
  exitedAt: number | undefined;
  private exit: Exit | undefined;
  /** It has exited and its output and IPC channel are closed: nothing more will arrive. */
  private closed = false;
  private calls = 0;
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
    process.on('message', (message: Message) => {
      this.messages.push(message);
      this.wake();
    });
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
      this.lines.push({ at: Date.now(), text: `[harness: ${error.message}]` });
      this.exit ??= { code: null, signal: null };
      this.exitedAt ??= Date.now();
      this.wake();
    });
  }

  /** How it ended, once it has. */
  get exited(): Exit | undefined {
    return this.exit;
  }

  /** Sends `message` over the IPC channel, unless the channel is gone. */
  send(message: object): void {
    if (this.process.connected) this.process.send(message);
  }

  /**
   * Its first message of `type`; rejects after `timeoutMs`, once it can send nothing more, or when
   * it has sent a `fatal` message, saying which.
   */
  next<T extends M['type']>(type: T, timeoutMs: number): Promise<Extract<M, { type: T }>> {
    return this.until(`its '${type}' message`, timeoutMs, () => {
      const message = this.messages.find((candidate) => candidate.type === type || candidate.type === 'fatal');
      if (message?.type === 'fatal' && type !== 'fatal') {
        throw new Error(
          `${this.name} (pid ${this.pid}) failed before its '${type}' message: ${String((message as { error?: unknown }).error)}`,
        );
      }
      return message as Extract<M, { type: T }> | undefined;
    });
  }

  /** Calls `call` in the child and resolves with its result; rejects with its error, or after `timeoutMs`. */
  async call<K extends keyof Calls & string>(call: K, args: Calls[K]['args'], timeoutMs: number): Promise<Calls[K]['result']> {
    const seq = ++this.calls;
    this.send({ type: 'call', seq, call, args } satisfies CallMessage);
    const reply = await this.until(`a reply to '${call}'`, timeoutMs, () =>
      this.messages.find((message): message is ReplyMessage => message.type === 'reply' && (message as ReplyMessage).seq === seq),
    );
    if (reply.error !== undefined) throw new Error(`${this.name}: ${reply.error}`);
    return reply.result;
  }

  /**
   * The first line from index `from` on that matches `pattern`; rejects after `timeoutMs`, or once
   * the child can print nothing more, with an error that names `what` did not happen.
   */
  waitForLine(pattern: RegExp, what: string, timeoutMs: number, from = 0): Promise<{ match: RegExpMatchArray; index: number }> {
    return this.until(what, timeoutMs, () => {
      for (let index = from; index < this.lines.length; index++) {
        const match = (this.lines[index] as Line).text.match(pattern);
        if (match !== null) return { match, index };
      }
      return undefined;
    });
  }

  /** How it ended, or undefined if it is still running after `timeoutMs`. */
  exits(timeoutMs: number): Promise<Exit | undefined> {
    return this.poll(timeoutMs, () => this.exit);
  }

  /** True once its output and IPC channel are closed (all it sent has been read), within `timeoutMs`. */
  async outputClosed(timeoutMs: number): Promise<boolean> {
    return (await this.poll(timeoutMs, () => (this.closed ? true : undefined))) ?? false;
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

  /** `found()` once it gives a value, or undefined after `timeoutMs` or once nothing more can arrive. */
  private async poll<T>(timeoutMs: number, found: () => T | undefined): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = found();
      const left = deadline - Date.now();
      if (value !== undefined || left <= 0 || this.closed) return value;
      await this.sleepUntilWoken(left);
    }
  }

  /** `found()` once it gives a value; rejects naming `what` did not happen, and why, if it never does. */
  private async until<T>(what: string, timeoutMs: number, found: () => T | undefined): Promise<T> {
    const value = await this.poll(timeoutMs, found);
    if (value !== undefined) return value;
    const why = this.closed ? `it ${this.describeExit()} first` : `not within ${timeoutMs} ms`;
    const printed = this.process.stdout === null ? '' : `; its last lines:\n${this.tail(8)}`;
    throw new Error(`${this.name} (pid ${this.pid}): ${what} did not happen: ${why}${printed}`);
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

/** Starts the TypeScript file `file` (an absolute path) under ts-node, in its own process group. */
export function startTs<M extends Message = Message, Calls extends CallMap<Calls> = Record<string, never>>(
  name: string,
  file: string,
  options: StartOptions = {},
): Child<M, Calls> {
  const node = [process.execPath, '-r', tsNodeHook, ...(options.nodeFlags ?? []), file, ...(options.args ?? [])];
  const command =
    options.cpu === undefined || options.cpu === null ? node : ['taskset', '--cpu-list', String(options.cpu), ...node];
  const output = options.output === 'inherit' ? 'inherit' : 'pipe';
  const stdio: StdioOptions = options.ipc === false ? ['ignore', output, output] : ['ignore', output, output, 'ipc'];
  return new Child(
    name,
    spawn(command[0] as string, command.slice(1), { detached: true, stdio, env: { ...process.env, ...options.env } }),
  );
}

/** Starts the program `file` with `args`, in its own process group, its output read line by line. */
export function startBinary(name: string, file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Child {
  return new Child(
    name,
    spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }),
  );
}

/** SIGKILLs every child whose output is still open, and returns what each was doing before, for a report. */
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
