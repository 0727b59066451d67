import { expect } from 'chai';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { GracefulServer } from '../../src';
import type { ConnectionEvent } from '../../src';
import {
  answered,
  connectForTest,
  h2cKind,
  Http1Client,
  Http1Kind,
  Http2Client,
  Http2Kind,
  httpKind,
  serveKind,
  testApp,
} from '../support/server-kinds';
import { afterEachTest, record } from '../support/servers';
import { loopback, portOf, RawClient, testCertificate, until, waitForValue, withDeadline } from '../support/sockets';

/** An `allowHTTP1` server over TLS: one kind, whose clients are an HTTP/1.1 TLS socket or an HTTP/2 session. */
const allowHttp1Kind: Http2Kind = {
  name: 'h2 with allowHTTP1',
  protocol: 'h2',
  tls: true,
  createServer: (handler) => http2.createSecureServer({ ...testCertificate, allowHTTP1: true }, handler),
  connect: (port) => Http2Client.connect(`https://127.0.0.1:${port}`),
};
const http1OverTls: Http1Kind = {
  ...httpKind,
  tls: true,
  connect: async (port) => new Http1Client(await RawClient.connectTls(port)),
};

/** The protocol each connection of a server spoke, as its `closed` events on `connections$` name them (src/node/http-adapter.ts, connection-registry.ts). */
describe('HttpAdapter: the protocol of each connection, and the split of the result by protocol', () => {
  const cleanup = afterEachTest();

  const closedProtocols = (events: ConnectionEvent[]): Array<string | undefined> =>
    events.filter((e) => e.state === 'closed').map((e) => e.protocol);

  it('on an allowHTTP1 server over TLS, counts an HTTP/1.1 client under http1 and an HTTP/2 client under http2', async () => {
    const app = testApp();
    const { graceful, port } = await serveKind(allowHttp1Kind, app.handler, { timeout: 5000, idleLinger: 0 }, cleanup);
    const events = record(graceful.connections$, cleanup);
    const http1 = await connectForTest(http1OverTls, port, cleanup);
    const session = await connectForTest(allowHttp1Kind, port, cleanup);
    // The HTTP/1.1 client has a request in flight; the HTTP/2 session has finished one and is idle.
    expect(await session.request('/warm-up')).to.deep.equal(answered('/warm-up', false));
    const held = http1.request('/held');
    await until(() => app.ran.includes('/held'), 2000, 'the HTTP/1.1 request reaching the application');
    await waitForValue(graceful.state$, (s) => s.open === 2 && s.active === 1, 2000, 'one connection active, one idle');

    graceful.shutdown();
    await session.waitClosed();
    app.release();
    expect(await held).to.deep.equal(answered('/held', true));
    const result = await withDeadline(graceful.wait(), 3000, 'the drain');

    expect(result).to.include({ closedIdle: 1, drained: 1, killed: 0 });
    expect(result.byProtocol).to.deep.equal({
      http1: { closedIdle: 0, drained: 1, killed: 0 },
      http2: { closedIdle: 1, drained: 0, killed: 0 },
    });
    expect(closedProtocols(events)).to.deep.equal(['http2', 'http1']);
    expect(result.lastIdleCloseMs)
      .to.be.a('number')
      .and.at.most(result.lastDrainedCloseMs ?? -1);
    expect(result.lastGracefulCloseMs).to.equal(result.lastDrainedCloseMs);
    expect(result.lastDrainedCloseMs).to.be.at.most(result.durationMs);
  });

  it('on an allowHTTP1 server, counts what force() destroys under the protocol each connection spoke', async () => {
    const app = testApp();
    const { graceful, port } = await serveKind(allowHttp1Kind, app.handler, { timeout: 5000, idleLinger: 0 }, cleanup);
    const http1 = await connectForTest(http1OverTls, port, cleanup);
    const session = await connectForTest(allowHttp1Kind, port, cleanup);
    const replies = [http1.request('/hang'), session.request('/hang')];
    await waitForValue(graceful.state$, (s) => s.active === 2, 2000, 'both requests in flight');

    graceful.shutdown();
    await waitForValue(graceful.state$, (s) => s.phase === 'draining' && !s.accepting, 2000, 'the drain begun');
    graceful.force();
    const result = await withDeadline(graceful.wait(), 3000, 'the forced end');
    await Promise.all(replies);

    expect(result).to.include({ killed: 2, forced: true, closedIdle: 0, drained: 0 });
    expect(result.byProtocol).to.deep.equal({
      http1: { closedIdle: 0, drained: 0, killed: 1 },
      http2: { closedIdle: 0, drained: 0, killed: 1 },
    });
    expect(result).not.to.have.any.keys('lastIdleCloseMs', 'lastDrainedCloseMs', 'lastGracefulCloseMs');
  });

  it('on h2c, counts a session under http2 although its connection was reported new before the session existed', async () => {
    const app = testApp();
    const { graceful, port } = await serveKind(h2cKind, app.handler, { timeout: 5000, idleLinger: 0 }, cleanup);
    const events = record(graceful.connections$, cleanup);
    const session = await connectForTest(h2cKind, port, cleanup);
    const held = session.request('/held');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the stream in flight');
    graceful.shutdown();
    app.release();
    expect(await held).to.deep.equal(answered('/held', true));
    const result = await withDeadline(graceful.wait(), 3000, 'the drain');
    expect(result.byProtocol).to.deep.equal({
      http1: { closedIdle: 0, drained: 0, killed: 0 },
      http2: { closedIdle: 0, drained: 1, killed: 0 },
    });
    expect(closedProtocols(events)).to.deep.equal(['http2']);
  });

  it('on an http server, names http1 on the closed event alone, and leaves byProtocol out of the result', async () => {
    const app = testApp();
    const { graceful, port } = await serveKind(httpKind, app.handler, { timeout: 5000, idleLinger: 0 }, cleanup);
    const events = record(graceful.connections$, cleanup);
    const client = await connectForTest(httpKind, port, cleanup);
    expect(await client.request('/warm-up')).to.deep.equal(answered('/warm-up', false));
    graceful.shutdown();
    const result = await withDeadline(graceful.wait(), 3000, 'the drain');
    expect(result).to.include({ closedIdle: 1 });
    expect(result).not.to.have.property('byProtocol');
    // Only `closed` names it: a request's changes carry nothing more than before.
    expect(events.map((e) => [e.state, e.protocol])).to.deep.equal([
      ['new', undefined],
      ['active', undefined],
      ['idle', undefined],
      ['closed', 'http1'],
    ]);
  });
});

