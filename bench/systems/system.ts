import type http from 'node:http';
import type { AddressInfo } from 'node:net';

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

export interface RunningSystem {
  port: number;
  /** Starts the shutdown; settles when the system reports that it has shut down. */
  shutdown(): Promise<ShutdownReport>;
}

/**
 * One system under test, behind the same shape as every other: wrap a plain `http.Server`
 * (its request handler attached, not listening yet), listen on 127.0.0.1, shut down.
 */
export interface System {
  readonly id: string;
  readonly label: string;
  start(server: http.Server, settings: StartSettings): Promise<RunningSystem>;
}

/** Listens on an ephemeral port of 127.0.0.1, the only address the benchmark uses. */
export function listenOnLoopback(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
