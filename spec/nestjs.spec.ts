import { expect } from 'chai';
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { RawClient, withDeadline } from './support/sockets';

/** How a child process ended: the exit code, or the signal that ended it. */
interface Ending {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** spec/fixtures/nest-app.ts running in a child process, and the lines it has printed so far. */
class NestApp {
  private readonly lines: string[] = [];
  private readonly waiters = new Set<() => void>();
  private ending: Ending | undefined;
  /** Settles once the child has ended and its output has been read to the end. */
  readonly ended: Promise<Ending>;

  private constructor(private readonly child: ChildProcessByStdio<null, Readable, null>) {
    let rest = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      this.lines.push(...parts);
      this.wake();
    });
    this.ended = new Promise<Ending>((resolve) =>
      child.on('close', (code, signal) => {
        this.ending = { code, signal };
        this.wake();
        resolve(this.ending);
      }),
    );
  }

  static start(): NestApp {
    const child = spawn(process.execPath, ['-r', 'ts-node/register', 'spec/fixtures/nest-app.ts'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
    });
    return new NestApp(child);
  }

  /** The first printed line that starts with `prefix`; rejects if the child ends without it, or after `ms`. */
  line(prefix: string, ms: number): Promise<string> {
    const found = new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const line = this.lines.find((l) => l.startsWith(prefix));
        if (line === undefined && this.ending === undefined) return;
        this.waiters.delete(check);
        if (line !== undefined) resolve(line);
        else reject(new Error(`the child ended (${JSON.stringify(this.ending)}) without printing "${prefix}"`));
      };
      this.waiters.add(check);
      check();
    });
    return withDeadline(found, ms, `the child to print "${prefix}"`);
  }

  /** The port from the child's `listening <port>` line. */
  async port(): Promise<number> {
    // ts-node and Nest's bootstrap take a few seconds on a loaded machine.
    return Number((await this.line('listening ', 15000)).split(' ')[1]);
  }

  /** The ShutdownResult the child printed when `graceful.wait()` settled. */
  async drained(ms: number): Promise<Record<string, unknown>> {
    return JSON.parse((await this.line('drained ', ms)).slice('drained '.length)) as Record<string, unknown>;
  }

  sigterm(): void {
    this.child.kill('SIGTERM');
  }

  kill(): void {
    if (this.ending === undefined) this.child.kill('SIGKILL');
  }

  private wake(): void {
    for (const check of [...this.waiters]) check();
  }
}

/**
 * What follows a SIGTERM when all went well: Nest ran its shutdown hooks, the drain reported
 * `result`, and the process ended by the signal (Nest raises it again once app.close() is done).
 */
async function expectEndedBySigterm(app: NestApp, result: Record<string, unknown>): Promise<void> {
  expect(await app.line('onApplicationShutdown ', 3000)).to.equal('onApplicationShutdown SIGTERM');
  expect(await app.drained(3000)).to.include(result);
  const ending = await withDeadline(app.ended, 3000, 'the child to end after its shutdown hooks');
  expect(ending).to.deep.equal({ code: null, signal: 'SIGTERM' });
}

// What Nest's docs tell every user to write: app.enableShutdownHooks(). On SIGTERM Nest runs its
// hooks, app.close() calls server.close() on the server rx-graceful wraps, and once that close has
// called back Nest removes its listeners and raises SIGTERM again: a Nest process ends by the
// signal (status 143 to the orchestrator), not with code 0, and only after its shutdown ran.
describe('NestJS with app.enableShutdownHooks()', function () {
  this.timeout(30000);

  let app: NestApp;
  let client: RawClient | undefined;

  beforeEach(() => {
    app = NestApp.start();
    client = undefined;
  });

  afterEach(() => {
    client?.destroy();
    app.kill();
  });

  it('drains the in-flight request on SIGTERM, answering it with Connection: close, and the process ends', async () => {
    client = await RawClient.connect(await app.port());
    client.get('/slow');
    await app.line('request /slow', 3000);
    app.sigterm();

    const response = await client.read(3000);
    expect(response).to.deep.include({ status: 200, body: 'slow done' });
    expect(response.headers.connection, 'the Connection header of the in-flight response').to.equal('close');
    await client.waitClosed(1000);
    await expectEndedBySigterm(app, { killed: 0, timedOut: false, drained: 1 });
  });

  it('closes an idle keep-alive connection on SIGTERM well before keepAliveTimeout, and the process ends', async () => {
    client = await RawClient.connect(await app.port());
    client.get('/fast');
    const response = await client.read(3000);
    expect(response).to.deep.include({ status: 200, body: 'fast done' });
    expect(response.headers.connection).to.equal('keep-alive');
    app.sigterm();

    // Node's keepAliveTimeout is 5 s; the drain's linger is at most 1 s.
    await client.waitClosed(2000);
    await expectEndedBySigterm(app, { killed: 0, timedOut: false, closedIdle: 1 });
  });
});
