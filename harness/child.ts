/**
 * A child process as the orchestrator sees it: the messages it sent over IPC and the lines it
 * printed, both kept in order; waits for one of them that are bounded and fail naming what did not
 * happen; typed calls that the child answers with harness/parent.ts; and its exit. Each child leads
 * its own process group, so that killing it also kills what it started (node:cluster workers), and
 * none outlives the orchestrator. And the harness's own two children: its server and its load.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { LoadCalls } from './load';
import type { ServerConfig, ServerEvent } from './protocol';
import type { ServerCalls } from './server';

/** How a process ended: `code` when it exited, `signal` when a signal ended it. */
export type Exit = { readonly code: number | null; readonly signal: NodeJS.Signals | null };
/** One line a child wrote, with the orchestrator's clock (ms) when it was read. */
export type Line = { readonly at: number; readonly text: string };
export type Message = { readonly type: string };
/** Call name → its arguments and result, from the answerers of a child (harness/parent.ts): async functions of the arguments. */
export type CallsOf<A> = {
  [K in keyof A]: A[K] extends (args: infer Args) => Promise<infer Result> ? { args: Args; result: Result } : never;
};
export type CallMessage = { readonly type: 'call'; readonly seq: number; readonly call: string; readonly args: unknown };
export type ReplyMessage = { readonly type: 'reply'; readonly seq: number; readonly result?: unknown; readonly error?: string };
type Calls = Record<string, { args: unknown; result: unknown }>;

/** Every child whose output is still open. */
const live = new Set<{ readonly pid: number; readonly name: string; describeExit(): string; kill(): Promise<void> }>();

