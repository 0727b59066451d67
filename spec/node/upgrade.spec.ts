import { expect } from 'chai';
import { once } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { filter, take } from 'rxjs/operators';
import { WebSocket, WebSocketServer } from 'ws';
import { GracefulServer } from '../../src';
import { loopback, portOf, RawClient, waitForValue, withDeadline } from '../support/sockets';

describe('upgrades and WebSockets', function () {
  this.timeout(15000);
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const step of cleanup.splice(0)) step();
  });

  async function start(options: { timeout?: number; waitForHijacked?: boolean } = {}) {
    const server = http.createServer((_, res) => res.end('plain'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo ${String(data)}`)));
    const graceful = new GracefulServer(server, { timeout: 5000, ...options });
    const port = portOf(await graceful.listen(loopback));
    cleanup.push(() => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.close();
    });
    const client = async (): Promise<{ ws: WebSocket; closed: Promise<number> }> => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`);
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      ws.on('error', () => undefined);
      cleanup.push(() => ws.terminate());
      await withDeadline(once(ws, 'open'), 2000, 'the WebSocket to open');
      return { ws, closed };
    };
    return { server, wss, graceful, port, client };
  }

  it('reports a WebSocket as hijacked, out of the tracked set, and by default does not wait for it', async () => {
    const { graceful, client } = await start();
    const hijacked = waitForValue(graceful.connections$, (e) => e.state === 'hijacked', 2000, 'the hijack');
    const { ws } = await client();
    await hijacked;
    expect(await waitForValue(graceful.state$, () => true, 100, 'the state')).to.include({ open: 0, active: 0 });
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, hijacked: 1 });
    expect(ws.readyState).to.equal(WebSocket.OPEN);
  });

  it('with waitForHijacked, waits while the application closes its WebSockets with 1001, then ends', async () => {
    const { graceful, wss, client } = await start({ waitForHijacked: true });
    const clients = await Promise.all([client(), client(), client()]);
    graceful.state$
      .pipe(
        filter((s) => s.phase === 'draining'),
        take(1),
      )
      .subscribe(() => {
        for (const ws of wss.clients) ws.close(1001, 'going away');
      });
    const closes = graceful.connections$.pipe(filter((e) => e.state === 'closed'));
    const closed: number[] = [];
    closes.subscribe((e) => closed.push(e.id));
    graceful.shutdown();
    const result = await graceful.wait();
    expect(await Promise.all(clients.map((c) => c.closed))).to.deep.equal([1001, 1001, 1001]);
    expect(result).to.include({ killed: 0, hijacked: 3, timedOut: false });
    expect(closed).to.have.length(3);
  });

  it('with waitForHijacked, destroys and counts a WebSocket that never closes at the deadline', async () => {
    const { graceful, client } = await start({ waitForHijacked: true, timeout: 200 });
    const { closed } = await client();
    graceful.shutdown();
    const result = await graceful.wait();
    expect(result).to.include({ killed: 1, hijacked: 1, timedOut: true });
    expect(await withDeadline(closed, 2000, 'the WebSocket to see its socket go')).to.equal(1006);
  });

  it('reports a CONNECT tunnel as hijacked', async () => {
    const server = http.createServer();
    server.on('connect', (_req, socket: net.Socket) => {
      socket.on('error', () => undefined);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    });
    const graceful = new GracefulServer(server);
    const port = portOf(await graceful.listen(loopback));
    const c = await RawClient.connect(port);
    cleanup.push(() => {
      c.destroy();
      server.close();
    });
    const hijacked = waitForValue(graceful.connections$, (e) => e.state === 'hijacked', 2000, 'the hijack');
    c.send('CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n');
    expect((await hijacked).previous).to.equal('new');
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 0, hijacked: 1 });
  });

  it('follows an HTTP/2 CONNECT as the stream it is, not as a hijacked connection that never closes', async () => {
    // Node's compatibility layer (which emits 'connect') runs only once a 'request' listener exists.
    const server = http2.createServer((_req, res) => res.end());
    server.on('connect', (_req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      res.writeHead(200);
      res.end();
    });
    const graceful = new GracefulServer(server, { timeout: 2000, waitForHijacked: true });
    const port = portOf(await graceful.listen(loopback));
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    cleanup.push(() => {
      session.destroy();
      server.close();
    });
    const hijacks: number[] = [];
    const seen = graceful.connections$.subscribe((e) => e.state === 'hijacked' && hijacks.push(e.id));
    const tunnel = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:9' });
    tunnel.on('error', () => undefined);
    const [headers] = (await withDeadline(once(tunnel, 'response'), 2000, 'the CONNECT response')) as [http2.IncomingHttpHeaders];
    expect(headers[':status']).to.equal(200);
    graceful.shutdown();
    tunnel.close();
    session.close();
    const result = await withDeadline(graceful.wait(), 1500, 'the drain, which has nothing hijacked to wait for');
    seen.unsubscribe();
    expect(hijacks).to.deep.equal([]);
    expect(result).to.include({ killed: 0, timedOut: false, hijacked: 0 });
  });
});