/** Opens `count` keep-alive connections to `port`, 100 at a time, each after one whole `GET /` answered `ok`. */
async function idleConnections(port: number, count: number, cleanup: Array<() => void>): Promise<void> {
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      cleanup.push(() => socket.destroy());
      socket.once('error', reject);
      socket.once('connect', () => socket.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n'));
      let seen = '';
      const read = (chunk: Buffer): void => {
        seen += chunk.toString('latin1');
        if (!seen.endsWith('\r\n\r\nok')) return;
        socket.off('data', read);
        socket.on('error', () => undefined); // closed by the server later: expected
        resolve();
      };
      socket.on('data', read);
    });
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: 100 }, worker));
}

describe('HttpAdapter: closing thousands of idle connections', () => {
  const cleanup = afterEachTest();

  /** A listening server (no linger) whose `/held` request waits for `answer()`; every other request gets `ok`. */
  async function heldServer(): Promise<{ graceful: GracefulServer; port: number; answer: () => (() => void) | undefined }> {
    let answer: (() => void) | undefined;
    const server = http.createServer((req, res) => {
      if (req.url === '/held') answer = () => void res.end('held');
      else res.end('ok');
    });
    server.keepAliveTimeout = 60_000;
    const graceful = new GracefulServer(server, { timeout: 20_000, idleLinger: 0 });
    cleanup.push(() => {
      server.closeAllConnections();
      server.close();
    });
    return { graceful, port: portOf(await graceful.listen(loopback)), answer: () => answer };
  }

  /**
   * 300 idle keep-alive connections, then one more, opened last, whose `/held` request the
   * application holds: the connections go to the drain in slices of 32, and this one is in the tenth.
   */
  async function heldBehind300Idle(): Promise<{
    graceful: GracefulServer;
    client: RawClient;
    held: () => (() => void) | undefined;
  }> {
    const { graceful, port, answer: held } = await heldServer();
    await withDeadline(idleConnections(port, 300, cleanup), 20_000, '300 idle connections');
    const client = await RawClient.connect(port);
    cleanup.push(() => client.destroy());
    client.get('/held');
    await until(() => held() !== undefined, 2000, 'the held request reaching the application');
    return { graceful, client, held };
  }

  it('marks the response in flight on the newest of 300 connections Connection: close within the shutdown call', async function () {
    this.timeout(30_000);
    const { graceful, client, held } = await heldBehind300Idle();

    graceful.shutdown();
    held()?.(); // the head goes out within the turn of the call
    const response = await client.read(10_000);

    expect(response).to.include({ status: 200, body: 'held' });
    expect(response.headers.connection).to.equal('close');
    expect(await withDeadline(graceful.wait(), 15_000, 'the drain')).to.include({ closedIdle: 300, drained: 1, killed: 0 });
  });

  it('marks the response in flight Connection: close after another connection closed by its client with its own response in flight', async function () {
    const { graceful, port, answer } = await heldServer();
    const closed: number[] = [];
    const watching = graceful.connections$.subscribe(({ id, state }) => state === 'closed' && closed.push(id));
    cleanup.push(() => watching.unsubscribe());
    const gone = await RawClient.connect(port);
    gone.get('/held');
    await until(() => answer() !== undefined, 2000, 'the first held request reaching the application');
    const client = await RawClient.connect(port);
    cleanup.push(() => client.destroy());
    const first = answer();
    client.get('/held');
    await until(() => answer() !== first, 2000, 'the second held request reaching the application');
    gone.destroy(); // its response never goes out: the server forgets the connection while it was active
    await until(() => closed.length === 1, 2000, 'the server seeing the first connection close');

    graceful.shutdown();
    answer()?.();
    const response = await client.read(10_000);

    expect(response).to.include({ status: 200, body: 'held' });
    expect(response.headers.connection).to.equal('close');
    expect(await withDeadline(graceful.wait(), 15_000, 'the drain')).to.include({ drained: 1, killed: 0 });
  });

  it('force() while the connections are still handed to the drain in slices destroys every one and counts the one in flight killed', async function () {
    this.timeout(30_000);
    const { graceful, client } = await heldBehind300Idle();

    graceful.shutdown();
    graceful.force(); // within the turn of the call: the drain asks for the slices not taken yet
    const result = await withDeadline(graceful.wait(), 10_000, 'the forced end');

    expect(result).to.include({ forced: true, killed: 1, drained: 0 });
    expect(result.closedIdle).to.equal(300);
    await client.waitClosed(2000);
  });

  it('does not hold back a response in flight until the last idle connection has closed', async function () {
    this.timeout(30_000);
    const idle = 3000;
    const { graceful, port, answer: held } = await heldServer();
    await withDeadline(idleConnections(port, idle, cleanup), 20_000, `${idle} idle connections`);
    const client = await RawClient.connect(port);
    cleanup.push(() => client.destroy());
    client.get('/held');
    await until(() => held() !== undefined, 2000, 'the held request reaching the application');

    // The held response is answered in the turn after the first idle connection closes; what
    // matters is how many idle connections close before it is sent, and how long it waits.
    let closedIdle = 0;
    let closedBeforeAnswer = -1;
    let answeredAt = 0;
    let sentAt = 0;
    let lastIdleAt = 0;
    const closes = graceful.connections$.subscribe((event) => {
      if (event.state !== 'closed' || event.previous !== 'idle') return;
      closedIdle++;
      lastIdleAt = performance.now();
      if (closedIdle !== 1) return;
      setImmediate(() => {
        answeredAt = performance.now();
        held()?.();
      });
    });
    cleanup.push(() => closes.unsubscribe());
    const started = performance.now();
    client.socket.once('data', () => {
      sentAt = performance.now();
      closedBeforeAnswer = closedIdle;
    });
    graceful.shutdown();
    expect(await client.read(10_000)).to.include({ status: 200 });
    const result = await withDeadline(graceful.wait(), 15_000, 'the drain');

    expect(result).to.include({ closedIdle: idle, drained: 1, killed: 0 });
    // Closed in slices: the response went out with most idle connections still open...
    expect(closedBeforeAnswer).to.be.within(1, idle / 4);
    // ...and waited a small part of the time the closes took (not all of it, as in one turn).
    expect(sentAt - answeredAt).to.be.below((lastIdleAt - started) / 4);
  });
});
