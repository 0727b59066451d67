/**
 * The one server process of the harness: one system under test (harness/systems.ts) around an
 * http, https or HTTP/2 server on 127.0.0.1, for one trial. Forked with a `ServerConfig` as its
 * only argument (harness/protocol.ts); it sends `ready`, answers the orchestrator's calls, starts
 * the shutdown on its trigger and times it in its own clock, sends `done` with the log of the
 * request ids its handler saw, then lets go of its IPC channel and must exit by itself: nothing of
 * the harness keeps it alive after that.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as os from 'node:os';
import { constants as perfConstants, performance, PerformanceObserver } from 'node:perf_hooks';
import { ageByMajorCollections } from './age';
import { testCertificate } from './certificate';
import type { CallsOf } from './child';
import { watchLoopGaps } from './loop-gaps';
import { answerCalls, exitWithParent, reportFatal, sendToParent } from './parent';
import type { DoneEvent, ServerConfig, ServerEvent } from './protocol';
import { startSystem, type RunningSystem, type ShutdownReport } from './systems';
import { bodyFor, delayFor } from './workload';

type Request = http.IncomingMessage | http2.Http2ServerRequest;
/** The part of a response both HTTP/1 and the HTTP/2 compatibility API have, with one signature each. */
type Response = {
  writeHead(status: number, headers: Record<string, string | number>): { end(body: Buffer): unknown };
  once(event: 'finish', listener: () => void): unknown;
};

const config = JSON.parse(process.argv[2] ?? '{}') as ServerConfig;
const { handler, trigger } = config;
const ok = Buffer.from('ok');
const okHeaders = { 'content-type': 'text/plain', 'content-length': ok.length };

let requests = 0;
let lastFinishAt: number | null = null;
const received: string[] = [];
const finished: string[] = [];
let running: RunningSystem | undefined;
let shuttingDown = false;
/** A server outlives no orchestrator, until it lets go of the channel itself. */
const leaveWithParent = exitWithParent();

/** The head of every `ok`: bench's, with e2e's `x-server-pid` when `tagged` (which instance answered). */
const delayedHeaders =
  handler.kind === 'delayed' && handler.tagged === true ? { ...okHeaders, 'x-server-pid': process.pid } : okHeaders;

function answer(res: Response, body: Buffer, id: string | undefined): void {
  const workload = handler.kind === 'workload' && id !== undefined;
  const headers = workload ? { ...okHeaders, 'content-length': body.length, 'x-request-id': id } : delayedHeaders;
  try {
    res.writeHead(200, headers).end(body);
  } catch {
    // HTTP/2: the stream was destroyed under the handler (the deadline); the client counts it.
  }
}

/**
 * The edges of a window of harness/callgrind.ts: native calls that nothing else in the server
 * makes, on whose entry callgrind zeroes its counts (`--zero-before=node::ResourceUsage*`) and
 * dumps them (`--dump-before=node::os::GetUptime*`), exactly where the server says.
 */
function openWindow(): void {
  process.resourceUsage();
}

function closeWindow(): void {
  os.uptime();
}

/** Where `spin`'s results go, so that the compiler cannot drop its loop. */
let spun = 0;

/** A loop of `steps` steps whose result is kept: a fixed amount of work, for bench A's calibration. */
function spin(steps: number): void {
  let x = spun;
  for (let i = 0; i < steps; i++) x = (Math.imul(x, 31) + i) | 0;
  spun = x;
}

const spinSteps = handler.kind === 'trivial' ? (handler.spin ?? 0) : 0;

function handle(req: Request, res: http.ServerResponse | http2.Http2ServerResponse): void {
  requests++;
  if (handler.kind === 'trivial') {
    if (spinSteps > 0) spin(spinSteps);
    res.writeHead(200, okHeaders).end(ok);
    return;
  }
  if (requests === 1 && trigger.kind === 'afterFirstRequest') setTimeout(startShutdown, trigger.delayMs);
  if (trigger.kind === 'onRequestCount' && requests === trigger.count) startShutdown();
  const header = req.headers['x-request-id'];
  const id = typeof header === 'string' ? header : undefined;
  if (handler.kind === 'never') return;
  if (req.url === '/ready' && running?.readinessProbe !== undefined) {
    running.readinessProbe(req, res);
    return;
  }
  if (id === undefined && handler.kind === 'workload') {
    res.writeHead(400, { 'content-length': 0 }).end();
    return;
  }
  if (id !== undefined) {
    received.push(id);
    res.once('finish', () => {
      finished.push(id);
      lastFinishAt = performance.now();
    });
  }
  const [min, max] = handler.kind === 'delayed' ? handler.delayMs : [0, 0];
  const delayMs =
    id !== undefined && handler.kind === 'workload' ? delayFor(id) : min + Math.floor(Math.random() * (max - min + 1));
  const body = id !== undefined && handler.kind === 'workload' ? bodyFor(id) : ok;
  if (delayMs === 0) answer(res, body, id);
  else setTimeout(answer, delayMs, res, body, id);
}

