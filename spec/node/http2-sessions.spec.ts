import { expect } from 'chai';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import { GracefulOptions, GracefulServer } from '../../src';
import {
  answered,
  closeAfterTest,
  connectForTest,
  h2cKind,
  Http2Kind,
  http2Kinds,
  serveKind,
  serveTestApp,
  testApp,
} from '../support/server-kinds';
import { afterEachTest, record } from '../support/servers';
import { loopback, portOf, until, waitForValue, withDeadline } from '../support/sockets';

/** HTTP/2 (src/node/http2-sessions.ts): a session is one connection; a shutdown is a two-step GOAWAY. */
function http2Cases(kind: Http2Kind): void {
  const cleanup = afterEachTest();

  async function start(options: GracefulOptions = {}) {
    const served = await serveTestApp(kind, options, cleanup);
    return { ...served, client: await served.connect() };
  }

  it('counts a session as one connection, active while any stream is open', async () => {
    const { graceful, client, ran, release } = await start();
    const both = Promise.all([client.request('/held-1'), client.request('/held-2')]);
    await until(() => ran.length === 2, 2000, 'both streams reaching the application');
    const busy = await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the session active');
    expect(busy).to.include({ open: 1, active: 1 });
    release();
    expect(await both).to.deep.equal([answered('/held-1', false), answered('/held-2', false)]);
    const idle = await waitForValue(graceful.state$, (s) => s.idle === 1, 2000, 'the session idle');
    expect(idle).to.include({ open: 1, active: 0 });
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, closedIdle: 1 });
  });

  it('sends GOAWAY to an idle session when the shutdown begins, so a client that keeps opening streams cannot hold the drain', async () => {
    // A linger, restarted each time the session went idle again, would hold the drain as long as
    // the client keeps opening streams: until the timeout.
    const { graceful, client } = await start({ timeout: 1000, idleLinger: 100 });
    expect(await client.request('/warm-up')).to.deep.equal(answered('/warm-up', false));
    await waitForValue(graceful.state$, (s) => s.idle === 1, 2000, 'the session idle');
    graceful.shutdown();
    // A busy client: a new stream as soon as the last one ends, for at most 800 ms or 500 streams.
    const loopEnds = performance.now() + 800;
    let answers = 0;
    for (let i = 0; i < 500 && performance.now() < loopEnds; i++) {
      if ('error' in (await client.request(`/loop-${i}`))) break;
      answers++;
    }
    const result = await graceful.wait();
    expect(result, `${answers} streams answered after the shutdown: ${JSON.stringify(result)}`).to.include({
      killed: 0,
      timedOut: false,
    });
    expect(result.durationMs).to.be.below(600);
  });

  it('closes a session whose last stream ends before the PING comes back once the loop has read it, not after idleLinger', async () => {
    // The stream ends in the turn of the GOAWAY: Node then reads nothing more from the session, so
    // the PING's answer never arrives, and the session used to linger the whole second.
    const { graceful, client, release } = await start({ timeout: 5000, idleLinger: 1000 });
    const held = client.request('/held');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the held stream open');
    graceful.shutdown();
    release();
    expect(await withDeadline(held, 3000, 'the held stream')).to.deep.equal(answered('/held', true));
    const result = await withDeadline(graceful.wait(), 3000, 'the drain');
    expect(result).to.include({ killed: 0, drained: 1, closedIdle: 0, timedOut: false });
    expect(result.durationMs, 'ms to close the session after its stream').to.be.below(500);
  });

  it('closes a session idle at the shutdown once the loop has read it, not after idleLinger', async () => {
    const { graceful, client } = await start({ timeout: 5000, idleLinger: 1000 });
    expect(await client.request('/warm-up')).to.deep.equal(answered('/warm-up', false));
    await waitForValue(graceful.state$, (s) => s.idle === 1, 2000, 'the session idle');
    graceful.shutdown();
    const result = await withDeadline(graceful.wait(), 3000, 'the drain');
    expect(result).to.include({ killed: 0, drained: 0, closedIdle: 1, timedOut: false });
    expect(result.durationMs, 'ms to close the idle session').to.be.below(500);
  });

  it('keeps an idle session open through the pre-drain delay and closes it once the drain begins', async () => {
    const { graceful, client } = await start({ timeout: 5000, idleLinger: 1000, drainDelay: 300 });
    expect(await client.request('/warm-up')).to.deep.equal(answered('/warm-up', false));
    await waitForValue(graceful.state$, (s) => s.idle === 1, 2000, 'the session idle');
    graceful.shutdown();
    const drainBegins = await waitForValue(graceful.state$, (s) => !s.accepting, 3000, 'the drain beginning');
    expect(drainBegins, 'the session still open when the delay ends').to.include({ open: 1 });
    const result = await withDeadline(graceful.wait(), 3000, 'the drain');
    expect(result).to.include({ killed: 0, closedIdle: 1, timedOut: false });
    expect(result.durationMs, 'ms from the call: the delay, then the close').to.be.within(300, 800);
  });

  it('lets a stream finish after a two-step GOAWAY, then refuses new streams through the protocol', async () => {
    const { graceful, client, ran, release } = await start();
    expect(await client.request('/warm-up')).to.deep.equal(answered('/warm-up', false));
    const held = client.request('/held');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the held stream open');
    graceful.shutdown();
    await until(() => client.goaways.length >= 2, 2000, 'the final GOAWAY');
    expect(await client.request('/after-goaway'), 'a new stream fails with an error')
      .to.have.property('error')
      .that.is.a('string');
    release();
    expect(await withDeadline(held, 3000, 'the held stream')).to.deep.equal(answered('/held', true));
    expect(client.goaways.slice(0, 2)).to.deep.equal([2 ** 31 - 1, 3]);
    expect(ran).to.deep.equal(['/warm-up', '/held']);
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });
}