/** A running child process, what it sent and printed, and how it ended. */
export class Child<M extends Message = Message, C extends Calls = Calls> {
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
    const read = (text: string): void => this.record(this.lines, { at: Date.now(), text });
    for (const stream of [process.stdout, process.stderr])
      if (stream !== null) createInterface({ input: stream }).on('line', read);
    process.on('message', (message: Message) => this.record(this.messages, message));
    process.on('exit', (code, signal) => this.ended({ code, signal }));
    process.on('error', (error) => this.ended({ code: null, signal: null }, `[harness: ${error.message}]`));
    process.on('close', () => {
      this.closed = true;
      live.delete(this);
      this.wake();
    });
  }

  get exited(): Exit | undefined {
    return this.exit;
  }

  /** Sends `message` over the IPC channel, unless the channel is gone. */
  send(message: object): void {
    if (this.process.connected) this.process.send(message);
  }

  /** Its first message of `type`; rejects after `timeoutMs`, once it can send nothing more, or once it has sent a `fatal` one. */
  next<T extends M['type']>(type: T, timeoutMs: number): Promise<Extract<M, { type: T }>> {
    return this.until(`its '${type}' message`, timeoutMs, () => {
      const message = this.messages.find((candidate) => candidate.type === type || candidate.type === 'fatal');
      if (message?.type !== 'fatal' || type === 'fatal') return message as Extract<M, { type: T }> | undefined;
      const error = String((message as { error?: unknown }).error);
      throw new Error(`${this.name} (pid ${this.pid}) failed before its '${type}' message: ${error}`);
    });
  }

  /** Calls `call` in the child and resolves with its result; rejects with its error, or after `timeoutMs`. */
  async call<K extends keyof C & string>(call: K, args: C[K]['args'], timeoutMs: number): Promise<C[K]['result']> {
    const seq = ++this.calls;
    this.send({ type: 'call', seq, call, args } satisfies CallMessage);
    const reply = await this.until(`a reply to '${call}'`, timeoutMs, () =>
      this.messages.find((message): message is ReplyMessage => message.type === 'reply' && (message as ReplyMessage).seq === seq),
    );
    if (reply.error !== undefined) throw new Error(`${this.name}: ${reply.error}`);
    return reply.result;
  }

  /** The first line from index `from` on that matches `pattern`; rejects naming `what` did not happen. */
  waitForLine(pattern: RegExp, what: string, timeoutMs: number, from = 0): Promise<{ match: RegExpMatchArray; index: number }> {
    return this.until(what, timeoutMs, () => {
      const index = this.lines.findIndex((line, at) => at >= from && pattern.test(line.text));
      return index < 0 ? undefined : { match: (this.lines[index] as Line).text.match(pattern) as RegExpMatchArray, index };
    });
  }

  /** How it ended, or undefined if it is still running after `timeoutMs`. */
  exits(timeoutMs: number): Promise<Exit | undefined> {
    return this.poll(timeoutMs, () => this.exit);
  }

  /** True once its output and IPC channel are closed (all it sent has been read), within `timeoutMs`. */
  async outputClosed(timeoutMs: number): Promise<boolean> {
    return (await this.poll(timeoutMs, () => this.closed || undefined)) ?? false;
  }

  /**
   * Asks a child that answers calls to close its IPC channel: it then has nothing of the harness
   * left to keep it alive, and must exit by itself. (Closed from this side, Node never emits the
   * child's `close`: it counts the channel closed only when it reads the channel's end.)
   */
  disconnect(): void {
    this.send({ type: 'disconnect' });
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

  private ended(exit: Exit, line?: string): void {
    if (line !== undefined) this.lines.push({ at: Date.now(), text: line });
    this.exit ??= exit;
    this.exitedAt ??= Date.now();
    this.wake();
  }

  private record<T>(list: T[], item: T): void {
    list.push(item);
    this.wake();
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** `found()` once it gives a value, or undefined after `timeoutMs` or once nothing more can arrive. */
  private async poll<T>(timeoutMs: number, found: () => T | undefined): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (let value = found(); ; value = found()) {
      const left = deadline - Date.now();
      if (value !== undefined || left <= 0 || this.closed) return value;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
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
}

/** How to start a child; `cpu` pins it to that core with taskset(1); `output: 'inherit'` passes its output through. */
export type StartOptions = {
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly nodeFlags?: readonly string[];
  readonly cpu?: number | null;
  readonly output?: 'lines' | 'inherit';
  readonly ipc?: boolean;
};

/**
 * Starts `file` in its own process group: a TypeScript file (`.ts`) under ts-node's transpile-only
 * hook (no build step), with an IPC channel unless `ipc: false`; any other file as a program.
 */
export function start<M extends Message = Message, C extends Calls = Calls>(
  name: string,
  file: string,
  options: StartOptions = {},
): Child<M, C> {
  const ts = file.endsWith('.ts');
  const { args = [], env, cpu, output, ipc = ts, nodeFlags = [] } = options;
  const hook = ts ? [process.execPath, '-r', require.resolve('ts-node/register/transpile-only'), ...nodeFlags] : [];
  const pinned = cpu === undefined || cpu === null ? [] : ['taskset', '--cpu-list', String(cpu)];
  const [command = file, ...rest] = [...pinned, ...hook, file, ...args];
  const out = output === 'inherit' ? 'inherit' : 'pipe';
  const stdio: StdioOptions = ipc ? ['ignore', out, out, 'ipc'] : ['ignore', out, out];
  return new Child(name, spawn(command, rest, { detached: true, stdio, env: { ...process.env, ...env } }));
}

/** SIGKILLs every child whose output is still open, and returns what each was doing before, for a report. */
export async function killLeftovers(): Promise<string[]> {
  const left = [...live];
  await Promise.all(left.map((child) => child.kill()));
  return left.map((child) => `${child.name} (pid ${child.pid}) ${child.describeExit()}, its output still open`);
}

export type ServerChild = Child<ServerEvent, ServerCalls>;
export type LoadChild = Child<{ type: 'ready' }, LoadCalls>;
/** Where a child runs; `nodeFlags` go to a server process on top of `--expose-gc`. */
type Placement = Pick<StartOptions, 'cpu' | 'output' | 'nodeFlags'>;
/** A ts-node child needs this long to start on a busy 2-core machine, with room to spare (ms). */
export const startupMs = 30_000;

/** Starts a server process of the harness for `config` (with `gc()`, for bench F) and resolves once it listens. */
export async function startServer(config: ServerConfig, options: Placement = {}): Promise<{ child: ServerChild; port: number }> {
  const file = join(__dirname, 'server.ts');
  const args = [JSON.stringify(config)];
  const nodeFlags = ['--expose-gc', ...(options.nodeFlags ?? [])];
  const child: ServerChild = start(`server ${config.system}`, file, { ...options, args, nodeFlags });
  return { child, port: (await readyOrKilled(child, child.next('ready', startupMs))).port };
}

/** Starts a load process of the harness and resolves once it is ready. */
export async function startLoad(name: string, options: Placement = {}): Promise<LoadChild> {
  const child: LoadChild = start(name, join(__dirname, 'load.ts'), options);
  await readyOrKilled(child, child.next('ready', startupMs));
  return child;
}

/** Resolves as `ready` does; if it rejects, kills `child` first. */
async function readyOrKilled<T>(child: { kill(): Promise<void> }, ready: Promise<T>): Promise<T> {
  try {
    return await ready;
  } catch (error) {
    await child.kill();
    throw error;
  }
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
