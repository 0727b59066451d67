import { expect } from 'chai';
import * as http from 'node:http';
import { Subject, take } from 'rxjs';
import { ConnectionEvent, GracefulOptions, GracefulServer, NotReadyError } from '../src';
import { answered, closeAfterTest, connectForTest, httpKind, serveKind, serveTestApp, testApp } from './support/server-kinds';
import { afterEachTest, record } from './support/servers';
import { connectOutcome, loopback, portOf, until, waitForValue, withDeadline } from './support/sockets';

/**
 * The Go-shaped methods of the facade, over HTTP/1.1 on 127.0.0.1. What a drain does over every
 * kind of server is in drain-cases.spec.ts; the protocols' own rules in spec/node/.
 */
describe('GracefulServer', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  const start = (options: GracefulOptions = {}) => serveTestApp(httpKind, options, cleanup);

  it('rejects listen and serve with NotReadyError: quitting false while serving, true while draining', async () => {
    const { graceful, connect, release } = await start();
    const serving = await graceful.listen(loopback).catch((e: unknown) => e);
    expect(serving).to.be.instanceOf(NotReadyError).and.include({ quitting: false, name: 'NotReadyError' });
    const reply = (await connect()).request('/held');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    graceful.shutdown();
    const draining = await graceful.serve(loopback).catch((e: unknown) => e);
    expect(draining).to.be.instanceOf(NotReadyError).and.include({ quitting: true });
    release();
    expect(await reply).to.deep.equal(answered('/held', true));
    await graceful.wait();
  });

  it('rejects EADDRINUSE with the original error and stays usable', async () => {
    const { port } = await start();
    const server = http.createServer((_, res) => res.end('ok'));
    closeAfterTest(server, cleanup);
    const other = new GracefulServer(server);
    const error = (await other.listen({ port, host: '127.0.0.1' }).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(error.code).to.equal('EADDRINUSE');
    expect((await waitForValue(other.state$, () => true, 100, 'the state')).phase).to.equal('stopped');
    const port2 = portOf(await other.listen(loopback));
    expect(await connectOutcome(port2)).to.equal('connected');
    other.shutdown();
    await other.wait();
  });

  it('shuts down from take(1) of a signal-like Subject in two consecutive cycles', async () => {
    const { graceful } = await start();
    const signals = new Subject<string>();
    for (let cycle = 0; cycle < 2; cycle++) {
      if (cycle > 0) await graceful.listen(loopback);
      const piped = signals.pipe(take(1)).subscribe(graceful.shutdown$);
      cleanup.push(() => piped.unsubscribe());
      const done = graceful.wait();
      signals.next('SIGTERM');
      expect(await withDeadline(done, 1000, `the shutdown of cycle ${cycle + 1}`)).to.include({ killed: 0 });
    }
  });

  it('resolves serve() when accepting stops, and with syncShutdown only after the drain', async () => {
    for (const syncShutdown of [false, true]) {
      const { handler, release } = testApp();
      const server = httpKind.createServer(handler);
      closeAfterTest(server, cleanup);
      const graceful = new GracefulServer(server, { syncShutdown });
      const order: string[] = [];
      const served = graceful.serve(loopback).then(() => order.push('serve'));
      await waitForValue(graceful.state$, (s) => s.phase === 'serving', 2000, 'serving');
      const c = await connectForTest(httpKind, portOf(server.address() ?? ''), cleanup);
      const reply = c.request('/held');
      await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
      graceful.shutdown();
      const waited = graceful.wait().then(() => order.push('drained'));
      // The request is still held when accepting stops: only the drain waits for it.
      await (syncShutdown ? waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed') : served);
      release();
      await Promise.all([served, waited, reply]);
      expect(order).to.deep.equal(syncShutdown ? ['drained', 'serve'] : ['serve', 'drained']);
    }
  });

  it('reports new, active, idle and closed on connections$ and onConnState, with the socket', async () => {
    const seen: string[] = [];
    const { graceful, connect } = await start({ onConnState: (_, state) => seen.push(`cb ${state}`) });
    const events = record(graceful.connections$, cleanup);
    const c = await connect();
    expect(await c.request('/')).to.deep.equal(answered('/', false));
    c.destroy();
    await until(() => events.some((e) => e.state === 'closed'), 2000, 'the close');
    expect(events.map((e: ConnectionEvent) => `${e.previous ?? '-'}>${e.state}`)).to.deep.equal([
      '->new',
      'new>active',
      'active>idle',
      'idle>closed',
    ]);
    expect(new Set(events.map((e) => e.id)).size).to.equal(1);
    expect(events[0]?.socket.remotePort).to.equal(c.raw.socket.localPort);
    expect(seen).to.deep.equal(['cb new', 'cb active', 'cb idle', 'cb closed']);
    graceful.shutdown();
    await graceful.wait();
  });

  it('reports ready$ false before the first listen, true while serving, and false by the time shutdown() returns', async () => {
    const server = httpKind.createServer(testApp().handler);
    closeAfterTest(server, cleanup);
    const graceful = new GracefulServer(server);
    const ready = record(graceful.ready$, cleanup);
    await graceful.listen(loopback);
    graceful.shutdown();
    expect(ready).to.deep.equal([false, true, false]);
    await graceful.wait();
  });
});

describe('server.close() called by anyone on a wrapped server', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  it('starts the graceful shutdown: the in-flight response says close, and the callback runs once drained', async () => {
    const { graceful, server, connect, release } = await serveTestApp(httpKind, {}, cleanup);
    const reply = (await connect()).request('/held');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    const order: string[] = [];
    void graceful.wait().then(() => order.push('wait'));
    const closed = new Promise<unknown[]>((resolve) =>
      server.close((...args: unknown[]) => {
        order.push('close callback');
        resolve(args);
      }),
    );
    expect(graceful.shutdownOK(), 'close() started the shutdown').to.equal(false);
    await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
    release();
    expect(await reply).to.deep.equal(answered('/held', true));
    expect(await withDeadline(closed, 2000, 'the close callback')).to.deep.equal([]);
    expect(order).to.deep.equal(['wait', 'close callback']);
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('joins a shutdown in progress, delay included, and calls back when that drain has finished', async () => {
    const { graceful, server } = await serveTestApp(httpKind, { drainDelay: 100 }, cleanup);
    const started = performance.now();
    graceful.shutdown();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(performance.now() - started).to.be.at.least(95);
    expect(await graceful.wait()).to.include({ killed: 0, timedOut: false });
  });

  it("on a server that is not serving, is Node's own close(): the callback gets ERR_SERVER_NOT_RUNNING", async () => {
    const server = httpKind.createServer(testApp().handler);
    new GracefulServer(server);
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => server.close(resolve));
    expect(error?.code).to.equal('ERR_SERVER_NOT_RUNNING');
  });
});

describe('readinessProbe(req, res)', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  it('answers 200 while serving, and 503 with Connection: close from the first instant of a shutdown (detached, as a plain handler)', async () => {
    let probe: GracefulServer['readinessProbe'] = () => undefined;
    const { graceful, connect } = await serveKind(
      httpKind,
      (req, res) => probe(req, res),
      { timeout: 5000, drainDelay: 100 },
      cleanup,
    );
    probe = graceful.readinessProbe;
    const c = await connect();
    c.raw.get('/ready');
    const ready = await c.raw.read();
    expect(ready).to.deep.include({ status: 200 });
    expect(ready.headers.connection).to.equal('keep-alive');
    graceful.shutdown();
    c.raw.get('/ready');
    const draining = await c.raw.read();
    expect(draining.status).to.equal(503);
    expect(draining.headers.connection).to.equal('close');
    await graceful.wait();
  });
});
