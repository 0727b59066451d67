import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import { take } from 'rxjs';
import { fromSignals } from '../src';
import { withDeadline } from './support/sockets';

describe('fromSignals', () => {
  it('adds one process listener per signal on subscribe and removes them on unsubscribe', () => {
    const before = process.listenerCount('SIGUSR2');
    const subscription = fromSignals('SIGUSR2', 'SIGHUP').subscribe();
    expect(process.listenerCount('SIGUSR2')).to.equal(before + 1);
    subscription.unsubscribe();
    expect(process.listenerCount('SIGUSR2')).to.equal(before);
    expect(process.listenerCount('SIGHUP')).to.equal(0);
  });

  it('emits the signal name when the process receives it, and take(1) removes the listener', async () => {
    const received = new Promise<string>((resolve) => fromSignals('SIGUSR2').pipe(take(1)).subscribe(resolve));
    process.kill(process.pid, 'SIGUSR2');
    expect(await received).to.equal('SIGUSR2');
    expect(process.listenerCount('SIGUSR2')).to.equal(0);
  });

  for (const uncatchable of ['SIGKILL', 'SIGSTOP'] as const) {
    it(`throws a TypeError at the call for ${uncatchable}, which cannot be caught, and leaves no listener behind`, () => {
      const before = { SIGTERM: process.listenerCount('SIGTERM'), [uncatchable]: process.listenerCount(uncatchable) };
      expect(() => fromSignals('SIGTERM', uncatchable)).to.throw(
        TypeError,
        new RegExp(`"${uncatchable}", which no process can catch`),
      );
      expect({ SIGTERM: process.listenerCount('SIGTERM'), [uncatchable]: process.listenerCount(uncatchable) }).to.deep.equal(
        before,
      );
    });
  }

  it('throws a TypeError at the call for an unknown signal name, or for none', () => {
    expect(() => fromSignals('SIGFOO' as NodeJS.Signals)).to.throw(TypeError, /"SIGFOO".*not a signal name/);
    expect(() => fromSignals(15 as unknown as NodeJS.Signals)).to.throw(TypeError, /15/);
    expect(() => fromSignals()).to.throw(TypeError, /at least one signal/);
  });
});

describe('a child process that serves and shuts down on SIGTERM', function () {
  this.timeout(30000);

  it('drains its in-flight request, leaves no timer or listener, and exits by itself with code 0', async () => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register', 'spec/fixtures/sigterm-server.ts'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const lines: string[] = [];
      const line = (prefix: string): Promise<string> =>
        withDeadline(
          new Promise<string>((resolve) => {
            const check = (): void => {
              const found = lines.find((l) => l.startsWith(prefix));
              if (found !== undefined) {
                child.stdout.off('data', check);
                resolve(found);
              }
            };
            child.stdout.on('data', check);
            check();
          }),
          15000,
          `the child to print "${prefix}"`,
        );
      let rest = '';
      child.stdout.on('data', (chunk: Buffer) => {
        const parts = (rest + chunk.toString()).split('\n');
        rest = parts.pop() ?? '';
        lines.push(...parts);
      });
      const port = Number((await line('listening ')).split(' ')[1]);
      const response = new Promise<{ status: number | undefined; connection: string | undefined; body: string }>(
        (resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port, path: '/in-flight', agent: new http.Agent({ keepAlive: true }) }, (res) => {
              let body = '';
              res.on('data', (d: Buffer) => (body += d.toString()));
              res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, body }));
            })
            .on('error', reject);
        },
      );
      await line('request /in-flight');
      child.kill('SIGTERM');
      expect(await withDeadline(response, 5000, 'the in-flight response')).to.deep.equal({
        status: 200,
        connection: 'close',
        body: 'finished',
      });
      expect(await line('drained ')).to.match(/"killed":0/);
      expect(await line('left ')).to.equal('left timers=0 sigterm-listeners=0');
      expect(await withDeadline(exited, 5000, 'the child to exit by itself')).to.equal(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
