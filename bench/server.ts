/**
 * A server process: one system under test, one trial. Forked by the orchestrator with a
 * JSON `ServerConfig` as its only argument; times the shutdown in its own clock.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { answerCalls, exitWithParent, sendToParent } from '../harness/parent';
import type { DoneEvent, HandlerConfig, ServerCalls, ServerConfig, ServerEvent } from './protocol';
import { findSystem, type RunningSystem } from './systems';

const config = JSON.parse(process.argv[2] ?? '{}') as ServerConfig;

const body = Buffer.from('ok');
const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) };

let requests = 0;
let firstRequestAt: number | null = null;
let lastFinishAt: number | null = null;
let shutdownAt: number | null = null;
const ranIds = new Set<string>();
let running: RunningSystem | null = null;

/** A server outlives no orchestrator. */
const leaveWithParent = exitWithParent();

function answer(res: http.ServerResponse): void {
  res.writeHead(200, headers);
  res.end(body);
}

function onFirstRequest(): void {
  if (firstRequestAt !== null) return;
  firstRequestAt = performance.now();
  if (config.trigger.kind === 'afterFirstRequest') setTimeout(() => startShutdown(null), config.trigger.delayMs);
}

/** One handler per workload, each doing no more than its scenario needs. */
function createHandler(handler: HandlerConfig): http.RequestListener {
  switch (handler.kind) {
    case 'trivial':
      return (_req, res) => {
        requests++;
        answer(res);
      };
    case 'delayed':
      return (req, res) => {
        requests++;
        onFirstRequest();
        const id = req.headers['x-request-id'];
        if (typeof id === 'string') ranIds.add(id);
        res.on('finish', () => {
          lastFinishAt = performance.now();
        });
        setTimeout(answer, handler.delayMs, res);
      };
    case 'never':
      return () => {
        requests++;
        onFirstRequest();
        if (config.trigger.kind === 'onRequestCount' && requests === config.trigger.count) startShutdown(null);
      };
  }
}

function startShutdown(openAtShutdown: number | null): boolean {
  if (running === null || shutdownAt !== null) return false;
  const system = running;
  const startedAt = performance.now();
  shutdownAt = startedAt;
  const finish = (partial: Pick<DoneEvent, 'killed' | 'graceful' | 'error'>): void => {
    const doneAt = performance.now();
    const event: DoneEvent = {
      type: 'done',
      durationMs: doneAt - startedAt,
      lastFinishMs: lastFinishAt === null ? null : lastFinishAt - startedAt,
      openAtShutdown,
      ...partial,
    };
    sendToParent(event, () => {
      if (!config.exitBySelf) return;
      // D: nothing of the harness is left; whatever keeps the process alive now is the system's.
      process.off('disconnect', leaveWithParent);
      process.disconnect();
    });
  };
  system.shutdown().then(
    (report) => finish({ killed: report.killed, graceful: report.graceful, error: null }),
    (error: unknown) => finish({ killed: null, graceful: null, error: String(error) }),
  );
  return true;
}

function connectionCount(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((error, count) => resolve(error ? -1 : count)));
}

async function main(): Promise<void> {
  const system = findSystem(config.system);
  const server = http.createServer(createHandler(config.handler));
  if (config.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = config.keepAliveTimeoutMs;

  answerCalls<ServerCalls>({
    async mark() {
      const cpu = process.cpuUsage();
      return { cpuUs: cpu.user + cpu.system, requests, atMs: performance.now() };
    },
    async memory() {
      if (!global.gc) throw new Error('start the server with --expose-gc');
      for (let i = 0; i < 3; i++) {
        global.gc();
        await new Promise((resolve) => setImmediate(resolve));
      }
      const usage = process.memoryUsage();
      return { heapUsed: usage.heapUsed, rss: usage.rss };
    },
    async shutdown() {
      const open = await connectionCount(server);
      return { accepted: startShutdown(open) };
    },
    async ran({ ids }) {
      return { ids: ids.filter((id) => ranIds.has(id)) };
    },
  });

  running = await system.start(server, { timeoutMs: config.timeoutMs, options: config.systemOptions });
  sendToParent({ type: 'ready', port: running.port } satisfies ServerEvent);
}

main().catch((error: unknown) => {
  process.stderr.write(`server (${config.system}): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
