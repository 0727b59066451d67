import { expect } from 'chai';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { Subject } from 'rxjs';
import { take } from 'rxjs/operators';
import { ConnectionEvent, GracefulOptions, GracefulServer, NotReadyError, ServerState } from '../src';
import { afterEachTest, serveForTest } from './support/servers';
import { connectOutcome, loopback, portOf, RawClient, until, waitForValue, withDeadline } from './support/sockets';

/** A server whose handler answers `/slow` after `delay` ms, `/hang` never, anything else at once. */
function makeServer(delay = 300): { server: http.Server; ran: string[]; hanging: http.ServerResponse[] } {
  const ran: string[] = [];
  const hanging: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    ran.push(String(req.headers['x-id'] ?? req.url));
    const body = `body of ${req.url}`;
    if (req.url === '/hang') hanging.push(res);
    else if (req.url === '/slow') setTimeout(() => res.end(body), delay);
    else res.end(body);
  });
  return { server, ran, hanging };
}

describe('GracefulServer over real sockets (HTTP/1.1 on 127.0.0.1)', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  async function start(options: GracefulOptions = {}, delay?: number) {
    const made = makeServer(delay);
    return { ...made, ...(await serveForTest(made.server, { timeout: 5000, ...options }, cleanup)) };
  }

  it('finishes at once with zero connections: wait() settles within two turns of the event loop', async () => {
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

  it('closes 50 idle keep-alive sockets and drains far below the keep-alive timeout', async () => {
    const { graceful, client, server } = await start({ idleLinger: 0 });
    expect(server.keepAliveTimeout).to.equal(5000);
    const clients = await Promise.all(Array.from({ length: 50 }, () => client()));
    for (const c of clients) c.get('/');
    await Promise.all(clients.map((c) => c.read()));
    await waitForValue(graceful.state$, (s) => s.idle === 50 && s.active === 0, 2000, '50 idle connections');
    const started = process.hrtime.bigint();
    graceful.shutdown();
    const result = await graceful.wait();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    await Promise.all(clients.map((c) => c.waitClosed(1000)));
    expect(result).to.include({ killed: 0, closedIdle: 50, drained: 0, timedOut: false });
    expect(ms).to.be.below(250);
    console.log(`      (50 idle sockets drained in ${ms.toFixed(1)} ms)`);
  });

  it('lets an in-flight request finish with status 200, its whole body and connection: close', async () => {
    const { graceful, client } = await start();
    const c = await client();
    c.get('/slow');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    graceful.shutdown();
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'body of /slow' });
    expect(response.headers.connection).to.equal('close');
    await c.waitClosed();
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('refuses a newcomer during the drain (ECONNREFUSED), never accepts then resets it', async () => {
    const { graceful, client, port } = await start();
    const c = await client();
    c.get('/slow');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    graceful.shutdown();
    await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
    expect(await connectOutcome(port)).to.equal('ECONNREFUSED');
    await c.read();
    await graceful.wait();
  });

  it('answers a request sent on a kept-alive socket during the drain with connection: close', async () => {
    const { graceful, client, ran } = await start({ idleLinger: 1000 });
    const c = await client();
    c.get('/', 'first');
    expect((await c.read()).headers.connection).to.equal('keep-alive');
    graceful.shutdown();
    c.get('/', 'during-drain');
    const response = await c.read();
    expect(response.status).to.equal(200);
    expect(response.headers.connection).to.equal('close');
    await c.waitClosed();
    expect(ran).to.deep.equal(['first', 'during-drain']);
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('follows a request the application answers through checkContinue (Expect: 100-continue) like any other', async () => {
    const made = makeServer();
    made.server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeContinue();
      req.resume();
      req.on('end', () => setTimeout(() => res.end('continued'), 100));
    });
    const { graceful, client } = await serveForTest(made.server, { timeout: 2000 }, cleanup);
    const c = await client();
    c.send('POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
    expect((await c.read()).status).to.equal(100);
    c.send('hi');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    graceful.shutdown();
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'continued' });
    expect(response.headers.connection).to.equal('close');
    expect(await graceful.wait()).to.include({ killed: 0, timedOut: false, drained: 1 });
  });

  it('serves both of two pipelined requests in flight at the shutdown, only the last with close', async () => {
    const { graceful, client, ran } = await start();
    const c = await client();
    c.send('GET /slow HTTP/1.1\r\nHost: x\r\nx-id: one\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\nx-id: two\r\n\r\n');
    await until(() => ran.length === 2, 2000, 'both pipelined requests reaching the handler');
    graceful.shutdown();
    const first = await c.read();
    const second = await c.read();
    expect([first.body, second.body]).to.deep.equal(['body of /slow', 'body of /slow']);
    expect(first.headers.connection).to.equal('keep-alive');
    expect(second.headers.connection).to.equal('close');
    await c.waitClosed();
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('never processes a pipelined request that follows a response which already said close', async () => {
    const ran: string[] = [];
    let shutdownBegun!: () => void;
    const begun = new Promise<void>((resolve) => (shutdownBegun = resolve));
    let finishFirst: (() => void) | undefined;
    const server = http.createServer((req, res) => {
      ran.push(String(req.headers['x-id']));
      void begun.then(() => {
        res.writeHead(200, { 'content-length': 4 });
        res.flushHeaders(); // the head, saying close, is on the wire before the next request comes
        finishFirst = () => res.end('done');
      });
    });
    const graceful = new GracefulServer(server, { timeout: 5000 });
    const serverSocket = waitForValue(graceful.connections$, (e) => e.state === 'new', 2000, 'the connection');
    const c = await RawClient.connect(portOf(await graceful.listen(loopback)));
    cleanup.push(() => {
      c.destroy();
      server.close();
    });
    const { socket } = await serverSocket;
    c.get('/', 'one');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the first request in flight');
    graceful.shutdown();
    shutdownBegun();
    await until(() => c.unread > 0, 2000, 'the head of the first response');
    const before = socket.bytesRead;
    c.get('/', 'two');
    await until(() => socket.bytesRead > before, 2000, 'the server reading the second request');
    finishFirst?.();
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'done' });
    expect(response.headers.connection).to.equal('close');
    await c.waitClosed();
    expect(ran).to.deep.equal(['one']); // 'two' never reached the application: it was not lost
    expect(c.unread).to.equal(0);
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('destroys handlers that never respond at the timeout and counts them exactly', async () => {
    const { graceful, client } = await start({ timeout: 200 });
    const clients = await Promise.all([client(), client(), client()]);
    const idle = await client();
    idle.get('/');
    await idle.read();
    for (const c of clients) c.get('/hang');
    await waitForValue(graceful.state$, (s) => s.active === 3, 2000, 'three hanging requests');
    graceful.shutdown();
    const result = await graceful.wait();
    expect(result).to.include({ killed: 3, timedOut: true, closedIdle: 1, drained: 0 });
    expect(result.durationMs).to.be.within(195, 300);
    expect(graceful.connectionsKilled).to.equal(3);
    await Promise.all(clients.map((c) => c.waitClosed()));
  });

  it('serves a request whose head was half-sent when the shutdown came', async () => {
    const { graceful, client, ran } = await start();
    const connected = waitForValue(graceful.connections$, (e) => e.state === 'new', 2000, 'the connection');
    const c = await client();
    const { socket } = await connected;
    c.send('GET /half HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await until(() => socket.bytesRead > 0, 2000, 'the server reading half a head');
    graceful.shutdown();
    c.send('x-id: half\r\n\r\n');
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'body of /half' });
    expect(response.headers.connection).to.equal('close');
    expect(ran).to.deep.equal(['half']);
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('closes a connection that has sent no byte as idle', async () => {
    const { graceful, client } = await start({ idleLinger: 0 });
    const c = await client();
    await waitForValue(graceful.state$, (s) => s.open === 1, 2000, 'the silent connection');
    graceful.shutdown();
    await c.waitClosed(1000);
    expect(await graceful.wait()).to.include({ killed: 0, closedIdle: 1 });
  });

  it('rejects listen and serve with NotReadyError: quitting false while serving, true while draining', async () => {
    const { graceful, client } = await start();
    const serving = await graceful.listen(loopback).catch((e: unknown) => e);
    expect(serving).to.be.instanceOf(NotReadyError).and.include({ quitting: false, name: 'NotReadyError' });
    const c = await client();
    c.get('/slow');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    graceful.shutdown();
    const draining = await graceful.serve(loopback).catch((e: unknown) => e);
    expect(draining).to.be.instanceOf(NotReadyError).and.include({ quitting: true });
    await graceful.wait();
  });

  it('rejects EADDRINUSE with the original error and stays usable', async () => {
    const { port } = await start();
    const other = new GracefulServer(http.createServer((_, res) => res.end('ok')));
    const error = (await other.listen({ port, host: '127.0.0.1' }).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(error.code).to.equal('EADDRINUSE');
    const states: ServerState[] = [];
    other.state$.pipe(take(1)).subscribe((s) => states.push(s));
    expect(states[0]?.phase).to.equal('stopped');
    const port2 = portOf(await other.listen(loopback));
    expect(await connectOutcome(port2)).to.equal('connected');
    other.shutdown();
    await other.wait();
  });

  it('listens again after a finished shutdown, with keep-alive working again', async () => {
    const { graceful, client } = await start({ timeout: 100 });
    const c = await client();
    c.get('/hang');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the hanging request');
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 1 });
    const port = portOf(await graceful.listen(loopback));
    expect(graceful.connectionsKilled, 'still the last shutdown').to.equal(1);
    expect((await waitForValue(graceful.state$, () => true, 100, 'the state')).killed, 'a clean cycle').to.equal(0);
    const d = await RawClient.connect(port);
    cleanup.push(() => d.destroy());
    d.get('/');
    expect((await d.read()).headers.connection).to.equal('keep-alive');
    d.get('/');
    expect((await d.read()).headers.connection).to.equal('keep-alive');
    expect(d.closed).to.equal(false);
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, closedIdle: 1 });
    expect(graceful.connectionsKilled).to.equal(0);
  });

  it('shuts down from take(1) of a signal-like Subject in two consecutive cycles', async () => {
    const { graceful } = await start();
    const signals = new Subject<string>();
    for (let cycle = 0; cycle < 2; cycle++) {
      if (cycle > 0) await graceful.listen(loopback);
      signals.pipe(take(1)).subscribe(graceful.shutdown$);
      const done = graceful.wait();
      signals.next('SIGTERM');
      expect(await withDeadline(done, 1000, `the shutdown of cycle ${cycle + 1}`)).to.include({ killed: 0 });
    }
  });

  it('resolves serve() when accepting stops, and with syncShutdown only after the drain', async () => {
    for (const syncShutdown of [false, true]) {
      const made = makeServer(200);
      const graceful = new GracefulServer(made.server, { syncShutdown });
      cleanup.push(() => made.server.close());
      const order: string[] = [];
      const served = graceful.serve(loopback).then(() => order.push('serve'));
      await waitForValue(graceful.state$, (s) => s.phase === 'serving', 2000, 'serving');
      const port = portOf(made.server.address() ?? '');
      const c = await RawClient.connect(port);
      cleanup.push(() => c.destroy());
      c.get('/slow');
      await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
      graceful.shutdown();
      const waited = graceful.wait().then(() => order.push('drained'));
      await Promise.all([served, waited]);
      expect(order).to.deep.equal(syncShutdown ? ['drained', 'serve'] : ['serve', 'drained']);
    }
  });

  it('reports new, active, idle and closed on connections$ and onConnState, with the socket', async () => {
    const seen: string[] = [];
    const made = makeServer();
    const graceful = new GracefulServer(made.server, { onConnState: (_, state) => seen.push(`cb ${state}`) });
    const events: ConnectionEvent[] = [];
    graceful.connections$.subscribe((e) => events.push(e));
    const port = portOf(await graceful.listen(loopback));
    cleanup.push(() => made.server.close());
    const c = await RawClient.connect(port);
    c.get('/');
    await c.read();
    c.destroy();
    await until(() => events.some((e) => e.state === 'closed'), 2000, 'the close');
    expect(events.map((e) => `${e.previous ?? '-'}>${e.state}`)).to.deep.equal([
      '->new',
      'new>active',
      'active>idle',
      'idle>closed',
    ]);
    expect(new Set(events.map((e) => e.id)).size).to.equal(1);
    expect(events[0]?.socket.remotePort).to.equal(c.socket.localPort);
    expect(seen).to.deep.equal(['cb new', 'cb active', 'cb idle', 'cb closed']);
    graceful.shutdown();
    await graceful.wait();
  });

  it('counts pipelined requests as one active connection until the last response', async () => {
    const { graceful, client } = await start({}, 100);
    const c = await client();
    const states: string[] = [];
    graceful.connections$.subscribe((e) => states.push(e.state));
    c.send('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.read();
    await c.read();
    await waitForValue(graceful.state$, (s) => s.idle === 1, 2000, 'the connection idle');
    expect(states).to.deep.equal(['active', 'idle']);
    graceful.shutdown();
    await graceful.wait();
  });

  it('takes an upgraded socket out of the tracked set as hijacked, without waiting for it', async () => {
    const made = makeServer();
    made.server.on('upgrade', (_req, socket: import('node:net').Socket) => {
      socket.on('error', () => undefined); // the test's own cleanup resets it
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
    });
    const graceful = new GracefulServer(made.server);
    const port = portOf(await graceful.listen(loopback));
    const c = await RawClient.connect(port);
    cleanup.push(() => {
      c.destroy();
      made.server.close();
    });
    c.send('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
    const state = await waitForValue(graceful.state$, (s) => s.open === 0 && s.phase === 'serving', 2000, 'hijack');
    expect(state.open).to.equal(0);
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, hijacked: 1 });
    expect(c.closed).to.equal(false);
  });

  it('wraps a server that is already listening: the phase starts as serving', async () => {
    const made = makeServer();
    made.server.listen(0, '127.0.0.1');
    await new Promise((r) => made.server.once('listening', r));
    cleanup.push(() => made.server.close());
    const graceful = new GracefulServer(made.server);
    const state = await waitForValue(graceful.state$, () => true, 100, 'a state');
    expect(state).to.include({ phase: 'serving', accepting: true });
    const c = await RawClient.connect(portOf(made.server.address() ?? ''));
    cleanup.push(() => c.destroy());
    c.get('/slow');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    graceful.shutdown();
    expect((await c.read()).headers.connection).to.equal('close');
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });
});