function startShutdown(): boolean {
  if (running === undefined || shuttingDown) return false;
  shuttingDown = true;
  const state = running.state?.();
  const atShutdown = { open: state?.open ?? -1, active: state?.active ?? -1, received: received.length };
  // The watch's own set-up is not the system's time: it comes before the clock starts.
  const loopGaps = watchLoopGaps();
  const startedAt = performance.now();
  const finish = (report: ShutdownReport, error: string | null): void => {
    const durationMs = performance.now() - startedAt;
    const gaps = loopGaps();
    const after = running?.state?.();
    const stateAfter = after === undefined ? null : { open: after.open, phase: after.phase };
    const lastFinishMs = lastFinishAt === null ? null : lastFinishAt - startedAt;
    const loop = {
      longestLoopGapMs: gaps.longestMs,
      loopHoldWithoutGcMs: gaps.longestWithoutGcMs,
      gcMs: gaps.gcMs,
      loopHoldWaitMs: gaps.waitedForCoreMs,
    };
    const log = { received, finished, error, atShutdown, stateAfter, ...loop };
    // A socket's close callback runs in the close phase of the turn that closed it: the second check
    // phase from here comes after that phase, whichever phase the report came in.
    setImmediate(() =>
      setImmediate(() => {
        const settledMs = performance.now() - startedAt;
        const done: DoneEvent = { type: 'done', durationMs, settledMs, lastFinishMs, ...report, ...log };
        // Let go of the channel only once the message is written: a large log sent and then
        // disconnected at once never reached the orchestrator.
        sendToParent(done, () => {
          process.off('disconnect', leaveWithParent);
          process.disconnect();
        });
      }),
    );
  };
  running.shutdown().then(
    (report) => finish(report, null),
    (error: unknown) => finish({ killed: null, graceful: null, result: null }, String(error)),
  );
  return true;
}

/** How long `memory` waits after its collections before it answers (see there). */
const sweepMs = 300;

const answerers = {
  /** `process.cpuUsage()` user + system (µs), requests that reached the handler, and `performance.now()` (ms). */
  mark: () => {
    const cpu = process.cpuUsage();
    return Promise.resolve({ cpuUs: cpu.user + cpu.system, requests, atMs: performance.now() });
  },
  /** Heap used and RSS after three `gc()`, bytes. */
  async memory() {
    if (!global.gc) throw new Error('start the server with --expose-gc');
    for (let i = 0; i < 3; i++) {
      global.gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { heapUsed, rss } = process.memoryUsage();
    // Forced full collections leave V8's concurrent sweeping to run for tens of ms after them,
    // on the one core this server is pinned to: a shutdown timed right after this call (B, G)
    // would pay for it in its first turns (measured: an 11–18 ms hold at the start of a drain of
    // 10,000–19,500 connections, gone with this pause).
    await new Promise((resolve) => setTimeout(resolve, sweepMs));
    return { heapUsed, rss };
  },
  /**
   * Ages the process as serving for a while does (harness/age.ts): until `majors` major collections
   * have come by themselves, at most 60 s, or it fails; then pauses as `memory` does. Resolves with
   * the major collections seen and the ms they took.
   */
  age: async ({ majors }: { majors: number }) => {
    const aged = await ageByMajorCollections(majors, 60_000);
    if (aged.majors < majors)
      throw new Error(`aged by ${aged.majors} of ${majors} major collections in ${aged.ms.toFixed(0)} ms`);
    await new Promise((resolve) => setTimeout(resolve, sweepMs));
    return aged;
  },
  /**
   * Runs `spin(steps)` `times` times in one turn, as a calibrated handler runs it once per request,
   * inside a window of harness/callgrind.ts: bench A counts the instructions of two such calls to
   * learn what one `spin` costs.
   */
  spin: ({ steps, times }: { steps: number; times: number }) => {
    openWindow();
    for (let k = 0; k < times; k++) spin(steps);
    closeWindow();
    return Promise.resolve({ spun });
  },
  /**
   * A window of harness/callgrind.ts over whole young-generation GC cycles, while the orchestrator
   * sends requests: it opens at the next scavenge and closes at the
   * `scavenges`-th after it, so that the window holds the GC work of exactly the garbage its
   * requests made. (No full GC first: V8 drops compiled code on `gc()`, and the window would then
   * count its compiler.) Resolves with the requests run in the window, and the other GCs seen in
   * it (mark-compact, incremental marking: a window with one is not comparable).
   */
  window: ({ scavenges }: { scavenges: number }) =>
    new Promise<{ requests: number; otherGcs: number }>((resolve, reject) => {
      let seen = -1;
      let otherGcs = 0;
      let openedAt = 0;
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          if ((entry as { detail?: { kind?: number } }).detail?.kind !== perfConstants.NODE_PERFORMANCE_GC_MINOR) {
            if (seen >= 0) otherGcs++;
          } else if (++seen === 0) {
            openWindow();
            openedAt = requests;
          } else if (seen === scavenges) {
            closeWindow();
            observer.disconnect();
            resolve({ requests: requests - openedAt, otherGcs });
          }
        }
      });
      try {
        observer.observe({ entryTypes: ['gc'] });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    }),
  /** Starts the shutdown (trigger `call`); false if one had started already. */
  shutdown: () => Promise.resolve(startShutdown()),
};
export type ServerCalls = CallsOf<typeof answerers>;
answerCalls(answerers);

process.on('uncaughtException', reportFatal);
const servers = {
  http: () => http.createServer(handle),
  https: () => https.createServer(testCertificate(), handle),
  h2: () => http2.createSecureServer(testCertificate(), handle),
  h2c: () => http2.createServer(handle),
};
const server = servers[config.protocol]();
if (config.keepAliveTimeoutMs !== undefined) (server as http.Server).keepAliveTimeout = config.keepAliveTimeoutMs;
startSystem(config.system, server, config.timeoutMs, config.options).then((system) => {
  running = system;
  if (trigger.kind === 'signal') process.once('SIGTERM', startShutdown);
  sendToParent({ type: 'ready', port: system.port } satisfies ServerEvent);
}, reportFatal);
