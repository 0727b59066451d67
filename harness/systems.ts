/**
 * The systems under test, each behind the same shape: wrap a server (its request handler attached,
 * not listening yet), listen on 127.0.0.1, shut down with the given timeout. Each loads its library
 * when it starts, in the server process that runs it, so that the peers' server processes never
 * load src/. A peer wraps only the kinds of server it claims (`protocolClaims`, with where it says
 * so); rx-graceful and bare Node run over all four.
 */
import http from 'node:http';
import type * as http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import tls from 'node:tls';
import type { GracefulServer, ServerState, ShutdownResult, WrappableServer } from '../src';
import { reportFatal } from './parent';
import type { Protocol } from './protocol';

/** What a system reports about its shutdown: its killed count (null: none), stoppable's `gracefully`, rx-graceful's result. */
export type ShutdownReport = { killed: number | null; graceful: boolean | null; result: ShutdownResult | null };

/** A started system; `shutdown` settles when the system reports that it has shut down. */
export interface RunningSystem {
  readonly port: number;
  shutdown(): Promise<ShutdownReport>;
  /** rx-graceful-state: the newest state its `state$` subscriber kept. */
  readonly state?: () => ServerState | undefined;
  readonly readinessProbe?: GracefulServer['readinessProbe'];
}

/** A system's word on a protocol: where it claims it (its README, its types, its source), or why it does not claim it. */
export type Claim = { readonly claimed: true; readonly source: string } | { readonly claimed: false; readonly reason: string };

const node = (source: string): Claim => ({ claimed: true, source });
const nodeHttp2 =
  'Node 20: `Http2Server.close()` only stops listening (no GOAWAY), and http2 servers have no `closeAllConnections()`; ' +
  'run as `server.close()`, and every session (from the `session` event) destroyed at the deadline';
const notClaimed = (reason: string): Claim => ({ claimed: false, reason });

/**
 * Which protocols each peer claims, read in its own package (versions as installed) on 2026-12-02.
 * bare is Node's own API on each kind of server.
 */
export const protocolClaims: Readonly<Record<string, Readonly<Record<Protocol, Claim>>>> = {
  bare: {
    http: node('Node: `server.close()`, `server.closeAllConnections()`'),
    https: node('Node: `https.Server` has `close()` and `closeAllConnections()` (since 18.2)'),
    h2: node(nodeHttp2),
    h2c: node(nodeHttp2),
  },
  'http-shutdown': {
    http: node('readme.md: “Shutdown a Nodejs HTTP server gracefully”'),
    https: node('index.js: `extend()` adds `withShutdown()` to `https.Server.prototype`; it tracks `secureConnection` sockets'),
    h2: notClaimed('readme.md and index.js name `http.Server` and `https.Server` only'),
    h2c: notClaimed('readme.md and index.js name `http.Server` and `https.Server` only'),
  },
  'http-terminator': {
    http: node('README.md: “works by accessing an instance of a Node.js `http.Server`”'),
    https: node('README.md: “it properly handles HTTPS connections”'),
    h2: node('src/types.ts: `server: Http2SecureServer | HttpServer | HttpsServer` (its README names `http.Server` only)'),
    h2c: notClaimed('src/types.ts accepts `Http2SecureServer`, not `Http2Server`; README.md names `http.Server` only'),
  },
  stoppable: {
    http: node('readme.md: “server: Any HTTP or HTTPS Server instance”'),
    https: node('readme.md: “server: Any HTTP or HTTPS Server instance”'),
    h2: notClaimed(
      'readme.md: “Any HTTP or HTTPS Server instance”; lib/stoppable.js tracks `connection` or `secureConnection` sockets and `request`s only',
    ),
    h2c: notClaimed(
      'readme.md: “Any HTTP or HTTPS Server instance”; lib/stoppable.js tracks `connection` or `secureConnection` sockets and `request`s only',
    ),
  },
  'http-graceful-shutdown': {
    http: node('README.md: “native node http”'),
    https: node('README.md: “properly handles all HTTP and HTTPS connections”'),
    h2: node('README.md: “can be used with … native node http, http2” (its example is h2c)'),
    h2c: node(
      'README.md: “native node http, http2 … see examples”; examples/http2-simple-server.js wraps `http2.createServer()`',
    ),
  },
};

/** Which protocol `server` speaks: http, https, h2 (HTTP/2 over TLS) or h2c (HTTP/2 in the clear). */
export function protocolOf(server: WrappableServer): Protocol {
  if (server instanceof https.Server) return 'https';
  if (server instanceof http.Server) return 'http';
  return server instanceof tls.Server ? 'h2' : 'h2c';
}

/** Whether `system` runs over `protocol`: rx-graceful's systems always, a peer when it claims it. */
export function claims(system: string, protocol: Protocol): Claim {
  return protocolClaims[system]?.[protocol] ?? node('rx-graceful: http, https and http2 servers (DESIGN.md)');
}

const noCount: ShutdownReport = { killed: null, graceful: null, result: null };

/** Listens on an ephemeral port of 127.0.0.1, the only address the harness uses. */
function listening(server: Server, shutdown: () => Promise<ShutdownReport>): Promise<RunningSystem> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      server.off('error', reject);
      resolve({ port: (server.address() as AddressInfo).port, shutdown });
    });
  });
}

/** For a system with no timeout of its own: `close(done)`, and `force()` if `done` has not come by the deadline. */
function closeWithDeadline(server: Server, timeoutMs: number, how: { close(done: () => void): void; force(): void }) {
  const shutdown = (): Promise<ShutdownReport> =>
    new Promise((resolve) => {
      const deadline = setTimeout(() => how.force(), timeoutMs);
      how.close(() => {
        clearTimeout(deadline);
        resolve(noCount);
      });
    });
  return listening(server, shutdown);
}

