/**
 * The one load process of the harness: the client side of a trial, on the orchestrator's calls
 * (harness/protocol.ts, `LoadCalls`): autocannon, idle connections held open, requests in flight,
 * and request loops (harness/loops.ts). Every loop is bounded by a count and every wait by a
 * deadline. It holds nothing open between calls but the idle connections, so that it exits by
 * itself once the orchestrator closes its IPC channel.
 */
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { openHttp1, type Http1Connection } from './http1-client';
import { startLoops } from './loops';
import { answerCalls, sendToParent } from './parent';
import type { CallsOf } from './child';
import { openInFlight } from './inflight';
import type { LoopsArgs, Protocol } from './protocol';

const connectTimeoutMs = 5_000;

/** Bench C's and D's requests in flight: over `protocol`, default http. */
type InflightArgs = { port: number; count: number; settleMs: number; protocol?: Protocol };

/** Connections opened by `idle`, held until `release`. */
let held: Http1Connection[] = [];

/** Runs `work(0 … count-1)` with at most `concurrency` at a time. */
async function forEachBounded(count: number, concurrency: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}

function percentile(sorted: Float64Array, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))] ?? Number.NaN;
}

const answerers = {
  /** autocannon: requests counted from per-response events, errors, p50/p99 of the response times (ms). */
  async autocannon({ port, connections, durationS }: { port: number; connections: number; durationS: number }) {
    const times: number[] = [];
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const options = { url: `http://127.0.0.1:${port}/`, connections, duration: durationS };
      const finished = (error: Error | null, done: autocannon.Result): void => (error ? reject(error) : resolve(done));
      autocannon(options, finished).on('response', (_client, _status, _bytes, responseTimeMs) => times.push(responseTimeMs));
    });
    const sorted = Float64Array.from(times).sort();
    const errors = result.errors + result.timeouts + result.non2xx;
    return { requests: times.length, errors, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) };
  },

  /** Opens `count` keep-alive connections, one request each, `concurrency` at a time, and holds them idle. */
  async idle({ port, count, concurrency }: { port: number; count: number; concurrency: number }) {
    let opened = 0;
    await forEachBounded(count, concurrency, async (index) => {
      const outcome = await openHttp1({ port }, connectTimeoutMs);
      if (outcome.kind !== 'open') return;
      const response = await outcome.connection.request(`idle-${index}`, connectTimeoutMs);
      if (response.kind === 'response' && response.status === 200 && !response.closeAfter) {
        opened++;
        held.push(outcome.connection);
      } else outcome.connection.destroy('setup failed');
    });
    return { opened };
  },

  /** Destroys the held connections. */
  release: () => {
    const connections = held;
    held = [];
    for (const connection of connections) connection.destroy('released');
    return Promise.resolve({ held: connections.length });
  },

  /**
   * `count` connections (HTTP/2: sessions), all opened first, then one request each; then waits (at
   * most `settleMs` in all) for the server to close each, as a keep-alive client does
   * (harness/inflight.ts). Whole: status 200 and the whole body; with close: `Connection: close`
   * (HTTP/1) or GOAWAY (HTTP/2).
   */
  async inflight({ port, count, settleMs, protocol = 'http' }: InflightArgs) {
    const result = { whole: 0, withClose: 0, failed: 0 };
    const opened = await Promise.all(Array.from({ length: count }, () => openInFlight(protocol, port, connectTimeoutMs)));
    const deadline = performance.now() + settleMs;
    const sent = opened.map(async (connection, index) => connection?.requestUntilClosed(`inflight-${index}`, deadline));
    for (const outcome of await Promise.all(sent)) {
      if (outcome?.whole !== true) result.failed++;
      else {
        result.whole++;
        if (outcome.closeAnnounced) result.withClose++;
      }
    }
    return result;
  },

  loops: (args: LoopsArgs) => startLoops(args).report,
};
/** What the orchestrator may ask a load process. */
export type LoadCalls = CallsOf<typeof answerers>;
answerCalls(answerers);

sendToParent({ type: 'ready' });
