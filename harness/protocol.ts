/**
 * The one message protocol of the load harness: what the orchestrators (bench, stress, e2e) and
 * their two kinds of child (harness/server.ts, harness/load.ts) exchange over IPC
 * (harness/child.ts, harness/parent.ts), beyond the calls each child answers (`ServerCalls`,
 * `LoadCalls`, typed by their answerers). Every message is plain JSON, so that it survives
 * `process.send`.
 */
import type { Outcome } from './loops';
import type { ShutdownReport } from './systems';

/** http, https and h2 (TLS with the test certificate), or h2c (HTTP/2 in the clear, for h2load). */
export type Protocol = 'http' | 'https' | 'h2' | 'h2c';

/** What the server's handler does; every kind but `trivial` logs each `x-request-id` it receives and each that finishes. */
export type Handler =
  /**
   * 200 `ok` at once, and nothing else: the per-request cost that bench A measures (A, B, F). With
   * `spin`, the handler first runs a loop of that many steps (harness/server.ts's `spin`): a known
   * extra cost per request, the calibration of bench A's instruction counts.
   */
  | { kind: 'trivial'; spin?: number }
  /** Never answers (bench D). */
  | { kind: 'never' }
  /** 200 `ok` after a random `delayMs[0]`–`delayMs[1]` ms (bench C, E; e2e: 0–20 ms, `tagged`); `/ready` is rx-graceful's probe. */
  | { kind: 'delayed'; delayMs: readonly [number, number]; tagged?: boolean }
  /** The latency and body harness/workload.ts derives from the id; 400 without an id (stress). */
  | { kind: 'workload' };

/** When the server calls the system's shutdown. */
export type Trigger =
  /** On the orchestrator's `shutdown` call (bench B), or never (bench A). */
  | { kind: 'call' }
  /** `delayMs` after the first request reached the handler (bench C, E; stress). */
  | { kind: 'afterFirstRequest'; delayMs: number }
  /** When the `count`-th request reached the handler (bench D). */
  | { kind: 'onRequestCount'; count: number }
  /** On SIGTERM, as a deploy sends it (e2e). */
  | { kind: 'signal' };

/** The server process's configuration, its one argument (JSON). */
export interface ServerConfig {
  /** The system under test (harness/systems.ts); stress and e2e run `rx-graceful-state` or `rx-graceful`. */
  readonly system: string;
  /** A peer runs only over the protocols it claims (harness/systems.ts, `protocolClaims`). */
  readonly protocol: Protocol;
  readonly handler: Handler;
  readonly trigger: Trigger;
  /** The shutdown timeout handed to the system, ms. */
  readonly timeoutMs: number;
  /** `server.keepAliveTimeout`, ms; absent: Node's default (5,000). */
  readonly keepAliveTimeoutMs?: number;
  /** rx-graceful's options beyond `timeout` (`idleLinger`, `drainDelay`, bench's `--rx-*`), validated by the library. */
  readonly options?: Readonly<Record<string, unknown>>;
}

/** At the shutdown call: connections (HTTP/2: sessions) open and active (-1: unknown), requests so far. */
export type AtShutdown = { readonly open: number; readonly active: number; readonly received: number };

/** The server's report of a finished shutdown, after which it closes its IPC channel and must exit by itself. */
export interface DoneEvent extends ShutdownReport {
  readonly type: 'done';
  /** From the call to the system's shutdown to its report that it has shut down, in the server's clock, ms. */
  readonly durationMs: number;
  /**
   * From the same call to the second check phase after that report, ms: by then the loop has run the
   * close callbacks (the `close` events) of every socket closed before the report. Node's
   * `server.close()` reports before it runs those of the sockets it destroyed; a drain in slices has
   * run those of its earlier slices before its report.
   */
  readonly settledMs: number;
  /** From the shutdown call to the `finish` of the last response (bench C's ideal), ms; null if none finished. */
  readonly lastFinishMs: number | null;
  readonly atShutdown: AtShutdown;
  /** rx-graceful-state's state after `wait()`. */
  readonly stateAfter: { readonly open: number; readonly phase: string } | null;
  /** The longest the server's event loop was held at once between the shutdown call and this report, ms (harness/loop-gaps.ts). */
  readonly longestLoopGapMs: number;
  /** The longest gap less the GC pauses inside it: what the system's own work held, ms. */
  readonly loopHoldWithoutGcMs: number;
  /** GC pauses between the shutdown call and this report, summed, ms. */
  readonly gcMs: number;
  /** Within the gap of `loopHoldWithoutGcMs`, how long the main thread waited for a core, ms; null where Linux's schedstat is not there. */
  readonly loopHoldWaitMs: number | null;
  /** Why the shutdown rejected, if it did. */
  readonly error: string | null;
  /** Every request id the handler received, and those whose response emitted `finish` (all of it handed to the socket). */
  readonly received: string[];
  readonly finished: string[];
}

/** What a server process sends on its own. */
export type ServerEvent = { type: 'ready'; port: number } | DoneEvent;

/** Request loops against 127.0.0.1:`port` (harness/loops.ts). */
export interface LoopsArgs {
  readonly protocol: Protocol | 'fetch';
  readonly port: number;
  readonly clients: number;
  /** No request begins after this many ms, and none waits past it. */
  readonly deadlineMs: number;
  /** A request with no answer after this many ms fails (default: at the deadline). */
  readonly requestTimeoutMs?: number;
  /** Each loop pauses 0 to this many ms (whole ms, drawn from `seed`) after each request; 0 or absent: back to back. */
  readonly thinkMaxMs?: number;
  readonly seed?: number;
  /** Check each response against harness/workload.ts (status, echoed id, every byte); otherwise status 200 is enough. */
  readonly workload?: boolean;
}

/** One request as its loop saw it: its id, when it began and when its loop knew the outcome (Date.now()), and what became of it. */
export type Ended = { readonly id: string; readonly at: number; readonly endedAt: number; readonly outcome: Outcome };

/** What request loops saw. */
export interface LoopsReport {
  /** Requests begun, counted as each began (so that `ended.length` can be checked against it). */
  readonly began: number;
  readonly ended: Ended[];
  /** Connections (HTTP/2: sessions) opened. */
  readonly connections: number;
  /** Loops the deadline ended (0 when every loop stopped on its own). */
  readonly atDeadline: number;
}
