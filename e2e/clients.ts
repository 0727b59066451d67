/**
 * The client side of the scenarios: the harness's request loops running in the orchestrator, each
 * bounded by a request count and a deadline, counting every request in the tally of the phase it
 * began in. Keep-alive loops use the harness's raw HTTP/1.1 connection, so that a refused connect,
 * a reset and a cut response are told apart; fetch loops use Node's global `fetch` (undici's
 * pooled keep-alive agent) as an application would.
 */
import { http1Requester } from '../harness/http1-client';
import { runLoops, type Outcome, type Requester } from '../harness/request-loops';
import { Tally } from './report';

/** A request that neither completed nor was refused. */
type Failure = Extract<Outcome, { reason: string }>;

/** How the loops run: how many, their bounds, the phase of each request, and when a refusal ends a loop. */
export interface LoopOptions {
  readonly clients: number;
  /** No request begins this many ms after the start, whatever happens. */
  readonly deadlineMs: number;
  /** A request that has no answer after this long fails with reason `timeout` (ms). */
  readonly requestTimeoutMs: number;
  /** The label of the moment, read when a request begins: the tally it counts in. */
  readonly phase: () => string;
  /** Read after a refused connect: true ends the loop, false retries after a 20 ms pause. */
  readonly stopWhenRefused: () => boolean;
}

/** Running request loops. */
export interface Load {
  /** Tallies by phase, in the order the phases began. */
  readonly tallies: Map<string, Tally>;
  /** Resolves once `count` requests have completed; rejects after `timeoutMs`, saying how many did. One waiter at a time. */
  whenCompleted(count: number, timeoutMs: number): Promise<void>;
  /** True once every loop has ended by itself (refused, deadline); false if some still run after `timeoutMs`. */
  ended(timeoutMs: number): Promise<boolean>;
  /**
   * Lets each loop finish its request in flight, then ends them all; resolves with the tallies,
   * or rejects if a tally does not add up (sent = completed + failed + refused).
   */
  stop(): Promise<Map<string, Tally>>;
}

/** No loop sends more than this many requests, whatever the deadline. */
const maxRequestsPerLoop = 100_000;
const refusedPauseMs = 20;

/** Starts `clients` keep-alive HTTP/1.1 loops sending `GET /` to 127.0.0.1:`port`; a failure says whether its connection was new or reused. */
export function startKeepAliveLoops(port: number, options: LoopOptions): Load {
  const requester = (): Requester =>
    http1Requester({ port }, options.requestTimeoutMs, (_id, { status }) => (status === 200 ? undefined : `status ${status}`));
  return startLoops(options, requester, (failure) =>
    failure.kind === 'failed' && failure.sent
      ? `${failure.reason} on a ${failure.fresh ? 'new' : 'reused'} connection`
      : failure.reason,
  );
}

/** Starts `clients` loops calling the global `fetch(url)` and reading each whole body. */
export function startFetchLoops(url: string, options: LoopOptions): Load {
  return startLoops(
    options,
    () => ({ request: (_id, timeoutMs) => fetchOnce(url, timeoutMs), close: () => undefined }),
    (failure) => failure.reason,
  );
}

function startLoops(options: LoopOptions, requester: () => Requester, describe: (failure: Failure) => string): Load {
  const tallies = new Map<string, Tally>();
  let stopped = false;
  let completed = 0;
  let wakeCompletions: (() => void) | undefined;

  const tally = (phase: string): Tally => {
    let found = tallies.get(phase);
    if (found === undefined) tallies.set(phase, (found = new Tally()));
    return found;
  };

  const all = runLoops({
    clients: options.clients,
    requester,
    deadline: Date.now() + options.deadlineMs,
    maxRequestsPerLoop,
    requestTimeoutMs: options.requestTimeoutMs,
    begin: () => {
      const counted = tally(options.phase());
      counted.sent++;
      return async (outcome) => {
        if (outcome.kind === 'completed') {
          counted.completed++;
          completed++;
          wakeCompletions?.();
        } else if (outcome.kind === 'refused') {
          counted.refused++;
          if (options.stopWhenRefused()) return false;
          await new Promise((resolve) => setTimeout(resolve, refusedPauseMs));
        } else counted.fail(describe(outcome));
        return !stopped;
      };
    },
  });
  let allEnded = false;
  void all.then(() => (allEnded = true));
  return {
    tallies,
    whenCompleted: (count, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          wakeCompletions = undefined;
          reject(new Error(`load: only ${completed} of ${count} requests completed within ${timeoutMs} ms`));
        }, timeoutMs);
        wakeCompletions = () => {
          if (completed < count) return;
          clearTimeout(timer);
          wakeCompletions = undefined;
          resolve();
        };
        wakeCompletions();
      }),
    ended: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([all, timedOut]);
      clearTimeout(timer);
      return allEnded;
    },
    stop: async () => {
      stopped = true;
      await all;
      for (const [phase, counted] of tallies) {
        // Each loop counts a request as sent, then exactly one outcome: anything else is a bug here.
        if (counted.sent !== counted.completed + counted.failed + counted.refused) {
          throw new Error(
            `load: ${phase}: sent ${counted.sent} ≠ completed ${counted.completed} + failed ${counted.failed} + refused ${counted.refused}`,
          );
        }
      }
      return tallies;
    },
  };
}

async function fetchOnce(url: string, timeoutMs: number): Promise<Outcome> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.status === 200
      ? { kind: 'completed' }
      : { kind: 'wrong', reason: `status ${response.status}`, sent: true, fresh: false };
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    if (cause?.code === 'ECONNREFUSED') return { kind: 'refused' };
    return { kind: 'failed', reason: fetchFailure(error, cause), sent: true, fresh: false };
  }
}

/** "UND_ERR_SOCKET (other side closed)", "ECONNRESET (read ECONNRESET)", "TimeoutError": addresses left out, so that reasons group. */
function fetchFailure(error: unknown, cause: { code?: unknown; message?: unknown } | undefined): string {
  const strip = (text: string): string => text.replace(/\s*\d+\.\d+\.\d+\.\d+:\d+/g, '').trim();
  if (cause !== undefined) {
    const code = typeof cause.code === 'string' ? cause.code : 'no code';
    return typeof cause.message === 'string' ? `${code} (${strip(cause.message)})` : code;
  }
  return error instanceof Error ? `${error.name}: ${strip(error.message)}` : String(error);
}
