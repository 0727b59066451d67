import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fstatSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { interceptEmit } from '../../src/node/intercept';
import {
  addressPair,
  announcedClose,
  ByteCounter,
  byteCounter,
  disableKeepAlive,
  isHttp2Request,
  isHttp2Server,
  listenFd,
  listenSocketCloser,
  ownsListenSocket,
  restoreKeepAlive,
  sessionSocket,
  setBacklog,
  socketOfClosedResponse,
  stopListening,
} from '../../src/node/node-internals';
import { acceptQueueLength } from '../../src/node/accept-queue';
import { afterEachTest } from '../support/servers';
import {
  connectOutcome,
  connectsWhileHeld,
  loopback,
  portOf,
  RawClient,
  testCertificate,
  until,
  withDeadline,
} from '../support/sockets';

/**
 * What the adapter relies on in Node (src/node/node-internals.ts): each spec fails if a Node
 * version changes one of those facts, before a user sees the library misbehave.
 */

const get = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

/** Every event `server` emits, in order, through its own `emit` property. */
function recordEvents(server: net.Server, cleanup: Array<() => void>): string[] {
  const events: string[] = [];
  cleanup.push(
    interceptEmit(server, {
      intercept: (event) => {
        events.push(String(event));
        return 'deliver';
      },
      delivered: () => undefined,
    }),
  );
  return events;
}

async function listen(server: net.Server, cleanup: Array<() => void>): Promise<number> {
  server.listen(loopback);
  await withDeadline(once(server, 'listening'), 2000, 'the server listening');
  cleanup.push(() => {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close();
  });
  return portOf(server.address() ?? '');
}

function connectH2(url: string, cleanup: Array<() => void>): http2.ClientHttp2Session {
  const client = http2.connect(url, { ca: testCertificate.cert, servername: 'localhost' });
  client.on('error', () => undefined);
  cleanup.push(() => {
    client.destroy();
  });
  return client;
}

/** One stream on `client`; resolves with its status once it has ended. */
async function h2Get(client: http2.ClientHttp2Session): Promise<number> {
  const stream = client.request({ ':path': '/' });
  let status = 0;
  stream.on('response', (headers) => {
    status = Number(headers[':status']);
  });
  stream.resume();
  stream.end();
  await withDeadline(once(stream, 'close'), 2000, 'an HTTP/2 response');
  return status;
}