describe('GracefulServer drainDelay and force() over real sockets', function () {
  this.timeout(15000);

  it('keeps accepting and serving with Connection: close during the delay, ready$ false, then drains', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    const graceful = new GracefulServer(server, { timeout: 2000, drainDelay: 200 });
    const ready: boolean[] = [];
    graceful.ready$.subscribe((r) => ready.push(r));
    const port = portOf(await graceful.listen(loopback));
    const idle = await RawClient.connect(port);
    idle.get('/');
    expect((await idle.read()).headers.connection).to.equal('keep-alive');
    const phases: string[] = [];
    graceful.state$.subscribe((s) => phases.push(`${s.phase}/${s.accepting}`));
    const started = performance.now();
    graceful.shutdown();
    expect(ready).to.deep.equal([false, true, false]);
    // During the delay: a newcomer is accepted and served, with close; the idle socket stays open.
    const newcomer = await RawClient.connect(port);
    newcomer.get('/');
    expect((await newcomer.read()).headers.connection).to.equal('close');
    expect(idle.closed).to.equal(false);
    idle.get('/');
    expect((await idle.read()).headers.connection).to.equal('close');
    const result = await graceful.wait();
    const ms = performance.now() - started;
    expect(ms).to.be.within(190, 400);
    expect(result).to.include({ killed: 0, timedOut: false });
    expect(result.durationMs).to.be.within(190, 400);
    expect(await connectOutcome(port)).to.equal('ECONNREFUSED');
    expect(phases).to.include.members(['draining/true', 'draining/false', 'stopped/false']);
    newcomer.destroy();
    idle.destroy();
  });

  it('force() ends the shutdown at once, destroying and counting the survivors', async () => {
    const server = http.createServer(() => undefined);
    const graceful = new GracefulServer(server, { timeout: 0 });
    const port = portOf(await graceful.listen(loopback));
    const clients = await Promise.all([RawClient.connect(port), RawClient.connect(port)]);
    for (const c of clients) c.get('/hang');
    await waitForValue(graceful.state$, (s) => s.active === 2, 2000, 'two hanging requests');
    graceful.shutdown();
    graceful.force();
    const result = await withDeadline(graceful.wait(), 1000, 'the forced end');
    expect(result).to.include({ killed: 2, forced: true, timedOut: false });
    expect(graceful.connectionsKilled).to.equal(2);
    await Promise.all(clients.map((c) => c.waitClosed()));
  });
});

