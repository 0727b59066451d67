import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { RawClient, withDeadline } from './sockets';

/** How a child process ended: its exit code, or the signal that ended it. */
export interface Ending {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A TypeScript program (an example, a fixture) running in a child process under ts-node, as a
 * user runs it, with the lines it has printed so far.
 */
export class Program {
  /** Every line printed on stdout so far. */
  readonly lines: string[] = [];
  /** Settles once the process has ended and its output has been read to the end. */
  readonly ended: Promise<Ending>;
  private stderr = '';
  private ending: Ending | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly kill: (signal: NodeJS.Signals) => void;

  /** Starts `file` (relative to the repository) with `env` added to this process's environment. */
  constructor(file: string, env: Record<string, string> = {}) {
    const child = spawn(process.execPath, ['-r', 'ts-node/register', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true', ...env },
    });
    this.kill = (signal) => child.kill(signal);
    createInterface({ input: child.stdout }).on('line', (line) => {
      this.lines.push(line);
      this.wake();
    });
    child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    // 'close' comes once stdout has ended, after its last line.
    this.ended = new Promise<Ending>((resolve) =>
      child.on('close', (code, signal) => {
        this.ending = { code, signal };
        this.wake();
        resolve(this.ending);
      }),
    );
  }

  /**
   * The first line that starts with `match` (or matches it); rejects if the process ends without
   * printing it, or after `ms`, with all it printed.
   */
  line(match: string | RegExp, ms: number): Promise<string> {
    return this.waitFor(`a line ${phrase(match)}`, ms, () => this.lines.find(matching(match)));
  }

  /** Resolves once `count` lines start with `match` (or match it). */
  async count(match: string | RegExp, count: number, ms: number): Promise<void> {
    await this.waitFor(`${count} lines ${phrase(match)}`, ms, () =>
      this.lines.filter(matching(match)).length >= count ? true : undefined,
    );
  }

  /** The TCP port at the end of the first line that starts with `prefix` (`serving on http://127.0.0.1:PORT`). */
  async port(prefix: string, ms: number): Promise<number> {
    const line = await this.line(prefix, ms);
    const port = /:(\d+)\/?$/.exec(line)?.[1];
    if (port === undefined) throw new Error(`no port at the end of "${line}"`);
    return Number(port);
  }

  /** How the process ended, once it has; rejects after `ms`. */
  exit(ms: number): Promise<Ending> {
    return withDeadline(this.ended, ms, 'the program to exit by itself');
  }

  signal(signal: NodeJS.Signals): void {
    this.kill(signal);
  }

  /** Ends the process with SIGKILL if it is still running. */
  stop(): void {
    if (this.ending === undefined) this.kill('SIGKILL');
  }

  private waitFor<T>(what: string, ms: number, found: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const settle = (error: Error | undefined, value?: T): void => {
        clearTimeout(deadline);
        this.waiters.delete(check);
        if (error === undefined) resolve(value as T);
        else reject(error);
      };
      const check = (): void => {
        const value = found();
        if (value !== undefined) settle(undefined, value);
        else if (this.ending !== undefined) settle(this.failure(`ended (${JSON.stringify(this.ending)}) without ${what}`));
      };
      const deadline = setTimeout(() => settle(this.failure(`printed no ${what} within ${ms} ms`)), ms);
      this.waiters.add(check);
      check();
    });
  }

  private failure(what: string): Error {
    return new Error(`the program ${what}; stdout: ${JSON.stringify(this.lines)}; stderr: ${this.stderr}`);
  }

  private wake(): void {
    for (const check of [...this.waiters]) check();
  }
}

/**
 * The programs a suite starts, and the connections it opens to them: an `after` hook of the suite
 * that creates it ends them all.
 */
export class Programs {
  private readonly programs: Program[] = [];
  private readonly clients: RawClient[] = [];

  constructor() {
    after(() => {
      for (const client of this.clients) client.destroy();
      for (const program of this.programs) program.stop();
    });
  }

  start(file: string, env: Record<string, string> = {}): Program {
    const program = new Program(file, env);
    this.programs.push(program);
    return program;
  }

  async connect(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    this.clients.push(client);
    return client;
  }
}

/**
 * Registers a test whose `run` starts in a `before` hook, together with every other test so
 * registered in the same suite, and which then awaits it: for tests that mostly wait on child
 * programs (their start-up, their own timelines), so that the waits overlap.
 */
export function itAlongside(title: string, run: () => Promise<void>): void {
  let running: Promise<void> | undefined;
  before(() => {
    running = run();
    running.catch(() => undefined); // its test reports it; one left out by --grep must not leave it unhandled
  });
  it(title, () => running);
}

function matching(match: string | RegExp): (line: string) => boolean {
  return typeof match === 'string' ? (line) => line.startsWith(match) : (line) => match.test(line);
}

function phrase(match: string | RegExp): string {
  return typeof match === 'string' ? `starting with "${match}"` : `matching ${String(match)}`;
}
