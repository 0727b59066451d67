import { expect } from 'chai';
import * as http from 'node:http';
import { GracefulServer } from '../src';
import { closeAfterTest } from './support/server-kinds';
import { afterEachTest } from './support/servers';
import { loopback, portOf, RawClient, waitForValue, withDeadline } from './support/sockets';

/** Resolves with `'settled'` if `promise` settles within one turn of the event loop, else `'pending'`. */
async function settlesAtOnce(promise: Promise<unknown>): Promise<'settled' | 'pending'> {
  return Promise.race([
    promise.then(() => 'settled' as const),
    new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending'))),
  ]);
}

describe('GracefulServer[Symbol.asyncDispose]()', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  /** A wrapped HTTP server whose `/held` requests are answered when the test calls `release()`. */
  function wrapped(): { graceful: GracefulServer; release: () => void } {
    const held: Array<() => void> = [];
    const server = http.createServer((req, res) => {
      if (req.url === '/held') held.push(() => res.end('released'));
      else res.end('ok');
    });
    closeAfterTest(server, cleanup);
    return {
      graceful: new GracefulServer(server, { timeout: 5000 }),
      release: () => held.splice(0).forEach((answer) => answer()),
    };
  }

  it('settles at once on an instance that has never listened', async () => {
    const { graceful } = wrapped();
    expect(await settlesAtOnce(graceful[Symbol.asyncDispose]())).to.equal('settled');
    expect(graceful.phase).to.equal('stopped');
  });

  /** A wrapped server listening, with a `/held` request in flight on client `c`. */
  async function servingOneRequest(): Promise<{ graceful: GracefulServer; release: () => void; c: RawClient }> {
    const { graceful, release } = wrapped();
    const c = await RawClient.connect(portOf(await graceful.listen(loopback)));
    cleanup.push(() => c.destroy());
    c.get('/held');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    return { graceful, release, c };
  }

  it('shuts a serving instance down, and settles once the drain has finished', async () => {
    const { graceful, release, c } = await servingOneRequest();
    const disposed = graceful[Symbol.asyncDispose]();
    expect(graceful.phase, 'the shutdown started within the call').to.equal('draining');
    expect(await settlesAtOnce(disposed), 'still draining').to.equal('pending');
    release();
    expect(await c.read()).to.deep.include({ status: 200, body: 'released' });
    await withDeadline(disposed, 2000, 'the dispose to settle');
    expect(graceful.phase).to.equal('stopped');
    expect(graceful.connectionsKilled).to.equal(0);
  });

  it('during a shutdown, waits for that one', async () => {
    const { graceful, release } = await servingOneRequest();
    graceful.shutdown();
    const done = graceful.wait();
    const disposed = graceful[Symbol.asyncDispose]();
    expect(await settlesAtOnce(disposed), 'still draining').to.equal('pending');
    release();
    const result = await withDeadline(done, 2000, 'the shutdown');
    await withDeadline(disposed, 2000, 'the dispose to settle');
    expect(result).to.include({ killed: 0, drained: 1 });
  });

  it('settles at once after a finished shutdown', async () => {
    const { graceful } = wrapped();
    await graceful.listen(loopback);
    graceful.shutdown();
    await graceful.wait();
    expect(await settlesAtOnce(graceful[Symbol.asyncDispose]())).to.equal('settled');
  });

  it('works with await using: the instance is shut down and drained at the end of the block', async () => {
    const { graceful: made } = wrapped();
    {
      await using graceful = made;
      await graceful.listen(loopback);
      expect(graceful.phase).to.equal('serving');
    }
    expect(made.phase).to.equal('stopped');
    expect(made.connectionsKilled).to.equal(0);
  });
});
