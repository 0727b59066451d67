/**
 * A load process: forked once per run by the orchestrator, it runs the client side of every
 * scenario on its calls. Every loop is bounded by a count and every wait by a deadline.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { answerParent, sendToParent } from './ipc';
import { openConnection, type KeepAliveConnection } from './client/keep-alive-connection';
import type { InflightResult, LoadCalls, StormFailure, StormResult } from './protocol';

const connectTimeoutMs = 5_000;
/** No client in E sends more than this many requests in one trial, whatever the deadline. */
const maxRequestsPerClient = 200_000;

/** Connections opened by `idle`, held until `release`. */
let held: KeepAliveConnection[] = [];

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

answerParent<LoadCalls>({
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
      const outcome = await openConnection(port, connectTimeoutMs);
      if (outcome.kind !== 'open') {
        failed++;
        return;
      }
      const connection = outcome.connection;
      const timer = setTimeout(() => connection.abort('idle setup timeout'), connectTimeoutMs);
      const response = await connection.request(`idle-${index}`);
      clearTimeout(timer);
      if (response.kind === 'response' && response.status === 200 && !response.closeAfter) {
        opened++;
        held.push(connection);
      } else {
        failed++;
        connection.abort('setup failed');
      }
    });
    return { opened, failed };
  },

  async release() {
    const connections = held;
    held = [];
    const closedByServer = connections.filter((connection) => connection.closedByServer).length;
    for (const connection of connections) connection.abort('released');
    return { held: connections.length, closedByServer };
  },

  async inflight({ port, count, settleMs }) {
    const deadline = performance.now() + settleMs;
    const result: InflightResult = { whole: 0, withClose: 0, failed: 0, closedByServer: 0 };
    const connections: KeepAliveConnection[] = [];
    const settleTimer = setTimeout(() => {
      for (const connection of connections) connection.abort('settle deadline');
    }, settleMs);
    await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const opened = await openConnection(port, connectTimeoutMs);
        if (opened.kind !== 'open') {
          result.failed++;
          return;
        }
        connections.push(opened.connection);
        const outcome = await opened.connection.request(`inflight-${index}`);
        if (outcome.kind === 'response' && outcome.status === 200) {
          result.whole++;
          if (outcome.closeAfter) result.withClose++;
        } else {
          result.failed++;
        }
        // Keep the connection as a keep-alive client would, until the server closes it.
        await opened.connection.whenClosed(deadline - performance.now());
        if (opened.connection.closedByServer) result.closedByServer++;
      }),
    );
    clearTimeout(settleTimer);
    for (const connection of connections) connection.abort('done');
    return result;
  },

  async storm({ port, clients, thinkMaxMs, endAfterMs }) {
    const result: StormResult = { completed: 0, refused: 0, failures: [], unansweredAtEnd: 0, connectErrors: 0 };
    const open = new Set<KeepAliveConnection>();
    let stopped = false;
    const endTimer = setTimeout(() => {
      stopped = true;
      for (const connection of open) connection.abort('trial deadline');
    }, endAfterMs);

    const runClient = async (client: number): Promise<void> => {
      let connection: KeepAliveConnection | null = null;
      for (let n = 0; n < maxRequestsPerClient && !stopped; n++) {
        if (connection === null || !connection.usable) {
          const opened = await openConnection(port, connectTimeoutMs);
          if (stopped) {
            if (opened.kind === 'open') opened.connection.abort('trial deadline');
            return;
          }
          if (opened.kind === 'refused') {
            // The listener is closed: a real client goes to another instance.
            result.refused++;
            return;
          }
          if (opened.kind === 'error') {
            result.connectErrors++;
            connection = null;
            continue;
          }
          connection = opened.connection;
          open.add(connection);
          const added = connection;
          void added.whenClosed(endAfterMs + 1_000).then(() => open.delete(added));
        }
        const id = `${client}-${n}`;
        const fresh = connection.requestsSent === 0;
        const outcome = await connection.request(id);
        if (outcome.kind === 'response') {
          result.completed++;
          if (outcome.closeAfter) connection.close();
        } else if (outcome.reason === 'trial deadline') {
          result.unansweredAtEnd++;
        } else {
          const failure: StormFailure = { id, fresh, sent: outcome.sent, reason: outcome.reason };
          result.failures.push(failure);
        }
        if (thinkMaxMs > 0 && !stopped) await sleep(Math.random() * thinkMaxMs);
      }
      connection?.close();
    };

    await Promise.all(Array.from({ length: clients }, (_, client) => runClient(client)));
    clearTimeout(endTimer);
    for (const connection of open) connection.abort('done');
    return result;
  },
});

// Without the orchestrator there is nothing to do.
process.on('disconnect', () => process.exit(0));
sendToParent({ kind: 'event', event: { type: 'ready' } });
