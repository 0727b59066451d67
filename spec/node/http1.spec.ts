import { expect } from 'chai';
import { once } from 'node:events';
import type * as http from 'node:http';
import type { Socket } from 'node:net';
import { filter, take } from 'rxjs';
import { WebSocket, WebSocketServer } from 'ws';
import { GracefulOptions } from '../../src';
import { answered, Handler, Http1Kind, http1Kinds, httpKind, ServedKind, serveKind, serveTestApp } from '../support/server-kinds';
import { afterEachTest, record } from '../support/servers';
import { blockEventLoop, until, waitForValue, withDeadline } from '../support/sockets';

/** HTTP/1 on its connections (src/node/http1.ts), over every kind of server that speaks it. */
function http1Cases(kind: Http1Kind): void {
  const cleanup = afterEachTest();

  /** A raw connection to `served`, every change of it, and the server's socket of it as accepted (for TLS, the TCP socket). */
  async function rawConnection(served: ServedKind<Http1Kind>) {
    const events = record(served.graceful.connections$, cleanup);
    const c = (await served.connect()).raw;
    await until(() => events.length > 0, 2000, 'the connection accepted');
    return { c, events, serverSocket: events[0]?.socket as Socket };
  }

  async function start(options: GracefulOptions = {}) {
    const served = await serveTestApp(kind, options, cleanup);
    return { ...served, ...(await rawConnection(served)) };
  }

  it('answers a request sent on a kept-alive connection during the idle linger with Connection: close', async () => {
    const { graceful, c, ran } = await start({ idleLinger: 1000 });
    c.get('/first');
    expect((await c.read()).headers.connection).to.equal('keep-alive');
    graceful.shutdown();
    c.get('/during-drain');
    const response = await c.read();
    expect(response.status).to.equal(200);
    expect(response.headers.connection).to.equal('close');
    await c.waitClosed();
    expect(ran).to.deep.equal(['/first', '/during-drain']);
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('keeps an idle connection open during drainDelay and answers its request with Connection: close', async () => {
    const { graceful, c, connect } = await start({ drainDelay: 5000 });
    c.get('/');
    expect((await c.read()).headers.connection).to.equal('keep-alive');
    graceful.shutdown();
    const newcomer = await connect();
    expect(await newcomer.request('/')).to.deep.equal(answered('/', true));
    expect(c.closed, 'closed during the delay').to.equal(false);
    c.get('/');
    expect((await c.read()).headers.connection).to.equal('close');
    await waitForValue(graceful.state$, (s) => s.open === 0, 2000, 'both connections closed');
    graceful.force(); // ends the delay: nothing is left to wait for
    expect(await graceful.wait()).to.include({ killed: 0, forced: true });
  });

  it('follows a request the application answers through checkContinue (Expect: 100-continue) like any other', async () => {
    const { graceful, server, c } = await start();
    let answer: (() => void) | undefined;
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeContinue();
      req.resume();
      req.on('end', () => (answer = () => res.end('continued')));
    });
    c.send('POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
    expect((await c.read()).status).to.equal(100);
    c.send('hi');
    await until(() => answer !== undefined, 2000, 'the whole request body');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    graceful.shutdown();
    await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
    answer?.();
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'continued' });
    expect(response.headers.connection).to.equal('close');
    expect(await graceful.wait()).to.include({ killed: 0, timedOut: false, drained: 1 });
  });

  it('serves both of two pipelined requests in flight at the shutdown, only the last with close', async () => {
    const { graceful, c, ran, release } = await start();
    c.send('GET /held-1 HTTP/1.1\r\nHost: x\r\n\r\nGET /held-2 HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => ran.length === 2, 2000, 'both pipelined requests reaching the handler');
    graceful.shutdown();
    await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
    release();
    const first = await c.read();
    const second = await c.read();
    expect([first.body, second.body]).to.deep.equal(['body of /held-1', 'body of /held-2']);
    expect(first.headers.connection).to.equal('keep-alive');
    expect(second.headers.connection).to.equal('close');
    await c.waitClosed();
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('counts pipelined requests as one active connection until the last response', async () => {
    const { graceful, c, ran, release, events } = await start();
    c.send('GET /held-1 HTTP/1.1\r\nHost: x\r\n\r\nGET /held-2 HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => ran.length === 2, 2000, 'both pipelined requests reaching the handler');
    release();
    await c.read();
    await c.read();
    await waitForValue(graceful.state$, (s) => s.idle === 1, 2000, 'the connection idle');
    expect(events.map((e) => e.state)).to.deep.equal(['new', 'active', 'idle']);
    graceful.shutdown();
    await graceful.wait();
  });

  it('never processes a pipelined request that follows a response which already said close', async () => {
    const ran: string[] = [];
    let shutdownBegun!: () => void;
    const begun = new Promise<void>((resolve) => (shutdownBegun = resolve));
    let finishFirst: (() => void) | undefined;
    const handler: Handler = (req, response) => {
      ran.push(String(req.headers['x-id']));
      const res = response as http.ServerResponse; // an HTTP/1 kind: Node's HTTP/1 response
      void begun.then(() => {
        res.writeHead(200, { 'content-length': 4 });
        res.flushHeaders(); // the head, saying close, is on the wire before the next request comes
        finishFirst = () => res.end('done');
      });
    };
    const served = await serveKind(kind, handler, { timeout: 5000 }, cleanup);
    const { graceful } = served;
    const { c, serverSocket } = await rawConnection(served);
    c.get('/', 'one');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the first request in flight');
    graceful.shutdown();
    shutdownBegun();
    await until(() => c.unread > 0, 2000, 'the head of the first response');
    const before = serverSocket.bytesRead;
    c.get('/', 'two');
    await until(() => serverSocket.bytesRead > before, 2000, 'the server reading the second request');
    finishFirst?.();
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'done' });
    expect(response.headers.connection).to.equal('close');
    await c.waitClosed();
    expect(ran).to.deep.equal(['one']); // 'two' never reached the application: it was not lost
    expect(c.unread).to.equal(0);
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('serves a request whose head was half-sent when the shutdown came', async () => {
    const { graceful, c, ran, serverSocket } = await start();
    const before = serverSocket.bytesRead;
    c.send('GET /half HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await until(() => serverSocket.bytesRead > before, 2000, 'the server reading half a head');
    graceful.shutdown();
    c.send('x-id: half\r\n\r\n');
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'body of /half' });
    expect(response.headers.connection).to.equal('close');
    expect(ran).to.deep.equal(['/half']);
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('keeps a connection with half a request head open on a busy loop, and serves it when it completes', async () => {
    const { graceful, c } = await start();
    c.send('GET /half HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    graceful.shutdown();
    blockEventLoop(100);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(c.closed, 'closed under a request head').to.equal(false);
    c.send('x-id: half\r\n\r\n');
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'body of /half' });
    expect(response.headers.connection).to.equal('close');
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });
}

describe('HTTP/1 connections', function () {
  this.timeout(15000);
  for (const kind of http1Kinds) describe(kind.name, () => http1Cases(kind));
});

describe('hijacked HTTP/1 connections: upgrades, WebSockets and CONNECT', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  async function withWebSockets(options: GracefulOptions = {}) {
    const served = await serveTestApp(httpKind, options, cleanup);
    const wss = new WebSocketServer({ server: served.server as http.Server });
    cleanup.push(() => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    });
    const client = async (): Promise<{ ws: WebSocket; closed: Promise<number> }> => {
      const ws = new WebSocket(`ws://127.0.0.1:${served.port}`);
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      ws.on('error', () => undefined);
      cleanup.push(() => ws.terminate());
      await withDeadline(once(ws, 'open'), 2000, 'the WebSocket to open');
      return { ws, closed };
    };
    return { ...served, wss, client };
  }

  it('takes an upgraded socket out of the tracked set as hijacked, without waiting for it', async () => {
    const { graceful, server, connect } = await serveTestApp(httpKind, {}, cleanup);
    server.on('upgrade', (_req, socket: Socket) => {
      socket.on('error', () => undefined); // the test's own cleanup resets it
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
    });
    const c = (await connect()).raw;
    c.send('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
    await waitForValue(graceful.connections$, (e) => e.state === 'hijacked', 2000, 'the hijack');
    expect(await waitForValue(graceful.state$, () => true, 100, 'the state')).to.include({ open: 0, phase: 'serving' });
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, hijacked: 1 });
    expect(c.closed).to.equal(false);
  });

  it('reports a WebSocket as hijacked, out of the tracked set, and by default does not wait for it', async () => {
    const { graceful, client } = await withWebSockets();
    const hijacked = waitForValue(graceful.connections$, (e) => e.state === 'hijacked', 2000, 'the hijack');
    const { ws } = await client();
    await hijacked;
    expect(await waitForValue(graceful.state$, () => true, 100, 'the state')).to.include({ open: 0, active: 0 });
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, hijacked: 1 });
    expect(ws.readyState).to.equal(WebSocket.OPEN);
  });

  it('with waitForHijacked, waits while the application closes its WebSockets with 1001, then ends', async () => {
    const { graceful, wss, client } = await withWebSockets({ waitForHijacked: true });
    const clients = await Promise.all([client(), client(), client()]);
    const goingAway = graceful.state$
      .pipe(
        filter((s) => s.phase === 'draining'),
        take(1),
      )
      .forEach(() => {
        for (const ws of wss.clients) ws.close(1001, 'going away');
      });
    const closed = record(graceful.connections$.pipe(filter((e) => e.state === 'closed')), cleanup);
    graceful.shutdown();
    const result = await graceful.wait();
    await goingAway;
    expect(await Promise.all(clients.map((c) => c.closed))).to.deep.equal([1001, 1001, 1001]);
    expect(result).to.include({ killed: 0, hijacked: 3, timedOut: false });
    expect(closed).to.have.length(3);
  });

  it('with waitForHijacked, destroys and counts a WebSocket that never closes at the deadline', async () => {
    const { graceful, client } = await withWebSockets({ waitForHijacked: true, timeout: 100 });
    const { closed } = await client();
    graceful.shutdown();
    const result = await graceful.wait();
    expect(result).to.include({ killed: 1, hijacked: 1, timedOut: true });
    expect(await withDeadline(closed, 2000, 'the WebSocket to see its socket go')).to.equal(1006);
  });

  it('reports a CONNECT tunnel as hijacked', async () => {
    const { graceful, server, connect } = await serveTestApp(httpKind, {}, cleanup);
    server.on('connect', (_req, socket: Socket) => {
      socket.on('error', () => undefined);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    });
    const c = (await connect()).raw;
    const hijacked = waitForValue(graceful.connections$, (e) => e.state === 'hijacked', 2000, 'the hijack');
    c.send('CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n');
    expect((await hijacked).previous).to.equal('new');
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, hijacked: 1 });
  });
});
