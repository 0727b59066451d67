/**
 * What the orchestrator (run.ts), the server process (server.ts) and the load processes (load.ts)
 * exchange over their IPC channels (harness/child.ts): the calls each answers, and the events the
 * server sends on its own (`ready`, `done`).
 */

/** What the server's request handler does with each request. */
export type HandlerConfig =
  /** Answers `ok` at once (A, B, F). */
  | { kind: 'trivial' }
  /** Answers after `delayMs`; records the `x-request-id` of every request it ran (C, E). */
  | { kind: 'delayed'; delayMs: number }
  /** Never answers (D). */
  | { kind: 'never' };

/** When the server process calls the system's shutdown, measured in its own clock. */
export type ShutdownTrigger =
  /** When the orchestrator sends `shutdown` (B). */
  | { kind: 'command' }
  /** `delayMs` after the first request reached the handler (C, E). */
  | { kind: 'afterFirstRequest'; delayMs: number }
  /** When the `count`-th request reached the handler (D). */
  | { kind: 'onRequestCount'; count: number };

/** The server process's configuration, its one argument (JSON). */
export interface ServerConfig {
  system: string;
  handler: HandlerConfig;
  trigger: ShutdownTrigger;
  /** The shutdown timeout handed to the system, ms. */
  timeoutMs: number;
  /** `server.keepAliveTimeout`, ms; Node's default (5,000) when absent. */
  keepAliveTimeoutMs?: number;
  /** After `done`, close the IPC channel and leave the process to exit by itself (D). */
  exitBySelf: boolean;
  /** Extra options for the system under test (rx-graceful's options from `--rx-*`). */
  systemOptions: Record<string, unknown>;
}

/** The server process's answer to a finished shutdown. */
export interface DoneEvent {
  type: 'done';
  /** From the call to the system's shutdown to its report that it has shut down, ms. */
  durationMs: number;
  /** From the shutdown call to the `finish` of the last response (C's ideal), ms; null if none. */
  lastFinishMs: number | null;
  /** The count of killed connections the system reported; null when it reports none. */
  killed: number | null;
  /** stoppable's `gracefully` flag, the only other thing a peer reports. */
  graceful: boolean | null;
  /** Connections open at the shutdown call (only for the `command` trigger). */
  openAtShutdown: number | null;
  /** Why the shutdown rejected, if it did. */
  error: string | null;
}

/** What the server process sends on its own. */
export type ServerEvent = { type: 'ready'; port: number } | DoneEvent;

/** The server's CPU time and request count at one moment. */
export interface CpuMark {
  /** process.cpuUsage() user + system, µs. */
  cpuUs: number;
  /** Requests that reached the handler so far. */
  requests: number;
  /** performance.now() in the server process, ms. */
  atMs: number;
}

/** The server's heap and RSS after gc(), bytes. */
export interface MemoryMark {
  heapUsed: number;
  rss: number;
}

/** What the orchestrator may ask the server process. */
export interface ServerCalls {
  mark: { args: Record<string, never>; result: CpuMark };
  memory: { args: Record<string, never>; result: MemoryMark };
  shutdown: { args: Record<string, never>; result: { accepted: boolean } };
  /** Which of these request ids did the handler run? */
  ran: { args: { ids: string[] }; result: { ids: string[] } };
}

/** What autocannon measured. */
export interface AutocannonResult {
  requests: number;
  errors: number;
  /** From per-response times, ms. */
  p50Ms: number;
  p99Ms: number;
}

/** Idle connections opened and held, and those that could not be. */
export interface IdleResult {
  opened: number;
  failed: number;
}

/** The held connections let go, and how many the server had closed. */
export interface ReleaseResult {
  held: number;
  /** Of the held connections, how many the server had closed. */
  closedByServer: number;
}

/** What the clients of one request each saw. */
export interface InflightResult {
  /** Responses complete with status 200 and their whole body. */
  whole: number;
  /** Of those, carrying `Connection: close`. */
  withClose: number;
  failed: number;
  /** Connections the server had closed when the task ended. */
  closedByServer: number;
}

/** A request of the storm that did not complete. */
export interface StormFailure {
  id: string;
  /** The request was the first on its connection. */
  fresh: boolean;
  /** The request bytes were written (false: the connection closed before the write). */
  sent: boolean;
  reason: string;
}

/** What the storm's clients saw. */
export interface StormResult {
  completed: number;
  refused: number;
  failures: StormFailure[];
  /** Requests still waiting for an answer when the task's deadline ended it. */
  unansweredAtEnd: number;
  /** Connect attempts that failed with something other than ECONNREFUSED. */
  connectErrors: number;
}

/** What the orchestrator may ask a load process. */
export interface LoadCalls {
  autocannon: {
    args: { port: number; connections: number; durationS: number };
    result: AutocannonResult;
  };
  /** Open `count` keep-alive connections, one request each, and hold them idle. */
  idle: { args: { port: number; count: number; concurrency: number }; result: IdleResult };
  /** Destroy the held connections. */
  release: { args: Record<string, never>; result: ReleaseResult };
  /** `count` connections, one request each, then wait (at most `settleMs`) for the server to close them. */
  inflight: { args: { port: number; count: number; settleMs: number }; result: InflightResult };
  /** `clients` keep-alive clients in a loop until refused or `endAfterMs`. */
  storm: {
    args: { port: number; clients: number; thinkMaxMs: number; endAfterMs: number };
    result: StormResult;
  };
}