describe('HTTP/2 sessions', function () {
  this.timeout(15000);
  for (const kind of http2Kinds) describe(kind.name, () => http2Cases(kind));

  describe('h2c only', () => {
    const cleanup = afterEachTest();

    it('wraps an HTTP/2 server that is already listening, with a session opened before the wrap', async () => {
      const { handler, release } = testApp();
      const server = h2cKind.createServer(handler);
      closeAfterTest(server, cleanup);
      server.listen(loopback);
      await withDeadline(once(server, 'listening'), 2000, 'the server listening');
      const client = await connectForTest(h2cKind, portOf(server.address() ?? ''), cleanup);
      expect(await client.request('/before')).to.deep.equal(answered('/before', false)); // the session exists before the wrap
      const graceful = new GracefulServer(server, { timeout: 5000, idleLinger: 0 });
      const held = client.request('/held');
      await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the stream on the old session');
      graceful.shutdown();
      await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
      release();
      expect(await withDeadline(held, 3000, 'the stream')).to.deep.equal(answered('/held', true));
      expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
    });

    it('follows an HTTP/2 CONNECT as the stream it is, not as a hijacked connection that never closes', async () => {
      // Node's compatibility layer (which emits 'connect') runs only once a 'request' listener exists.
      const { graceful, server, connect } = await serveTestApp(h2cKind, { timeout: 2000, waitForHijacked: true }, cleanup);
      server.on('connect', (_req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
        res.writeHead(200);
        res.end();
      });
      const { session } = await connect();
      const events = record(graceful.connections$, cleanup);
      const tunnel = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:9' });
      tunnel.on('error', () => undefined);
      const [headers] = (await withDeadline(once(tunnel, 'response'), 2000, 'the CONNECT response')) as [
        http2.IncomingHttpHeaders,
      ];
      expect(headers[':status']).to.equal(200);
      graceful.shutdown();
      tunnel.close();
      session.close();
      const result = await withDeadline(graceful.wait(), 1500, 'the drain, which has nothing hijacked to wait for');
      expect(events.filter((e) => e.state === 'hijacked')).to.deep.equal([]);
      expect(result).to.include({ killed: 0, timedOut: false, hijacked: 0 });
    });

    it('answers readinessProbe with 503 and no Connection header (GOAWAY does that job)', async () => {
      let probe: GracefulServer['readinessProbe'] = () => undefined;
      const { graceful, port } = await serveKind(
        h2cKind,
        (req, res) => probe(req, res),
        { timeout: 5000, drainDelay: 100, idleLinger: 0 },
        cleanup,
      );
      probe = graceful.readinessProbe;
      // A prober opens a session per probe: the one in use at the shutdown is told GOAWAY.
      const ask = async (): Promise<{ status: unknown; connection: unknown }> => {
        const { session } = await connectForTest(h2cKind, port, cleanup);
        const stream = session.request({ ':path': '/ready' });
        stream.on('close', () => session.close());
        stream.resume();
        stream.end();
        const [headers] = (await withDeadline(once(stream, 'response'), 2000, 'the probe')) as [http2.IncomingHttpHeaders];
        return { status: headers[':status'], connection: headers.connection };
      };
      expect(await ask()).to.deep.equal({ status: 200, connection: undefined });
      graceful.shutdown();
      expect(await ask()).to.deep.equal({ status: 503, connection: undefined });
      await graceful.wait();
    });
  });
});
