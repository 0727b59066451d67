import { once } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import { GracefulOptions, GracefulServer, WrappableServer } from '../../src';
import { blockEventLoop, loopback, portOf, RawClient, testCertificate, withDeadline } from './sockets';

/** A request handler every kind of server accepts: HTTP/1's, and HTTP/2's compatibility API. */
export type Handler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/**
 * One exchange as its client saw it: the status and whole body, and `closing` when the server told
 * the client the connection ends (`Connection: close` on HTTP/1, a GOAWAY on HTTP/2); or the error
 * that ended it without a whole response.
 */
export type Reply = { status: number; body: string; closing: boolean } | { error: string };

/** A keep-alive connection (HTTP/1) or session (HTTP/2) to 127.0.0.1. */
export interface KindClient {
  /** Sends `GET path` on this connection; resolves with the reply once it is whole, or with the error that ended it. */
  request(path: string): Promise<Reply>;
  /** Resolves once what was sent so far is in the kernel, before the server's next poll phase can read it. */
  sent(): Promise<void>;
  /** True once the server (or the client, for a session told GOAWAY) has closed the connection. */
  readonly closed: boolean;
  /** Resolves when the connection has closed; rejects after `ms`. */
  waitClosed(ms?: number): Promise<void>;
  destroy(): void;
}

/** A keep-alive HTTP/1.1 connection: requests go one after the other, replies are read in order. */
export class Http1Client implements KindClient {
  private last: Promise<unknown> = Promise.resolve();

  constructor(readonly raw: RawClient) {}

  request(path: string): Promise<Reply> {
    this.raw.get(path);
    const reply = this.last.then(() => this.raw.read());
    this.last = reply.catch(() => undefined);
    return reply.then(
      ({ status, body, headers }) => ({ status, body, closing: headers.connection === 'close' }),
      (error: unknown) => ({ error: String(error) }),
    );
  }

  /** A socket writes at once: the bytes are in the kernel when `request()` returns. */
  sent(): Promise<void> {
    return Promise.resolve();
  }

  get closed(): boolean {
    return this.raw.closed;
  }

  waitClosed(ms?: number): Promise<void> {
    return this.raw.waitClosed(ms);
  }

  destroy(): void {
    this.raw.destroy();
  }
}

/** An HTTP/2 session: each request is a stream of its own. */
export class Http2Client implements KindClient {
  /** The GOAWAY frames the server sent, by the last stream id each carried. */
  readonly goaways: number[] = [];
  private ended = false;
  private readonly ends: Promise<unknown>;

  constructor(readonly session: http2.ClientHttp2Session) {
    session.on('error', () => undefined); // a session destroyed by the server errs on the client
    session.on('goaway', (_code: number, lastStreamId: number) => this.goaways.push(lastStreamId));
    this.ends = new Promise((resolve) => session.once('close', resolve)).then(() => (this.ended = true));
  }

  static async connect(url: string): Promise<Http2Client> {
    const client = new Http2Client(http2.connect(url, { ca: testCertificate.cert, servername: 'localhost' }));
    try {
      await withDeadline(once(client.session, 'connect'), 2000, `an HTTP/2 session to ${url}`);
    } catch (error) {
      client.destroy();
      throw error;
    }
    return client;
  }

  request(path: string): Promise<Reply> {
    return new Promise((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.session.request({ ':path': path });
      } catch (error) {
        // A session told GOAWAY refuses new streams at once.
        resolve({ error: (error as NodeJS.ErrnoException).code ?? String(error) });
        return;
      }
      let status: number | undefined;
      let body = '';
      let error: string | undefined;
      stream.setEncoding('utf8');
      stream.on('response', (headers) => (status = Number(headers[':status'])));
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      stream.on('close', () => {
        // A stream the server reset ends with a non-zero RST_STREAM code (8 is CANCEL).
        if (error === undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) error = `RST_STREAM ${stream.rstCode}`;
        resolve(
          error === undefined && status !== undefined
            ? { status, body, closing: this.goaways.length > 0 }
            : { error: error ?? 'closed without a response' },
        );
      });
      stream.end();
    });
  }

  /**
   * Node's client writes a stream's frames from a native immediate, which runs before the
   * JavaScript immediates of the same check phase: after one, the frames are in the kernel, and
   * the server's next poll phase has not read them yet.
   */
  sent(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  get closed(): boolean {
    return this.ended;
  }

  async waitClosed(ms = 3000): Promise<void> {
    await withDeadline(this.ends, ms, 'the session closing');
  }

  destroy(): void {
    this.session.destroy();
  }
}

interface KindBase {
  /** Names the describe block: the server, and the protocol its client speaks. */
  readonly name: string;
  /** The connection is TLS: its client waits for the server's handshake before it has connected. */
  readonly tls: boolean;
  createServer(handler: Handler): WrappableServer;
}

/** A server kind whose client speaks HTTP/1.1, through a raw socket the tests can write bytes on. */
export interface Http1Kind extends KindBase {
  readonly protocol: 'http/1.1';
  connect(port: number): Promise<Http1Client>;
}

/** A server kind whose client speaks HTTP/2. */
export interface Http2Kind extends KindBase {
  readonly protocol: 'h2';
  connect(port: number): Promise<Http2Client>;
}

export type ServerKind = Http1Kind | Http2Kind;

export const httpKind: Http1Kind = {
  name: 'http (HTTP/1.1)',
  protocol: 'http/1.1',
  tls: false,
  createServer: (handler) => http.createServer(handler),
  connect: async (port) => new Http1Client(await RawClient.connect(port)),
};

