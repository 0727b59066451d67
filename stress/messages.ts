import type { ShutdownResult } from '../src';
/**
 * What the three processes of a trial tell each other over their IPC channels. Every message
 * is plain JSON (strings, numbers, arrays), so that it survives `process.send`.
 */

export type Protocol = 'http' | 'https' | 'h2';
export const protocols: readonly Protocol[] = ['http', 'https', 'h2'];

/** The server process's configuration, passed as its one argument (JSON). */
export interface ServerConfig {
  readonly protocol: Protocol;
  /** `GracefulServer`'s `timeout`, ms. */
  readonly timeoutMs: number;
  /** The server calls `shutdown()` this long after it received its first request, ms. */
  readonly shutdownAfterMs: number;
  /** `GracefulServer`'s `idleLinger`, ms; absent: the library's default. */
  readonly idleLinger?: number;
}

/** The load process's configuration, passed as its one argument (JSON). */
export interface LoadConfig {
  readonly protocol: Protocol;
  /** Concurrent clients (request loops). */
  readonly clients: number;
  /** HTTP/2 only: request loops share a session this many at a time. */
  readonly streamsPerSession: number;
  /** No client sends or waits after this many ms from `go`, whatever happens. */
  readonly deadlineMs: number;
  /** Each client pauses 0 to this many ms (seeded) after a response; 0: the next request at once. */
  readonly thinkMaxMs: number;
  /** Seeds the clients' pauses. */
  readonly seed: number;
}

/** The shutdown's result as the server's `wait()` gave it. */
export type ShutdownFigures = ShutdownResult;

/** What the server's application saw: every request id it received, and how each response ended. */
export interface ServerLog {
  readonly received: string[];
  /** Ids whose response emitted `finish` (all of it handed to the socket). */
  readonly finished: string[];
}

export type ServerMessage =
  | { type: 'listening'; port: number }
  | { type: 'shutdown'; open: number; active: number; receivedBefore: number }
  | { type: 'done'; result: ShutdownFigures; log: ServerLog; stateAfter: { open: number; phase: string } }
  | { type: 'fatal'; error: string };

/** A request that did not complete, as its client saw it. */
export interface ClientFailure {
  readonly id: string;
  /** Error code or what went wrong (`ECONNRESET`, `closed`, `RST_STREAM 7`, `bad response: …`). */
  readonly reason: string;
  /** Bytes of the request were written (false: the connection failed before, e.g. a reset TLS handshake). */
  readonly sent: boolean;
  /** The request was the first one on its connection (HTTP/2: on its session). */
  readonly fresh: boolean;
}

/** What the load process saw. */
export interface LoadReport {
  /** Requests the clients began: each id once, whatever became of it. */
  readonly sent: number;
  readonly completed: string[];
  /** Ids whose connect was refused (`ECONNREFUSED`): nothing was sent. */
  readonly refused: string[];
  readonly failures: ClientFailure[];
  /** Connections (HTTP/2: sessions) opened. */
  readonly connections: number;
  /** Clients still running at the deadline (0 when every client stopped on its own). */
  readonly atDeadline: number;
}

export type LoadMessage = { type: 'ready' } | { type: 'done'; report: LoadReport } | { type: 'fatal'; error: string };

export type LoadCommand = { type: 'go'; port: number };