describe('the Node internals the adapter relies on (Node 20)', function () {
  this.timeout(10000);
  const cleanup = afterEachTest();

  /** One keep-alive HTTP/1 exchange; `prepare` runs in the handler before the head is written. */
  async function exchange(prepare: (req: http.IncomingMessage, res: http.ServerResponse) => void, request = get) {
    let seen: { before: boolean; after: boolean } | undefined;
    const server = http.createServer((req, res) => {
      const before = announcedClose(res);
      prepare(req, res);
      res.writeHead(200, { 'content-length': 2 });
      seen = { before, after: announcedClose(res) };
      res.end('ok');
    });
    const client = await RawClient.connect(await listen(server, cleanup));
    cleanup.push(() => {
      client.destroy();
    });
    client.send(request);
    const response = await client.read();
    return { seen, connection: response.headers.connection };
  }

  describe('announcedClose (reads OutgoingMessage#_last)', () => {
    it('is false before the head and for a keep-alive head', async () => {
      expect((await exchange(() => undefined)).seen).to.deep.equal({ before: false, after: false });
    });

    it('is true for a head written with shouldKeepAlive = false', async () => {
      const { seen } = await exchange((_, res) => {
        res.shouldKeepAlive = false;
      });
      expect(seen).to.deep.equal({ before: false, after: true });
    });

    it('is true when the client asked for Connection: close', async () => {
      const { seen } = await exchange(() => undefined, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(seen?.after).to.equal(true);
    });

    it('is true when the application set a Connection: close header itself', async () => {
      const { seen } = await exchange((_, res) => {
        res.setHeader('connection', 'close');
      });
      expect(seen?.after).to.equal(true);
    });
  });

  describe('disableKeepAlive and restoreKeepAlive (write ServerResponse#shouldKeepAlive)', () => {
    it('makes the head say Connection: close when disableKeepAlive comes before it', async () => {
      let disabled: boolean | undefined;
      const { connection } = await exchange((_, res) => {
        disabled = disableKeepAlive(res);
      });
      expect(disabled).to.equal(true);
      expect(connection).to.equal('close');
    });

    it('makes the head say keep-alive again when restoreKeepAlive follows disableKeepAlive before the head', async () => {
      const { connection } = await exchange((_, res) => {
        disableKeepAlive(res);
        restoreKeepAlive(res);
      });
      expect(connection).to.equal('keep-alive');
    });

    it('changes nothing and returns false when the client already asked for Connection: close', async () => {
      let disabled: boolean | undefined;
      await exchange((_, res) => {
        disabled = disableKeepAlive(res);
      }, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(disabled).to.equal(false);
    });
  });

  describe('stopListening (net.Server.prototype.close on an HTTP server)', () => {
    it('refuses newcomers and leaves an idle keep-alive connection open and serving', async () => {
      const server = http.createServer((_, res) => res.end('ok'));
      const port = await listen(server, cleanup);
      const client = await RawClient.connect(port);
      cleanup.push(() => {
        client.destroy();
      });
      client.get('/first');
      await client.read();
      stopListening(server);
      expect(server.listening).to.equal(false);
      expect(await connectOutcome(port)).to.equal('ECONNREFUSED');
      client.get('/after-stop');
      expect(await client.read()).to.include({ status: 200, body: 'ok' });
    });

    it("after listenSocketCloser has closed the listen socket, completes Node's close: newcomers refused, listening false, close emitted once", async () => {
      const server = http.createServer((_, res) => res.end('ok'));
      const port = await listen(server, cleanup);
      const client = await RawClient.connect(port);
      cleanup.push(() => {
        client.destroy();
      });
      let closes = 0;
      server.on('close', () => closes++);
      const closeSocket = listenSocketCloser(server);
      expect(closeSocket).to.be.a('function');
      closeSocket?.();
      // Closed by the handle alone, before Node's side of the close has run.
      expect(await connectOutcome(port)).to.equal('ECONNREFUSED');
      stopListening(server);
      expect(server.listening).to.equal(false);
      client.get('/after-close');
      expect(await client.read()).to.include({ status: 200, body: 'ok' });
      client.destroy();
      await withDeadline(once(server, 'close'), 2000, "the server's close event");
      await new Promise((resolve) => setImmediate(resolve));
      expect(closes).to.equal(1);
      expect(listenSocketCloser(server), 'a server that no longer listens').to.equal(undefined);
    });

    it("is needed: Node's own http.Server#close destroys an idle keep-alive connection at once", async () => {
      const server = http.createServer((_, res) => res.end('ok'));
      const client = await RawClient.connect(await listen(server, cleanup));
      cleanup.push(() => {
        client.destroy();
      });
      client.get('/first');
      await client.read();
      server.close();
      await client.waitClosed(1000);
    });
  });

  describe('sessionSocket (the HTTP/2 session socket proxy)', () => {
    async function firstSession(): Promise<{ session: http2.ServerHttp2Session; raw: net.Socket }> {
      const server = http2.createServer();
      let raw: net.Socket | undefined;
      server.prependListener('connection', (socket: net.Socket) => {
        raw = socket;
      });
      const session = new Promise<http2.ServerHttp2Session>((resolve) => server.once('session', resolve));
      connectH2(`http://127.0.0.1:${String(await listen(server, cleanup))}`, cleanup);
      const s = await withDeadline(session, 2000, 'a session');
      if (raw === undefined) throw new Error('no connection event before the session');
      return { session: s, raw };
    }

    it('is not the socket of the connection event, and refuses destroy() with ERR_HTTP2_NO_SOCKET_MANIPULATION', async () => {
      const { session, raw } = await firstSession();
      const proxy = sessionSocket(session);
      expect(proxy).to.not.equal(raw);
      expect(() => proxy.destroy())
        .to.throw()
        .with.property('code', 'ERR_HTTP2_NO_SOCKET_MANIPULATION');
    });

    it('runs a listener added through it on the real socket, with that socket as this', async () => {
      const { session, raw } = await firstSession();
      const onRaw: boolean[] = [];
      sessionSocket(session).on('close', function (this: unknown) {
        onRaw.push(this === raw);
      });
      session.destroy();
      await until(() => onRaw.length > 0, 2000, 'the close of the socket under the session');
      expect(onRaw).to.deep.equal([true]);
    });
  });

  it('listenFd gives the descriptor of the socket a server listens on, and undefined before listen and after close', async () => {
    const server = net.createServer();
    expect(listenFd(server)).to.equal(undefined);
    server.listen(loopback);
    await withDeadline(once(server, 'listening'), 2000, 'the server listening');
    const fd = listenFd(server);
    expect(fd).to.be.a('number').and.above(2);
    expect(fstatSync(fd as number).isSocket()).to.equal(true);
    server.close();
    expect(listenFd(server)).to.equal(undefined);
  });

  describe('ownsListenSocket and setBacklog (Server#_connectionKey, Server#_handle.listen)', () => {
    async function listening(): Promise<net.Server> {
      const server = net.createServer((socket) => socket.destroy());
      server.listen(loopback);
      await withDeadline(once(server, 'listening'), 2000, 'the server listening');
      cleanup.push(() => server.close());
      return server;
    }

    it('ownsListenSocket is true for a socket bound by listen(port), false before listen and for a socket passed in as a descriptor', async () => {
      expect(ownsListenSocket(net.createServer())).to.equal(false);
      const server = await listening();
      expect(ownsListenSocket(server)).to.equal(true);
      // The same socket in another process, which listens on it as descriptor 3.
      const internals = require.resolve('../../src/node/node-internals');
      const script = `const { ownsListenSocket } = require(${JSON.stringify(internals)});
        const server = require('node:net').createServer();
        server.listen({ fd: 3 }, () => { console.log('owns ' + ownsListenSocket(server)); server.close(); });`;
      const handle = (server as net.Server & { _handle: net.Socket })._handle;
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit', handle],
      });
      cleanup.push(() => child.kill());
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await withDeadline(once(child, 'exit'), 10_000, 'the other process to report and exit');
      expect(output.trim()).to.equal('owns false');
    });

    it('setBacklog(server, 0) has Linux complete one connection at a time while the loop is held', async function () {
      if (process.platform !== 'linux') this.skip(); // the backlog's meaning is Linux's
      const server = await listening();
      const fd = listenFd(server) as number;
      expect(connectsWhileHeld(portOf(server.address() ?? ''), 2, 5000), 'completed with the default backlog').to.equal(2);
      await until(() => acceptQueueLength(fd) === 0, 2000, 'the two accepted');
      expect(setBacklog(server, 0)).to.equal(true);
      // The others get no answer to their SYN: they would be refused at their retry, once the listener is closed.
      expect(connectsWhileHeld(portOf(server.address() ?? ''), 3, 300), 'completed with backlog 0').to.equal(1);
      expect(acceptQueueLength(fd)).to.equal(1);
    });

    it('acceptQueueLength finds a listener whose line in /proc/net/tcp comes after several reads of it, a line cut between two reads included', async function () {
      if (process.platform !== 'linux') this.skip(); // /proc/net/tcp is Linux's
      // 24 listeners: their lines (150 bytes each) span several of the reads acceptQueueLength
      // makes, so some are found in a later read and some are cut across two.
      const servers = await Promise.all(Array.from({ length: 24 }, () => listening()));
      const queued = servers.map((server) => acceptQueueLength(listenFd(server) as number));
      expect(queued).to.deep.equal(servers.map(() => 0));
    });

    it('setBacklog returns false for a server that is not listening', () => {
      expect(setBacklog(net.createServer(), 0)).to.equal(false);
    });
  });

  it('isHttp2Server is true for both kinds of HTTP/2 server, and false for http, https, net and tls servers', () => {
    const yes = [http2.createServer(), http2.createSecureServer(testCertificate)];
    const no = [http.createServer(), https.createServer(testCertificate), net.createServer(), tls.createServer(testCertificate)];
    expect(yes.map(isHttp2Server)).to.deep.equal([true, true]);
    expect(no.map(isHttp2Server)).to.deep.equal([false, false, false, false]);
  });

  it('isHttp2Request tells the request of an HTTP/2 stream, which follows its stream event, from an HTTP/1 request on an allowHTTP1 server', async () => {
    const server = http2.createSecureServer({ ...testCertificate, allowHTTP1: true }, (_, res) => {
      res.end('ok');
    });
    const events: string[] = [];
    cleanup.push(
      interceptEmit(server, {
        intercept: (event, first) => {
          if (event === 'stream') events.push('stream');
          if (event === 'request') events.push(`request ${String(isHttp2Request(first as http.IncomingMessage))}`);
          return 'deliver';
        },
        delivered: () => undefined,
      }),
    );
    const port = await listen(server, cleanup);
    expect(await h2Get(connectH2(`https://127.0.0.1:${String(port)}`, cleanup))).to.equal(200);
    const h1 = await RawClient.connectTls(port);
    cleanup.push(() => {
      h1.destroy();
    });
    h1.get('/');
    await h1.read();
    expect(events).to.deep.equal(['stream', 'request true', 'request false']);
  });

  it("socketOfClosedResponse gives the connection's socket at a response's close, when res.socket is already null", async () => {
    let atClose: { detached: boolean; same: boolean } | undefined;
    const server = http.createServer((req, res) => {
      res.on('close', () => {
        atClose = { detached: res.socket === null, same: socketOfClosedResponse(res) === req.socket };
      });
      res.end('ok');
    });
    const client = await RawClient.connect(await listen(server, cleanup));
    cleanup.push(() => {
      client.destroy();
    });
    client.get('/');
    await client.read();
    await until(() => atClose !== undefined, 2000, "the response's close");
    expect(atClose).to.deep.equal({ detached: true, same: true });
  });

  describe('byteCounter (reads Socket#_handle)', () => {
    for (const kind of [
      { name: 'an http', secure: false },
      { name: "an https server's TLS", secure: true },
    ]) {
      it(`counts what ${kind.name} socket's bytesRead counts with one stream for the life of the socket, then the socket once destroyed`, async () => {
        const server = kind.secure ? https.createServer(testCertificate) : http.createServer();
        let socket: net.Socket | undefined;
        let atAccept: ByteCounter | undefined;
        server.on(kind.secure ? 'secureConnection' : 'connection', (s: net.Socket) => {
          socket = s;
          atAccept = byteCounter(s);
        });
        server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
          res.end('ok');
        });
        const port = await listen(server, cleanup);
        const client = kind.secure ? await RawClient.connectTls(port) : await RawClient.connect(port);
        cleanup.push(() => {
          client.destroy();
        });
        client.send(get);
        await client.read();
        const afterRequest = socket?.bytesRead ?? 0;
        client.send('GET / HT'); // a part of the next head
        await until(() => (socket?.bytesRead ?? 0) > afterRequest, 2000, 'the part of a head read by the server');
        if (socket === undefined || atAccept === undefined) throw new Error('no server socket');
        expect(afterRequest).to.be.greaterThan(0);
        expect(atAccept).to.not.equal(socket);
        expect(byteCounter(socket)).to.equal(atAccept);
        expect(atAccept.bytesRead).to.equal(socket.bytesRead);
        socket.destroy();
        await withDeadline(once(socket, 'close'), 2000, 'the server socket closing');
        expect(byteCounter(socket)).to.equal(socket);
      });
    }
  });

  it("addressPair gives an https server's secureConnection socket the address pair of the connection socket under it", async () => {
    const server = https.createServer(testCertificate, (_, res) => {
      res.end('ok');
    });
    const pairs: Record<string, string[]> = { connection: [], secureConnection: [] };
    server.prependListener('connection', (socket: net.Socket) => pairs.connection?.push(addressPair(socket)));
    server.prependListener('secureConnection', (socket: tls.TLSSocket) => pairs.secureConnection?.push(addressPair(socket)));
    const port = await listen(server, cleanup);
    const clients = await Promise.all([RawClient.connectTls(port), RawClient.connectTls(port)]);
    for (const c of clients)
      cleanup.push(() => {
        c.destroy();
      });
    await until(() => pairs.secureConnection?.length === 2, 2000, 'two secureConnection events');
    expect(new Set(pairs.connection).size).to.equal(2);
    expect([...(pairs.secureConnection ?? [])].sort()).to.deep.equal([...(pairs.connection ?? [])].sort());
  });

  describe('behaviours relied on without a call of their own', () => {
    it("delivers connection, request, upgrade and listening of an http server through the server's own emit", async () => {
      const server = http.createServer((_, res) => res.end('ok'));
      server.on('upgrade', (_, socket: net.Socket) => {
        socket.destroy();
      });
      const events = recordEvents(server, cleanup);
      const client = await RawClient.connect(await listen(server, cleanup));
      cleanup.push(() => {
        client.destroy();
      });
      client.get('/');
      await client.read();
      client.send('GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n');
      await client.waitClosed();
      expect(events).to.include.members(['listening', 'connection', 'request', 'upgrade']);
    });

    it("delivers connection, secureConnection, session and stream of an HTTP/2 server through the server's own emit", async () => {
      const server = http2.createSecureServer(testCertificate);
      server.on('stream', (stream) => {
        stream.respond({ ':status': 200 });
        stream.end();
      });
      const events = recordEvents(server, cleanup);
      const port = await listen(server, cleanup);
      expect(await h2Get(connectH2(`https://127.0.0.1:${String(port)}`, cleanup))).to.equal(200);
      expect(events).to.include.members(['listening', 'connection', 'secureConnection', 'session', 'stream']);
    });

    for (const kind of [
      { name: 'cleartext', make: () => http2.createServer(), url: 'http', event: 'connection' },
      { name: 'TLS', make: () => http2.createSecureServer(testCertificate), url: 'https', event: 'secureConnection' },
    ]) {
      it(`makes a ${kind.name} HTTP/2 session inside the emit of its ${kind.event} event`, async () => {
        const server = kind.make();
        let delivering: string | undefined;
        let madeDuring: string | undefined;
        cleanup.push(
          interceptEmit(server, {
            intercept: (event) => {
              if (event === 'session') madeDuring = delivering;
              if (event !== 'connection' && event !== 'secureConnection') return 'deliver';
              delivering = event;
              return 'deliver-and-notify';
            },
            delivered: () => {
              delivering = undefined;
            },
          }),
        );
        const session = once(server, 'session');
        connectH2(`${kind.url}://127.0.0.1:${String(await listen(server, cleanup))}`, cleanup);
        await withDeadline(session, 2000, 'a session');
        expect(madeDuring).to.equal(kind.event);
      });
    }

    it('reads nothing more from an HTTP/2 session once GOAWAY is sent and no stream is open, until the session is closed', async () => {
      // nghttp2 stops wanting to read such a session and Node stops reading its socket: the
      // client's close (its FIN after it handled the GOAWAY) stays unread. Http2Sessions closes
      // such a session itself instead of waiting for the PING of the two-step GOAWAY.
      const server = http2.createServer((_req, res) => res.end('ok'));
      let serverSocket: net.Socket | undefined;
      server.on('connection', (socket: net.Socket) => {
        serverSocket = socket;
      });
      const sessions: http2.ServerHttp2Session[] = [];
      server.on('session', (session: http2.ServerHttp2Session) => sessions.push(session));
      const port = await listen(server, cleanup);
      let clientSocket: net.Socket | undefined;
      const client = http2.connect(`http://127.0.0.1:${String(port)}`, {
        createConnection: () => (clientSocket = net.connect({ host: '127.0.0.1', port })),
      });
      client.on('error', () => undefined);
      cleanup.push(() => client.destroy());
      expect(await withDeadline(h2Get(client), 2000, 'a first response')).to.equal(200);
      const [session] = sessions;
      if (session === undefined || serverSocket === undefined || clientSocket === undefined) throw new Error('no session');
      let ended = false;
      serverSocket.on('end', () => (ended = true));
      const clientFin = once(clientSocket, 'finish');
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
      await withDeadline(clientFin, 2000, "the client's FIN after the GOAWAY");
      // A stream on a second session: the poll phases that read it would have read the FIN too,
      // which is in the server's socket by now (loopback).
      const other = http2.connect(`http://127.0.0.1:${String(port)}`);
      other.on('error', () => undefined);
      cleanup.push(() => other.destroy());
      expect(await withDeadline(h2Get(other), 2000, 'a response on a second session')).to.equal(200);
      expect(ended, 'the server read the FIN of a session with GOAWAY sent and no stream open').to.equal(false);
      session.close();
      await until(() => ended, 2000, 'the FIN read once the session is closed');
    });

    it('lets a process exit with an HTTP/2 session still open once GOAWAY is sent and no stream is open', async () => {
      // The child serves h2c, sends GOAWAY on its one session and stops listening; the client
      // here stays connected and silent. If Node kept such a session's socket ref'd, the child
      // would not exit, and a shutdown would not need to hold the event loop.
      const script = `
        const http2 = require('node:http2');
        const server = http2.createServer();
        server.on('session', (session) => {
          process.on('exit', () => console.log(session.closed || session.destroyed ? 'session ended' : 'session open'));
          session.goaway(http2.constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
          server.close();
        });
        server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      cleanup.push(() => child.kill());
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const exited = once(child, 'exit');
      await until(() => output.includes('port '), 5000, 'the child listening');
      const port = Number(/port (\d+)/.exec(output)?.[1]);
      const client = net.connect({ host: '127.0.0.1', port });
      cleanup.push(() => client.destroy());
      client.on('error', () => undefined);
      client.resume();
      await once(client, 'connect');
      client.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
      await withDeadline(exited, 5000, 'the child to exit by itself');
      expect(output).to.include('session open');
    });
  });
});