describe('server.close() called by anyone on a wrapped server', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  it('starts the graceful shutdown: the in-flight response says close, and the callback runs once drained', async () => {
    const made = makeServer();
    const { graceful, client } = await serveForTest(made.server, { timeout: 5000 }, cleanup);
    const c = await client();
    c.get('/slow');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    const order: string[] = [];
    void graceful.wait().then(() => order.push('wait'));
    const closed = new Promise<unknown[]>((resolve) =>
      made.server.close((...args: unknown[]) => {
        order.push('close callback');
        resolve(args);
      }),
    );
    expect(graceful.shutdownOK(), 'close() started the shutdown').to.equal(false);
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'body of /slow' });
    expect(response.headers.connection).to.equal('close');
    expect(await withDeadline(closed, 2000, 'the close callback')).to.deep.equal([]);
    expect(order).to.deep.equal(['wait', 'close callback']);
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('joins a shutdown in progress, delay included, and calls back when that drain has finished', async () => {
    const made = makeServer();
    const { graceful } = await serveForTest(made.server, { timeout: 5000, drainDelay: 100 }, cleanup);
    const started = performance.now();
    graceful.shutdown();
    await new Promise<void>((resolve) => made.server.close(() => resolve()));
    expect(performance.now() - started).to.be.at.least(95);
    expect(await graceful.wait()).to.include({ killed: 0, timedOut: false });
  });

  it("on a server that is not serving, is Node's own close(): the callback gets ERR_SERVER_NOT_RUNNING", async () => {
    const made = makeServer();
    new GracefulServer(made.server);
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => made.server.close(resolve));
    expect(error?.code).to.equal('ERR_SERVER_NOT_RUNNING');
  });
});

