import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** TypeScript without a build step, in every child. */
const execArgv = ['-r', require.resolve('ts-node/register/transpile-only')];

/**
 * A child process of a trial (stress/server.ts or stress/load.ts) as the orchestrator sees it:
 * the messages it sent, waited for with a deadline, and its exit. Every wait is bounded.
 */
export class Child<M extends { type: string }> {
  private readonly process: ChildProcess;
  private readonly inbox: M[] = [];
  private readonly waiters = new Set<() => void>();
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /**
   * The process has exited and its IPC channel and stdio are closed, so every message it sent
   * has arrived: 'exit' can come before the last messages are read, 'close' cannot.
   */
  private closed = false;

  constructor(
    readonly name: string,
    script: string,
    config: unknown,
  ) {
    this.process = fork(join(__dirname, script), [JSON.stringify(config)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.process.on('message', (message: M) => {
      this.inbox.push(message);
      this.wake();
    });
    this.process.on('exit', (code, signal) => {
      this.exit = { code, signal };
      this.wake();
    });
    this.process.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.process.on('error', () => this.wake());
  }

  get exited(): boolean {
    return this.exit !== undefined;
  }

  send(message: unknown): void {
    if (this.process.connected) this.process.send(message as object);
  }

  /**
   * The first message of one of `types` (one already in, or the next), or undefined after
   * `timeoutMs` or once the process has exited without sending one. A `fatal` message is
   * always returned, whatever `types` asks for.
   */
  async next<T extends M['type']>(types: readonly T[], timeoutMs: number): Promise<Extract<M, { type: T }> | Extract<M, { type: 'fatal' }> | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.inbox.findIndex((message) => (types as readonly string[]).includes(message.type) || message.type === 'fatal');
      if (index >= 0) return this.inbox.splice(index, 1)[0] as Extract<M, { type: T }>;
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) return undefined;
      await this.wait(left);
    }
  }

  /** True if the process exits (or has exited) within `timeoutMs`. */
  async exits(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.exit === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.wait(left);
    }
    return true;
  }

  /** SIGKILL unless it has exited; resolves once it is gone (at most 5 s). */
  async kill(): Promise<void> {
    if (this.exit !== undefined) return;
    this.process.kill('SIGKILL');
    await this.exits(5_000);
  }

  private wait(timeoutMs: number): Promise<void> {
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
