/**
 * The client side of the scenarios: many request loops running in the orchestrator, each bounded
 * by a request count and a deadline, counting every request in the tally of the phase it began
 * in. Keep-alive loops use the benchmark's raw HTTP/1.1 connection (bench/client), so that a
 * refused connect, a reset and a cut response are told apart; fetch loops use Node's global
 * `fetch` (undici's pooled keep-alive agent) as an application would.
 */
import { openConnection, type KeepAliveConnection } from '../bench/client/keep-alive-connection';
import { Tally } from './report';

/** What became of one request. */
export type Outcome = { kind: 'completed' } | { kind: 'refused' } | { kind: 'failed'; reason: string };

/** One loop's way of sending a request; `close` lets go of what it holds. */
interface Requester {
  request(seq: number, timeoutMs: number): Promise<Outcome>;
  close(): void;
}

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

/** Starts `clients` keep-alive HTTP/1.1 loops sending `GET /` to 127.0.0.1:`port`. */
export function startKeepAliveLoops(port: number, options: LoopOptions): Load {
  return startLoops(options, () => keepAliveRequester(port, options.requestTimeoutMs));
}

/** Starts `clients` loops calling the global `fetch(url)` and reading each whole body. */
export function startFetchLoops(url: string, options: LoopOptions): Load {
  return startLoops(options, () => ({ request: (_seq, timeoutMs) => fetchOnce(url, timeoutMs), close: () => undefined }));
}

function startLoops(options: LoopOptions, makeRequester: () => Requester): Load {
  const tallies = new Map<string, Tally>();
  const started = Date.now();
  let stopped = false;
  let completed = 0;
  let wakeCompletions: (() => void) | undefined;

  const tally = (phase: string): Tally => {
    let found = tallies.get(phase);
    if (found === undefined) tallies.set(phase, (found = new Tally()));
    return found;
  };

  const loop = async (): Promise<void> => {
    const requester = makeRequester();
    try {
      for (let seq = 0; seq < maxRequestsPerLoop && !stopped; seq++) {
        const left = started + options.deadlineMs - Date.now();
        if (left <= 0) return;
        const counted = tally(options.phase());
        counted.sent++;
        const outcome = await requester.request(seq, Math.min(left, options.requestTimeoutMs));
        if (outcome.kind === 'completed') {
          counted.completed++;
          completed++;
          wakeCompletions?.();
        } else if (outcome.kind === 'failed') counted.fail(outcome.reason);
        else {
          counted.refused++;
          if (options.stopWhenRefused()) return;
          await new Promise((resolve) => setTimeout(resolve, refusedPauseMs));
        }
      }
    } finally {
      requester.close();
    }
  };
  const all = Promise.all(Array.from({ length: options.clients }, loop));
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
          throw new Error(`load: ${phase}: sent ${counted.sent} ≠ completed ${counted.completed} + failed ${counted.failed} + refused ${counted.refused}`);
        }
      }
      return tallies;
    },
  };
}

/** One loop's keep-alive connection, opened when needed and replaced after `Connection: close` or a failure. */
function keepAliveRequester(port: number, connectTimeoutMs: number): Requester {
  let connection: KeepAliveConnection | undefined;
  return {
    async request(seq, timeoutMs) {
      let fresh = false;
      if (connection === undefined || !connection.usable) {
        connection?.abort('replaced');
        connection = undefined;
        const opened = await openConnection(port, Math.min(connectTimeoutMs, timeoutMs));
        if (opened.kind === 'refused') return { kind: 'refused' };
        if (opened.kind === 'error') return { kind: 'failed', reason: `connect: ${opened.reason}` };
        connection = opened.connection;
        fresh = true;
      }
      const current = connection;
      const timer = setTimeout(() => current.abort('timeout'), timeoutMs);
      const outcome = await current.request(String(seq));
      clearTimeout(timer);
      if (outcome.kind === 'failed') {
        current.abort('failed');
        connection = undefined;
        return { kind: 'failed', reason: `${outcome.reason} on a ${fresh ? 'new' : 'reused'} connection` };
      }
      if (outcome.closeAfter) {
        current.close();
        connection = undefined;
      }
      return outcome.status === 200 ? { kind: 'completed' } : { kind: 'failed', reason: `status ${outcome.status}` };
    },
    close: () => connection?.abort('done'),
  };
}

async function fetchOnce(url: string, timeoutMs: number): Promise<Outcome> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.status === 200 ? { kind: 'completed' } : { kind: 'failed', reason: `status ${response.status}` };
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    if (cause?.code === 'ECONNREFUSED') return { kind: 'refused' };
    return { kind: 'failed', reason: fetchFailure(error, cause) };
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
