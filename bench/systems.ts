/**
 * The systems under test, each behind the same shape: wrap a plain `http.Server` (its request
 * handler attached, not listening yet), listen on 127.0.0.1, shut down. Each imports its library
 * when it starts, in the server process that runs it, so that the orchestrator and the peers'
 * server processes never load src/.
 */
import fs from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { GracefulOptions, ServerState } from '../src';

/** What the benchmark hands every system: the same settings, whichever library it is. */
export interface StartSettings {
  /** ms survivors may live after the shutdown call; then the system destroys them. */
  timeoutMs: number;
  /** Options for the system under test beyond the timeout (rx-graceful's, from `--rx-*`). */
  options: Readonly<Record<string, unknown>>;
}

/** What a system reports about its shutdown. */
export interface ShutdownReport {
  /** The count of connections it says it killed; null when it reports no count. */
  killed: number | null;
  /** stoppable's `gracefully` flag; null for every other system. */
  graceful: boolean | null;
}

/** A started system: the port it listens on, and its shutdown, which settles when the system reports that it has shut down. */
export interface RunningSystem {
  port: number;
  shutdown(): Promise<ShutdownReport>;
}

/** One system under test: its id, why it cannot run here (or null), and how to start it. */
export interface System {
  readonly id: string;
  unavailable(): string | null;
  start(server: http.Server, settings: StartSettings): Promise<RunningSystem>;
}

const noCount: ShutdownReport = { killed: null, graceful: null };
const always = (): null => null;
const libraryMissing = (): string | null =>
  fs.existsSync(path.join(__dirname, '..', 'src', 'index.ts')) ? null : 'src/index.ts does not exist yet: rx-graceful skipped';

/** Listens on an ephemeral port of 127.0.0.1, the only address the benchmark uses. */
function listenOnLoopback(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** For a library with no timeout of its own: `close(done)`, and `force()` if `done` has not come by the deadline. */
function closeWithDeadline(timeoutMs: number, close: (done: () => void) => void, force: () => void): Promise<ShutdownReport> {
  return new Promise((resolve) => {
    const deadline = setTimeout(force, timeoutMs);
    close(() => {
      clearTimeout(deadline);
      resolve(noCount);
    });
  });
}

/**
 * rx-graceful as a user would run it. `observeState` attaches a `state$` subscriber that keeps
 * the latest state, as a metrics exporter would; the figures then include what observing costs.
 */
async function startRxGraceful(server: http.Server, settings: StartSettings, observeState: boolean): Promise<RunningSystem> {
  const { GracefulServer } = require('../src') as typeof import('../src');
  // The `--rx-*` options are passed through untyped so an option can be measured before the
  // contract names it (idleLinger, drainDelay, ...); the library validates them.
  const graceful = new GracefulServer(server, { ...settings.options, timeout: settings.timeoutMs } as GracefulOptions);
  if (observeState) {
    // What a gauge exporter does: keep the newest state for the next scrape.
    let latest: ServerState | undefined;
    graceful.state$.subscribe((state) => {
      latest = state;
    });
  }
  const address = await graceful.listen({ port: 0, host: '127.0.0.1' });
  if (typeof address === 'string') throw new Error(`expected a TCP address, got ${address}`);
  return {
    port: address.port,
    shutdown: async () => {
      graceful.shutdown();
      const result = await graceful.wait();
      return { killed: result.killed, graceful: null };
    },
  };
}

/** Every system, bare Node first: the others' ratios are to it. */
export const systems: readonly System[] = [
  {
    // Node's own tools: `server.close()`, and `closeAllConnections()` at the deadline.
    id: 'bare',
    unavailable: always,
    async start(server, { timeoutMs }) {
      const port = await listenOnLoopback(server);
      return {
        port,
        shutdown: () =>
          closeWithDeadline(
            timeoutMs,
            (done) => server.close(done),
            () => server.closeAllConnections(),
          ),
      };
    },
  },
  {
    // http-shutdown 1.2: `shutdown()`, and `forceShutdown()` at the deadline (it has no timeout of its own).
    id: 'http-shutdown',
    unavailable: always,
    async start(plain, { timeoutMs }) {
      const server = (await import('http-shutdown')).default(plain);
      const port = await listenOnLoopback(server);
      return {
        port,
        shutdown: () =>
          closeWithDeadline(
            timeoutMs,
            (done) => server.shutdown(done),
            () => server.forceShutdown(),
          ),
      };
    },
  },
  {
    // http-terminator 3.2: `terminate()` with `gracefulTerminationTimeout`.
    id: 'http-terminator',
    unavailable: always,
    async start(server, { timeoutMs }) {
      const terminator = (await import('http-terminator')).createHttpTerminator({
        server,
        gracefulTerminationTimeout: timeoutMs,
      });
      const port = await listenOnLoopback(server);
      return { port, shutdown: () => terminator.terminate().then(() => noCount) };
    },
  },
  {
    // stoppable 1.1: `stop()` with the grace period given at wrap time.
    id: 'stoppable',
    unavailable: always,
    async start(plain, { timeoutMs }) {
      const server = (await import('stoppable')).default(plain, timeoutMs);
      const port = await listenOnLoopback(server);
      return {
        port,
        shutdown: () =>
          new Promise((resolve, reject) => {
            server.stop((error, gracefully) => (error ? reject(error) : resolve({ killed: null, graceful: gracefully ?? null })));
          }),
      };
    },
  },
  {
    // http-graceful-shutdown 4.0, triggered by the function it returns. No signals (it would add
    // process listeners) and no `forceExit` (it would call `process.exit`, and D asks whether the
    // process exits by itself).
    id: 'http-graceful-shutdown',
    unavailable: always,
    async start(server, { timeoutMs }) {
      const shutdown = (await import('http-graceful-shutdown')).default(server, {
        signals: '',
        timeout: timeoutMs,
        forceExit: false,
      });
      const port = await listenOnLoopback(server);
      return { port, shutdown: () => shutdown().then(() => noCount) };
    },
  },
  { id: 'rx-graceful', unavailable: libraryMissing, start: (server, settings) => startRxGraceful(server, settings, false) },
  { id: 'rx-graceful-state', unavailable: libraryMissing, start: (server, settings) => startRxGraceful(server, settings, true) },
];

/** The system called `id`; throws naming the known ones if there is none. */
export function findSystem(id: string): System {
  const system = systems.find((candidate) => candidate.id === id);
  if (!system) throw new Error(`unknown system '${id}'; known: ${systems.map((s) => s.id).join(', ')}`);
  return system;
}
