import { expect } from 'chai';
import type { Http2Session } from 'node:http2';
import { once } from 'node:events';
import type { Server as NetServer } from 'node:net';
import { map } from 'rxjs';
import { GracefulOptions, GracefulServer } from '../src';
import {
  answered,
  closeAfterTest,
  connectForTest,
  KindClient,
  Reply,
  serveTestApp,
  ServerKind,
  serverKinds,
  shutdownOnABusyLoop,
  testApp,
} from './support/server-kinds';
import { afterEachTest, record } from './support/servers';
import {
  connectOutcome,
  connectsWhileHeld,
  loopback,
  portOf,
  RawClient,
  until,
  waitForValue,
  withDeadline,
} from './support/sockets';

/**
 * What a drain does over every kind of server (DESIGN.md, "Drain semantics"). Every case runs
 * with `idleLinger: 0` unless the linger is part of what it checks.
 */
function drainCases(kind: ServerKind): void {
  const cleanup = afterEachTest();

  const start = (options: GracefulOptions = {}) => serveTestApp(kind, options, cleanup);

  /** Sends `/held` on `c` and resolves, once the application holds it, with its reply to come. */
  async function holdRequest(graceful: GracefulServer, c: KindClient, ran: string[]): Promise<{ reply: Promise<Reply> }> {
    const reply = c.request('/held');
    await until(() => ran.includes('/held'), 2000, 'the request reaching the application');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    return { reply };
  }

  /** Shuts down and answers the held requests once the drain has begun (the listener is closed). */
  async function shutdownThenRelease(graceful: GracefulServer, release: () => void): Promise<void> {
    graceful.shutdown();
    await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
    release();
  }

  it('ends at once with zero connections: wait() settles within two turns of the event loop', async () => {
    const { graceful } = await start();
    // Counted in turns, not ms: the listener closes after one poll phase (the accept queue), and
    // nothing else may hold the drain, however loaded the machine is.
    let turns = 0;
    let counting = true;
    const count = (): void => {
      if (!counting) return;
      turns++;
      setImmediate(count);
    };
    setImmediate(count);
    graceful.shutdown();
    const result = await graceful.wait();
    counting = false;
    expect(result).to.include({ killed: 0, timedOut: false });
    expect(turns).to.be.at.most(2);
  });

  it('closes idle keep-alive connections at once, far below the keep-alive timeout, counting them closedIdle', async () => {
    const { graceful, connect, server } = await start();
    if ('keepAliveTimeout' in server) expect(server.keepAliveTimeout).to.equal(5000);
    const count = kind.tls ? 10 : 50;
    const clients = await Promise.all(Array.from({ length: count }, () => connect()));
    const replies = await Promise.all(clients.map((c) => c.request('/')));
    expect(replies).to.deep.equal(replies.map(() => answered('/', false)));
    await waitForValue(graceful.state$, (s) => s.idle === count && s.active === 0, 2000, `${count} idle connections`);
    const started = performance.now();
    graceful.shutdown();
    const result = await graceful.wait();
    const ms = performance.now() - started;
    await Promise.all(clients.map((c) => c.waitClosed(1000)));
    expect(result).to.include({ killed: 0, closedIdle: count, drained: 0, timedOut: false });
    // Far below both the keep-alive timeout (5 s) and the default linger (1 s, off here), with room
    // for a loaded machine: 222 ms over h2c while another spec's process closed 10,000 sockets.
    expect(result.durationMs).to.be.below(500);
    expect(ms).to.be.below(600);
  });

  it('counts a connected, silent socket as new and idle, and closes it at once', async () => {
    const { graceful, port } = await start();
    const connected = waitForValue(graceful.connections$, (e) => e.state === 'new', 2000, 'the connection');
    const silent = await RawClient.connect(port);
    cleanup.push(() => silent.destroy());
    await connected;
    const state = await waitForValue(graceful.state$, (s) => s.open === 1, 2000, 'the silent connection');
    expect(state).to.include({ active: 0, idle: 1 });
    graceful.shutdown();
    await silent.waitClosed(1000);
    expect(await graceful.wait()).to.include({ killed: 0, closedIdle: 1 });
  });

  it('lets a request in flight finish with its whole body, tells its client the connection ends, and counts it drained', async () => {
    const { graceful, connect, ran, release } = await start();
    const c = await connect();
    const { reply } = await holdRequest(graceful, c, ran);
    await shutdownThenRelease(graceful, release);
    expect(await reply).to.deep.equal(answered('/held', true));
    await c.waitClosed();
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1, closedIdle: 0 });
  });

  if (kind.protocol === 'h2') {
    it('closes a session itself once its streams are done after its last GOAWAY, without lingering idleLinger', async () => {
      const { graceful, connect, ran, release } = await start({ idleLinger: 1000 });
      let closedByServer = false;
      graceful.server.on('session', (session: Http2Session) => {
        const close = session.close.bind(session);
        session.close = (callback?: () => void) => {
          // Node also calls it when the client's own GOAWAY comes (onGoawayData): that is not ours.
          if (!String(new Error().stack).includes('onGoawayData')) closedByServer = true;
          close(callback);
        };
      });
      const c = await connect();
      const { reply } = await holdRequest(graceful, c, ran);
      await shutdownThenRelease(graceful, release);
      expect(await reply).to.deep.equal(answered('/held', true));
      // A stream the client opens after that GOAWAY is refused by the protocol: nothing is left to
      // linger for. An idle HTTP/1 connection would wait the whole second.
      await until(() => closedByServer, 900, 'the server closing the session');
      expect(await graceful.wait()).to.include({ killed: 0, drained: 1, closedIdle: 0, timedOut: false });
    });
  }

  it('refuses a newcomer once the listener has closed (ECONNREFUSED), never accepts then resets it', async () => {
    const { graceful, connect, port, ran, release } = await start();
    const { reply } = await holdRequest(graceful, await connect(), ran);
    graceful.shutdown();
    await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
    expect(await connectOutcome(port)).to.equal('ECONNREFUSED');
    release();
    expect(await reply).to.deep.equal(answered('/held', true));
    await graceful.wait();
  });

  it('destroys the connections whose requests never end at the timeout, counts them exactly, and closes the idle one as idle', async () => {
    // With the default linger, which never outlives the deadline: the idle connection is not killed.
    const { graceful, connect } = await start({ timeout: 100, idleLinger: 1000 });
    const clients = await Promise.all([connect(), connect(), connect()]);
    const idle = await connect();
    expect(await idle.request('/')).to.deep.equal(answered('/', false));
    const hanging = clients.map((c) => c.request('/hang'));
    await waitForValue(graceful.state$, (s) => s.active === 3, 2000, 'three hanging requests');
    graceful.shutdown();
    const result = await graceful.wait();
    expect(result).to.include({ killed: 3, timedOut: true, closedIdle: 1, drained: 0 });
    expect(result.durationMs).to.be.within(95, 200);
    expect(graceful.connectionsKilled).to.equal(3);
    for (const reply of await Promise.all(hanging)) expect(reply).to.have.property('error');
    await Promise.all(clients.map((c) => c.waitClosed()));
  });

  it('force() ends the shutdown at once, destroying and counting the survivors', async () => {
    const { graceful, connect } = await start({ timeout: 0 });
    const clients = await Promise.all([connect(), connect()]);
    const hanging = clients.map((c) => c.request('/hang'));
    await waitForValue(graceful.state$, (s) => s.active === 2, 2000, 'two hanging requests');
    graceful.shutdown();
    graceful.force();
    const result = await withDeadline(graceful.wait(), 1000, 'the forced end');
    expect(result).to.include({ killed: 2, forced: true, timedOut: false });
    expect(graceful.connectionsKilled).to.equal(2);
    for (const reply of await Promise.all(hanging)) expect(reply).to.have.property('error');
    await Promise.all(clients.map((c) => c.waitClosed()));
  });

  it('counts open, active and idle connections on state$', async () => {
    const { graceful, connect, ran, release } = await start();
    const [busy, idle] = await Promise.all([connect(), connect()]);
    expect(await idle.request('/')).to.deep.equal(answered('/', false));
    const { reply } = await holdRequest(graceful, busy, ran);
    expect(await waitForValue(graceful.state$, (s) => s.idle === 1, 2000, 'the other idle')).to.include({
      phase: 'serving',
      open: 2,
      active: 1,
    });
    release();
    expect(await reply).to.deep.equal(answered('/held', false));
    expect(await waitForValue(graceful.state$, (s) => s.active === 0, 2000, 'both idle')).to.include({ open: 2, idle: 2 });
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, closedIdle: 2 });
    expect(await waitForValue(graceful.state$, () => true, 100, 'the state')).to.include({ phase: 'stopped', open: 0, idle: 0 });
  });

  it('listens again after a finished shutdown, with keep-alive working again', async () => {
    const { graceful, connect } = await start({ timeout: 50 });
    const c = await connect();
    const hanging = c.request('/hang');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the hanging request');
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 1 });
    expect(await hanging).to.have.property('error');
    const port = portOf(await graceful.listen(loopback));
    expect(graceful.connectionsKilled, 'still the last shutdown').to.equal(1);
    expect((await waitForValue(graceful.state$, () => true, 100, 'the state')).killed, 'a clean cycle').to.equal(0);
    const d = await connectForTest(kind, port, cleanup);
    expect(await d.request('/')).to.deep.equal(answered('/', false));
    expect(await d.request('/')).to.deep.equal(answered('/', false));
    expect(d.closed).to.equal(false);
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, closedIdle: 1 });
    expect(graceful.connectionsKilled).to.equal(0);
  });

  it('wraps a server that is already listening: the phase starts as serving, and the drain works', async () => {
    const { handler, ran, release } = testApp();
    const server = kind.createServer(handler);
    closeAfterTest(server, cleanup);
    (server as NetServer).listen(loopback);
    await withDeadline(once(server, 'listening'), 2000, 'the server listening');
    const graceful = new GracefulServer(server, { timeout: 5000, idleLinger: 0 });
    const state = await waitForValue(graceful.state$, () => true, 100, 'a state');
    expect(state).to.include({ phase: 'serving', accepting: true });
    const c = await connectForTest(kind, portOf(server.address() ?? ''), cleanup);
    const { reply } = await holdRequest(graceful, c, ran);
    await shutdownThenRelease(graceful, release);
    expect(await reply).to.deep.equal(answered('/held', true));
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('keeps accepting and serving during drainDelay, telling clients to go, with ready$ false; then drains and refuses', async () => {
    const { graceful, connect, port } = await start({ timeout: 2000, drainDelay: 200 });
    const ready = record(graceful.ready$, cleanup);
    const idle = await connect();
    expect(await idle.request('/')).to.deep.equal(answered('/', false));
    const phases = record(graceful.state$.pipe(map((s) => `${s.phase}/${String(s.accepting)}`)), cleanup);
    const started = performance.now();
    graceful.shutdown();
    expect(ready).to.deep.equal([true, false]);
    const newcomer = await connect();
    expect(await newcomer.request('/')).to.deep.equal(answered('/', true));
    const result = await graceful.wait();
    const ms = performance.now() - started;
    expect(ms).to.be.within(190, 400);
    expect(result).to.include({ killed: 0, timedOut: false });
    expect(result.durationMs).to.be.within(190, 400);
    expect(await connectOutcome(port)).to.equal('ECONNREFUSED');
    expect(phases).to.include.members(['draining/true', 'draining/false', 'stopped/false']);
  });

  describe('on a busy event loop: idle is judged on bytes, not on the clock', () => {
    // DESIGN.md, "Drain semantics" point 2: a request the client sent before the shutdown, and that
    // sat unread in the kernel while the loop was busy, is served and told to go, never cut. With
    // `idleLinger: 0` nothing but the bytes can save it.

    it('serves requests sent on reused keep-alive connections just before shutdown()', async () => {
      const { graceful, connect } = await start();
      const clients = await Promise.all([connect(), connect(), connect()]);
      const first = await Promise.all(clients.map((c) => c.request('/first')));
      expect(first).to.deep.equal(first.map(() => answered('/first', false)));
      await waitForValue(graceful.state$, (s) => s.idle === 3 && s.active === 0, 2000, 'the connections idle');
      const replies = clients.map((c) => c.request('/sent-before-shutdown'));
      await shutdownOnABusyLoop(graceful, clients);
      const late = await Promise.all(replies);
      expect(late).to.deep.equal(late.map(() => answered('/sent-before-shutdown', true)));
      expect(await graceful.wait()).to.include({ killed: 0, drained: 3, closedIdle: 0 });
    });

    it('serves the first requests of fresh connections sent just before shutdown()', async () => {
      const { graceful, connect, secured } = await start();
      const clients = await Promise.all([connect(), connect(), connect()]);
      // HTTP/2 over TLS: a session whose first request the server read together with its handshake,
      // just before the shutdown, has been seen closed as idle with that stream refused
      // (REFUSED_STREAM, never processed) when `idleLinger` is 0: nghttp2 had not taken the HEADERS
      // in. Open question (README, "What is not done"); the wait keeps this case about the bytes.
      if (kind.tls && kind.protocol === 'h2') await until(() => secured() === 3, 2000, 'the TLS handshakes done');
      const replies = clients.map((c) => c.request('/first-request'));
      await shutdownOnABusyLoop(graceful, clients);
      const late = await Promise.all(replies);
      expect(late).to.deep.equal(late.map(() => answered('/first-request', true)));
      expect(await graceful.wait()).to.include({ killed: 0, drained: 3, closedIdle: 0 });
    });

    // Over TLS, a client has connected only once the server has answered its handshake.
    if (!kind.tls) {
      it('serves connections the kernel completed before the listener closed (the accept queue), then refuses newcomers', async () => {
        const { graceful, connect, port } = await start();
        // Three at once: the loop accepts one connection per poll phase (libuv/libuv#3696), so two of
        // them are still in the kernel's accept queue when the shutdown begins.
        const clients = await Promise.all([connect(), connect(), connect()]);
        const replies = clients.map((c) => c.request('/queued'));
        await shutdownOnABusyLoop(graceful, clients);
        const late = await Promise.all(replies);
        expect(late).to.deep.equal(late.map(() => answered('/queued', true)));
        await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
        expect(await connectOutcome(port)).to.equal('ECONNREFUSED');
        expect(await graceful.wait()).to.include({ killed: 0, drained: 3 });
      });

      it('completes no newcomer while it serves the accept queue, so the close of the listener resets none (Linux)', async function () {
        if (process.platform !== 'linux') this.skip(); // the backlog's meaning is Linux's
        const { graceful, connect, port } = await start();
        const clients = await Promise.all([connect(), connect(), connect()]);
        const replies = clients.map((c) => c.request('/queued'));
        await Promise.all(clients.map((c) => c.sent()));
        graceful.shutdown();
        // The loop is held from the call on: the queue holds what it held. With the backlog Node set
        // (511) all three newcomers would be completed here, and reset when the listener closes.
        expect(connectsWhileHeld(port, 3, 300), 'newcomers completed by the kernel').to.be.at.most(1);
        const late = await Promise.all(replies);
        expect(late).to.deep.equal(late.map(() => answered('/queued', true)));
        await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
        expect(await connectOutcome(port)).to.equal('ECONNREFUSED');
        expect(await graceful.wait()).to.include({ killed: 0, drained: 3 });
      });
    }
  });
}

describe('the drain over every kind of server', function () {
  this.timeout(15000);
  for (const kind of serverKinds) describe(kind.name, () => drainCases(kind));
});
