/**
 * The systems under test, each behind the same shape: wrap a server (its request handler attached,
 * not listening yet), listen on 127.0.0.1, shut down with the given timeout. Each loads its library
 * when it starts, in the server process that runs it, so that the peers' server processes never
 * load src/. Every peer wraps a plain `http.Server`; rx-graceful also https and HTTP/2.
 */
import http from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import type { GracefulServer, ServerState, ShutdownResult, WrappableServer } from '../src';
import { reportFatal } from './parent';

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

/** The peers, each as its README says to use it. */
const peers: Record<string, (server: http.Server, timeoutMs: number) => Promise<RunningSystem>> = {
  // Node's own tools: `server.close()`, and `closeAllConnections()` at the deadline.
  bare: (server, timeoutMs) =>
    closeWithDeadline(server, timeoutMs, { close: (done) => server.close(done), force: () => server.closeAllConnections() }),
  // http-shutdown 1.2: `shutdown()`, and `forceShutdown()` at the deadline.
  'http-shutdown': async (plain, timeoutMs) => {
    const server = (await import('http-shutdown')).default(plain);
    return closeWithDeadline(server, timeoutMs, {
      close: (done) => server.shutdown(done),
      force: () => server.forceShutdown(() => undefined),
    });
  },
  // http-terminator 3.2: `terminate()` with `gracefulTerminationTimeout`.
  'http-terminator': async (server, timeoutMs) => {
    const terminator = (await import('http-terminator')).createHttpTerminator({ server, gracefulTerminationTimeout: timeoutMs });
    return listening(server, () => terminator.terminate().then(() => noCount));
  },
  // stoppable 1.1: `stop()` with the grace period given at wrap time.
  stoppable: async (plain, timeoutMs) => {
    const server = (await import('stoppable')).default(plain, timeoutMs);
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

/** Starts system `id` around `server`; throws for an unknown id, or a peer asked to wrap anything but `http`. */
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
  if (!(server instanceof http.Server)) throw new Error(`${id} wraps an http.Server only`);
  return peer(server, timeoutMs);
}
