import { fork, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { CallMessage, ChildMessage } from './protocol';

/** Call name → its arguments and result, as in `ServerCalls` and `LoadCalls`. */
type CallMap<C> = { [K in keyof C]: { args: unknown; result: unknown } };

/** Node flags every child gets: TypeScript without a build step, and `gc()` for scenario F. */
const childExecArgv = ['-r', require.resolve('ts-node/register/transpile-only'), '--expose-gc'];

/**
 * A child process of the benchmark seen from the orchestrator: typed calls with a deadline,
 * events it sends on its own, and its exit. Every wait is bounded.
 */
export class ChildPeer<Calls extends CallMap<Calls>, Event extends { type: string }> {
  private seq = 0;
  private readonly replies = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly events: Event[] = [];
  private readonly eventWaiters: { type: Event['type']; deliver: (event: Event) => void }[] = [];
  private exitCode: number | null | undefined = undefined;
  private readonly exitWaiters: (() => void)[] = [];

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (raw: ChildMessage) => this.receive(raw));
    child.on('exit', (code, signal) => {
      this.exitCode = code ?? (signal === null ? null : -1);
      for (const [, waiter] of this.replies) waiter.reject(new Error(`${name} exited before replying`));
      this.replies.clear();
      for (const wake of this.exitWaiters.splice(0)) wake();
    });
  }

  /**
   * Forks `bench/<script>` with `argv`; with `cpu`, pinned to that core by taskset(1), so that
   * the server and the load never share a core and the scheduler does not move them.
   */
  static start<C extends CallMap<C>, E extends { type: string }>(name: string, script: string, argv: string[], cpu: number | null = null): ChildPeer<C, E> {
    const file = path.join(__dirname, script);
    const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc'];
    const child =
      cpu === null
        ? fork(file, argv, { execArgv: childExecArgv, stdio })
        : spawn('taskset', ['--cpu-list', String(cpu), process.execPath, ...childExecArgv, file, ...argv], { stdio });
    return new ChildPeer<C, E>(name, child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  call<K extends keyof Calls & string>(call: K, args: Calls[K]['args'], timeoutMs: number): Promise<Calls[K]['result']> {
    if (this.exitCode !== undefined) return Promise.reject(new Error(`${this.name} has exited`));
    const seq = ++this.seq;
    return new Promise<Calls[K]['result']>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(seq);
        reject(new Error(`${this.name} did not answer '${call}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.replies.set(seq, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as Calls[K]['result']);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      const message: CallMessage = { seq, call, args };
      this.child.send(message);
    });
  }

  /** The first event of `type` (one already received, or the next), or null after `timeoutMs`. */
  nextEvent<T extends Event['type']>(type: T, timeoutMs: number): Promise<Extract<Event, { type: T }> | null> {
    const index = this.events.findIndex((event) => event.type === type);
    if (index >= 0) {
      const [event] = this.events.splice(index, 1);
      return Promise.resolve(event as Extract<Event, { type: T }>);
    }
    if (this.exitCode !== undefined) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = {
        type,
        deliver: (event: Event) => {
          clearTimeout(timer);
          resolve(event as Extract<Event, { type: T }>);
        },
      };
      const timer = setTimeout(() => {
        this.eventWaiters.splice(this.eventWaiters.indexOf(waiter), 1);
        resolve(null);
      }, timeoutMs);
      this.eventWaiters.push(waiter);
    });
  }

  /** True if the process exits (or has exited) within `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<boolean> {
    if (this.exitCode !== undefined) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.exitWaiters.splice(this.exitWaiters.indexOf(wake), 1);
        resolve(false);
      }, timeoutMs);
      this.exitWaiters.push(wake);
    });
  }

  /** SIGKILL unless it has exited; resolves once it is gone (bounded). */
  async kill(): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGKILL');
    await this.waitForExit(5_000);
  }

  private receive(message: ChildMessage): void {
    if (message.kind === 'event') {
      const event = message.event as Event;
      const waiterIndex = this.eventWaiters.findIndex((waiter) => waiter.type === event.type);
      const waiter = waiterIndex >= 0 ? this.eventWaiters.splice(waiterIndex, 1)[0] : undefined;
      if (waiter) waiter.deliver(event);
      else this.events.push(event);
      return;
    }
    const pending = this.replies.get(message.seq);
    if (!pending) return;
    this.replies.delete(message.seq);
    if (message.kind === 'reply') pending.resolve(message.result);
    else pending.reject(new Error(`${this.name}: ${message.message}`));
  }
}

type Answerers<Calls extends CallMap<Calls>> = { [K in keyof Calls]: (args: Calls[K]['args']) => Promise<Calls[K]['result']> };

/** In a child: answer the orchestrator's calls with `answerers`. */
export function answerParent<Calls extends CallMap<Calls>>(answerers: Answerers<Calls>): void {
  process.on('message', (raw: CallMessage) => {
    const answer = (answerers as Record<string, ((args: unknown) => Promise<unknown>) | undefined>)[raw.call];
    if (!answer) {
      sendToParent({ kind: 'fail', seq: raw.seq, message: `unknown call '${raw.call}'` });
      return;
    }
    answer(raw.args).then(
      (result) => sendToParent({ kind: 'reply', seq: raw.seq, result }),
      (error: unknown) => sendToParent({ kind: 'fail', seq: raw.seq, message: String(error) }),
    );
  });
}

/** In a child: send a message to the orchestrator; `then` runs once it has been handed over. */
export function sendToParent(message: ChildMessage, then?: () => void): void {
  if (!process.send) throw new Error('this process was not started by the benchmark orchestrator');
  process.send(message, undefined, undefined, then);
}