export const h2cKind: Http2Kind = {
  name: 'h2c (http2.createServer)',
  protocol: 'h2',
  tls: false,
  createServer: (handler) => http2.createServer(handler),
  connect: (port) => Http2Client.connect(`http://127.0.0.1:${port}`),
};

/**
 * Every kind of server `GracefulServer` wraps, each with a client on 127.0.0.1; a spec suite
 * written once runs over all of them: `for (const kind of serverKinds) describe(kind.name, ...)`.
 */
export const serverKinds: readonly ServerKind[] = [
  httpKind,
  {
    name: 'https (HTTP/1.1 over TLS)',
    protocol: 'http/1.1',
    tls: true,
    createServer: (handler) => https.createServer(testCertificate, handler),
    connect: async (port) => new Http1Client(await RawClient.connectTls(port)),
  },
  h2cKind,
  {
    name: 'h2 (http2.createSecureServer)',
    protocol: 'h2',
    tls: true,
    createServer: (handler) => http2.createSecureServer({ ...testCertificate, allowHTTP1: false }, handler),
    connect: (port) => Http2Client.connect(`https://127.0.0.1:${port}`),
  },
  {
    name: 'h2 with allowHTTP1, an HTTP/2 client',
    protocol: 'h2',
    tls: true,
    createServer: (handler) => http2.createSecureServer({ ...testCertificate, allowHTTP1: true }, handler),
    connect: (port) => Http2Client.connect(`https://127.0.0.1:${port}`),
  },
  {
    // No ALPN offered: the server speaks HTTP/1.1 on this connection and follows the HTTP/1 rules.
    name: 'h2 with allowHTTP1, an HTTP/1.1 client',
    protocol: 'http/1.1',
    tls: true,
    createServer: (handler) => http2.createSecureServer({ ...testCertificate, allowHTTP1: true }, handler),
    connect: async (port) => new Http1Client(await RawClient.connectTls(port)),
  },
];

export const http1Kinds = serverKinds.filter((kind): kind is Http1Kind => kind.protocol === 'http/1.1');
export const http2Kinds = serverKinds.filter((kind): kind is Http2Kind => kind.protocol === 'h2');

/**
 * The application the cases serve: `/hang` is never answered, a path that starts with `/held` is
 * answered when the test calls `release()`, any other at once; `ran` lists the paths it was given.
 */
export function testApp(): { handler: Handler; ran: string[]; release: () => void } {
  const ran: string[] = [];
  const held: Array<() => void> = [];
  const handler: Handler = (req, res) => {
    const path = String(req.url);
    ran.push(path);
    if (path === '/hang') return;
    const answer = (): void => void res.end(`body of ${path}`);
    if (path.startsWith('/held')) held.push(answer);
    else answer();
  };
  return { handler, ran, release: () => held.splice(0).forEach((answer) => answer()) };
}

/** The test application's whole answer to `path`; `closing` when the server said the connection ends. */
export function answered(path: string, closing: boolean): Reply {
  return { status: 200, body: `body of ${path}`, closing };
}

/** After the test: destroys every connection `server` accepted (its sessions with them) and closes it. */
export function closeAfterTest(server: WrappableServer, cleanup: Array<() => void>): void {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => sockets.add(socket));
  cleanup.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
}

/** A wrapped server of one kind, listening on 127.0.0.1. */
export interface ServedKind<K extends ServerKind> {
  graceful: GracefulServer;
  server: WrappableServer;
  port: number;
  /** How many connections the server can read requests on: accepted, and past their TLS handshake if any. */
  secured: () => number;
  /** Opens a client of the kind; it is destroyed after the test. */
  connect: () => Promise<ClientOf<K>>;
}

/** Makes a server of `kind` with `handler`, wraps it with `options` and listens; all is closed after the test. */
export async function serveKind<K extends ServerKind>(
  kind: K,
  handler: Handler,
  options: GracefulOptions,
  cleanup: Array<() => void>,
): Promise<ServedKind<K>> {
  const server = kind.createServer(handler);
  closeAfterTest(server, cleanup);
  let secured = 0;
  server.on(kind.tls ? 'secureConnection' : 'connection', () => secured++);
  const graceful = new GracefulServer(server, options);
  const port = portOf(await graceful.listen(loopback));
  return { graceful, server, port, secured: () => secured, connect: () => connectForTest(kind, port, cleanup) };
}

/** The test application (`testApp()`) on a wrapped server of `kind`; `timeout` 5000 and `idleLinger` 0 unless `options` say otherwise. */
export async function serveTestApp<K extends ServerKind>(
  kind: K,
  options: GracefulOptions,
  cleanup: Array<() => void>,
): Promise<ServedKind<K> & ReturnType<typeof testApp>> {
  const app = testApp();
  return { ...app, ...(await serveKind(kind, app.handler, { timeout: 5000, idleLinger: 0, ...options }, cleanup)) };
}

/** The client of a kind: a raw HTTP/1.1 connection or an HTTP/2 session. */
export type ClientOf<K extends ServerKind> = K extends Http1Kind ? Http1Client : Http2Client;

/** A client of `kind` to `port`, destroyed after the test. */
export async function connectForTest<K extends ServerKind>(
  kind: K,
  port: number,
  cleanup: Array<() => void>,
): Promise<ClientOf<K>> {
  const client = await kind.connect(port);
  cleanup.push(() => client.destroy());
  return client as ClientOf<K>;
}

/**
 * Starts the shutdown once the requests sent on `clients` are in the kernel, and keeps the loop
 * from reading them for 100 ms, as a loaded machine would: they must be served, never cut.
 */
export async function shutdownOnABusyLoop(graceful: GracefulServer, clients: KindClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.sent()));
  graceful.shutdown();
  blockEventLoop(100);
}
