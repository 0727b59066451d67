/**
 * A load process: forked once per run by the orchestrator, it runs the client side of every
 * scenario on its calls. Every loop is bounded by a count and every wait by a deadline.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { http1Requester, openHttp1, type Http1Connection } from '../harness/http1-client';
import { exitWithParent, answerCalls, sendToParent } from '../harness/parent';
import { runLoops } from '../harness/request-loops';
import type { InflightResult, LoadCalls, StormResult } from './protocol';

const connectTimeoutMs = 5_000;
/** No client in E sends more than this many requests in one trial, whatever the deadline. */
const maxRequestsPerClient = 200_000;

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
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

answerCalls<LoadCalls>({
  async autocannon({ port, connections, durationS }) {
    const times: number[] = [];
    const instance = autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: durationS });
    instance.on('response', (_client, _status, _bytes, responseTimeMs) => {
      times.push(responseTimeMs);
    });
    const result = await instance;
    const sorted = Float64Array.from(times).sort();
    return {
      requests: times.length,
      errors: result.errors + result.timeouts + result.non2xx,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
    };
  },

  async idle({ port, count, concurrency }) {
    let opened = 0;
    let failed = 0;
    await forEachBounded(count, concurrency, async (index) => {
      const outcome = await openHttp1({ port }, connectTimeoutMs);
      if (outcome.kind !== 'open') {
        failed++;
        return;
      }
      const response = await outcome.connection.request(`idle-${index}`, connectTimeoutMs);
      if (response.kind === 'response' && response.status === 200 && !response.closeAfter) {
        opened++;
        held.push(outcome.connection);
      } else {
        failed++;
        outcome.connection.destroy('setup failed');
      }
    });
    return { opened, failed };
  },

  async release() {
    const connections = held;
    held = [];
    const closedByServer = connections.filter((connection) => connection.closedByServer).length;
    for (const connection of connections) connection.destroy('released');
    return { held: connections.length, closedByServer };
  },

  async inflight({ port, count, settleMs }) {
    const deadline = performance.now() + settleMs;
    const result: InflightResult = { whole: 0, withClose: 0, failed: 0, closedByServer: 0 };
    await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const opened = await openHttp1({ port }, connectTimeoutMs);
        if (opened.kind !== 'open') {
          result.failed++;
          return;
        }
        const outcome = await opened.connection.request(`inflight-${index}`, deadline - performance.now());
        if (outcome.kind === 'response' && outcome.status === 200) {
          result.whole++;
          if (outcome.closeAfter) result.withClose++;
        } else {
          result.failed++;
        }
        // Keep the connection as a keep-alive client would, until the server closes it.
        await opened.connection.whenClosed(deadline - performance.now());
        if (opened.connection.closedByServer) result.closedByServer++;
        opened.connection.destroy('done');
      }),
    );
    return result;
  },

  async storm({ port, clients, thinkMaxMs, endAfterMs }) {
    const result: StormResult = { completed: 0, refused: 0, failures: [], unansweredAtEnd: 0, connectErrors: 0 };
    await runLoops({
      clients,
      requester: () => http1Requester({ port }, connectTimeoutMs),
      deadline: Date.now() + endAfterMs,
      maxRequestsPerLoop: maxRequestsPerClient,
      begin: (id) => async (outcome) => {
        if (outcome.kind === 'refused') {
          // The listener is closed: a real client goes to another instance.
          result.refused++;
          return false;
        }
        if (outcome.kind === 'completed') result.completed++;
        else if (!outcome.sent) result.connectErrors++;
        else if (outcome.reason === 'no answer by the deadline') result.unansweredAtEnd++;
        else result.failures.push({ id, fresh: outcome.fresh, sent: outcome.sent, reason: outcome.reason });
        if (thinkMaxMs > 0) await sleep(Math.random() * thinkMaxMs);
        return true;
      },
    });
    return result;
  },
});

// Without the orchestrator there is nothing to do.
exitWithParent();
sendToParent({ type: 'ready' });