/** Node's own tools: an HTTP/1 server's `closeAllConnections()`; on an http2 server, every open session destroyed. */
function closeAll(server: WrappableServer): () => void {
  if (server instanceof http.Server || server instanceof https.Server) return () => server.closeAllConnections();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  return () => {
    for (const session of sessions) session.destroy();
  };
}

/** The servers http-terminator's type accepts. */
type TerminatorServer = http.Server | https.Server | http2.Http2SecureServer;

/** The peers, each as its README says to use it, around any server it claims (`startSystem` checks). */
const peers: Record<string, (server: WrappableServer, timeoutMs: number) => Promise<RunningSystem>> = {
  // Node's own tools: `server.close()`, and at the deadline `closeAllConnections()` (http2: the sessions destroyed).
  bare: (server, timeoutMs) => {
    const force = closeAll(server);
    return closeWithDeadline(server, timeoutMs, { close: (done) => server.close(() => done()), force });
  },
  // http-shutdown 1.2: `shutdown()`, and `forceShutdown()` at the deadline.
  'http-shutdown': async (plain, timeoutMs) => {
    const server = (await import('http-shutdown')).default(plain);
    return closeWithDeadline(server, timeoutMs, {
      close: (done) => server.shutdown(done),
      force: () => server.forceShutdown(() => undefined),
    });
  },
  // http-terminator 3.2: `terminate()` with `gracefulTerminationTimeout`.
  'http-terminator': async (plain, timeoutMs) => {
    const server = plain as TerminatorServer;
    const terminator = (await import('http-terminator')).createHttpTerminator({ server, gracefulTerminationTimeout: timeoutMs });
    return listening(server, () => terminator.terminate().then(() => noCount));
  },
  // stoppable 1.1: `stop()` with the grace period given at wrap time.
  stoppable: async (plain, timeoutMs) => {
    const server = (await import('stoppable')).default(plain as http.Server | https.Server, timeoutMs);
    const stop = (): Promise<ShutdownReport> =>
      new Promise((resolve, reject) =>
        server.stop((error, graceful) => (error ? reject(error) : resolve({ ...noCount, graceful }))),
      );
    return listening(server, stop);
  },
  // http-graceful-shutdown 4.0, triggered by the function it returns. No signals (it would add
  // process listeners) and no `forceExit` (it would call `process.exit`, and bench D asks whether
  // the process exits by itself).
  'http-graceful-shutdown': async (server, timeoutMs) => {
    const options = { signals: '', timeout: timeoutMs, forceExit: false };
    const shutdown = (await import('http-graceful-shutdown')).default(server, options);
    return listening(server, () => shutdown().then(() => noCount));
  },
};

/** Every system, bare Node first: the others' ratios are to it. */
export const systemIds = [...Object.keys(peers), 'rx-graceful', 'rx-graceful-state', 'rx-graceful-prometheus'];

/**
 * rx-graceful as a user would run it. `observe`: `state` (rx-graceful-state) attaches a `state$`
 * subscriber that keeps the newest state, as a hand-written exporter does for its next scrape;
 * `prometheus` binds rx-graceful/prometheus to prom-client's default registry. The figures then include
 * what observing costs.
 */
async function startRxGraceful(
  server: WrappableServer,
  timeoutMs: number,
  options: object,
  observe: string,
): Promise<RunningSystem> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded here, so that the peers' server processes never load src/
  const { GracefulServer } = require('../src') as typeof import('../src');
  // The options are passed through untyped, so that one can be measured before the contract names
  // it (bench's `--rx-*`); the library validates them.
  const graceful = new GracefulServer(server, { ...options, timeout: timeoutMs });
  let latest: ServerState | undefined;
  const observing =
    observe === 'state' ? graceful.state$.subscribe({ next: (state) => (latest = state), error: reportFatal }) : null;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- as above; prom-client's default registry, as a service's /metrics
  const prometheus = observe === 'prometheus' ? (require('../src/prometheus') as typeof import('../src/prometheus')) : null;
  const metrics = prometheus?.bindPrometheus(graceful) ?? null;
  const address = await graceful.listen({ port: 0, host: '127.0.0.1' });
  if (typeof address === 'string') throw new Error(`expected a TCP address, got ${address}`);
  const shutdown = async (): Promise<ShutdownReport> => {
    graceful.shutdown();
    const result = await graceful.wait();
    observing?.unsubscribe();
    metrics?.unbind();
    return { killed: result.killed, graceful: null, result };
  };
  return { port: address.port, state: () => latest, readinessProbe: graceful.readinessProbe, shutdown };
}

/** Starts system `id` around `server`; throws for an unknown id, or a peer asked to wrap a server it does not claim. */
export function startSystem(
  id: string,
  server: WrappableServer,
  timeoutMs: number,
  options: object = {},
): Promise<RunningSystem> {
  if (id.startsWith('rx-graceful') && systemIds.includes(id))
    return startRxGraceful(server, timeoutMs, options, id.slice('rx-graceful-'.length));
  const peer = peers[id];
  if (peer === undefined) throw new Error(`unknown system '${id}'; known: ${systemIds.join(', ')}`);
  const claim = claims(id, protocolOf(server));
  if (!claim.claimed) throw new Error(`${id} does not claim ${protocolOf(server)}: ${claim.reason}`);
  return peer(server, timeoutMs);
}
