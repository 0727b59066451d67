import { expect } from 'chai';
import * as http from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { take } from 'rxjs';
import { fromSignals, GracefulServer } from '../src';
import { loopback, portOf, RawClient, until } from './support/sockets';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * A child process and its stdio pipes: an earlier spec's child may still be ending while this file
 * runs (a kill is asynchronous), and a server cycle makes neither.
 */
const childProcessKinds = new Set(['ProcessWrap', 'PipeWrap']);

/** The kinds of resources keeping the loop alive, counted: `{ Timeout: 2, TCPSocketWrap: 1 }`. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (!childProcessKinds.has(kind)) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** One whole cycle: listen, serve two requests on a keep-alive socket and one in flight, drain. */
async function cycle(graceful: GracefulServer): Promise<void> {
  const port = portOf(await graceful.listen(loopback));
  const c = await RawClient.connect(port);
  c.get('/');
  await c.read();
  c.get('/slow');
  await until(() => graceful.server.listening, 1000, 'listening');
  graceful.shutdown();
  await c.read();
  await graceful.wait();
  await c.waitClosed();
  c.destroy();
  await until(() => c.socket.closed, 1000, 'the client socket closed');
}

describe('leaks', function () {
  this.timeout(60000);

  it('leaves no timer, socket or server handle behind after a cycle', async () => {
    const server = http.createServer((req, res) => setTimeout(() => res.end('ok'), req.url === '/slow' ? 20 : 0));
    const graceful = new GracefulServer(server, { timeout: 5000 });
    await new Promise((resolve) => setImmediate(resolve));
    const before = resources();
    await cycle(graceful);
    // Node finishes closing the server's side of the socket (a shutdown request) on its own.
    const same = (): boolean => JSON.stringify(resources()) === JSON.stringify(before);
    await until(same, 1000, 'the resources to return to what they were').catch(() => undefined);
    expect(resources()).to.deep.equal(before);
  });

  it('leaves no process listener behind from fromSignals, however it ends', () => {
    const before = process.listenerCount('SIGTERM');
    for (let i = 0; i < 100; i++) {
      fromSignals('SIGTERM').subscribe().unsubscribe();
      fromSignals('SIGTERM', 'SIGINT').pipe(take(0)).subscribe();
    }
    expect(process.listenerCount('SIGTERM')).to.equal(before);
    expect(process.listenerCount('SIGINT')).to.equal(0);
  });

  it('keeps memory flat over 1,000 serve/shutdown cycles of one instance', async () => {
    const server = http.createServer((req, res) => setTimeout(() => res.end('ok'), req.url === '/slow' ? 1 : 0));
    const graceful = new GracefulServer(server, { timeout: 5000 });
    const subscription = graceful.state$.subscribe();
    for (let i = 0; i < 50; i++) await cycle(graceful); // warm up: JIT, pools, the first allocations
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < Number(process.env['LEAK_CYCLES'] ?? 1000); i++) await cycle(graceful);
    gc();
    const after = process.memoryUsage().heapUsed;
    subscription.unsubscribe();
    const growth = after - before;
    console.log(
      `      (heap before ${(before / 1048576).toFixed(2)} MiB, after 1,000 cycles ${(after / 1048576).toFixed(2)} MiB)`,
    );
    expect(growth, 'heap growth over 1,000 cycles (bytes)').to.be.below(1024 * 1024);
  });
});