describe('readinessProbe(req, res)', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  it('answers 200 while serving, and 503 with Connection: close from the first instant of a shutdown (detached, as a plain handler)', async () => {
    let probe: GracefulServer['readinessProbe'] = () => undefined;
    const server = http.createServer((req, res) => probe(req, res));
    const { graceful, client } = await serveForTest(server, { timeout: 5000, drainDelay: 300 }, cleanup);
    probe = graceful.readinessProbe;
    const c = await client();
    c.get('/ready');
    const ready = await c.read();
    expect(ready).to.deep.include({ status: 200 });
    expect(ready.headers.connection).to.equal('keep-alive');
    graceful.shutdown();
    c.get('/ready');
    const draining = await c.read();
    expect(draining.status).to.equal(503);
    expect(draining.headers.connection).to.equal('close');
    await graceful.wait();
  });

  it('answers 503 over HTTP/2 without a Connection header (GOAWAY does that job)', async () => {
    const server = http2.createServer();
    const graceful = new GracefulServer(server, { timeout: 5000, drainDelay: 300 });
    server.on('request', graceful.readinessProbe);
    const port = portOf(await graceful.listen(loopback));
    // A prober opens a session per probe: the one in use at the shutdown is told GOAWAY.
    const probe = (): Promise<{ status: number; connection: unknown }> => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      cleanup.push(() => session.destroy());
      return new Promise((resolve, reject) => {
        const stream = session.request({ ':path': '/ready' });
        stream.on('response', (headers) => resolve({ status: Number(headers[':status']), connection: headers['connection'] }));
        stream.on('error', reject);
        stream.on('close', () => session.close());
        stream.resume();
        stream.end();
      });
    };
    expect(await probe()).to.deep.equal({ status: 200, connection: undefined });
    graceful.shutdown();
    expect(await probe()).to.deep.equal({ status: 503, connection: undefined });
    await graceful.wait();
  });
});
