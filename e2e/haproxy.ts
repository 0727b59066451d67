/**
 * HAProxy in front of two server instances, with an HTTP health check on `/ready` every 100 ms,
 * no retries and no redispatch; 100 keep-alive clients through it; SIGTERM to one instance
 * mid-load. With a `drainDelay` of at least three check intervals HAProxy has marked the instance
 * down before it stops accepting, so no request may fail. With none, the failures are reported,
 * not judged: the instance stops accepting at once (DESIGN.md, drain point 1) while HAProxy still
 * routes to it until its next check, and with `retries 0` every connection HAProxy then opens to it
 * is refused and answered 503 (`SC--`). Only a delay (or retries with redispatch) avoids those;
 * the old instance itself must still drain and exit by itself with code 0 in every trial.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyLoopsFor, type Mode } from '../harness/busy-loops';
import { startKeepAliveLoops, type Load } from './clients';
import { startBinary, type Child } from '../harness/child';
import { formatOldServer, formatReasons, markdownTable, oldServerMisses, Tally, type ScenarioReport } from './report';
import {
  freePort,
  letLoadRun,
  runTrials,
  serverTimeoutMs,
  trialsFor,
  type Scenario,
  type Settings,
  type TrialReport,
} from './scenario';
import { awaitServerExit, startServer, type RunningServer } from './servers';

const haproxyBinary = '/usr/sbin/haproxy';
const checkIntervalMs = 100;
const clients = 100;
const loadMs = 3_000;
const sigtermAfterMs = 1_000;

/** The configuration under test: see the module comment. Errors only are logged, one line each. */
function haproxyConfig(port: number, a: number, b: number): string {
  return `global
  log stdout format raw local0 info
  maxconn 4000

defaults
  mode http
  log global
  option httplog
  option dontlog-normal
  retries 0
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
  # A check may take up to 1 s to answer on a saturated machine; it is still sent every 100 ms.
  timeout check 1s

frontend e2e
  bind 127.0.0.1:${port}
  default_backend servers

backend servers
  balance roundrobin
  option httpchk GET /ready
  default-server inter ${checkIntervalMs} fall 1 rise 1
  server a 127.0.0.1:${a} check
  server b 127.0.0.1:${b} check
`;
}

/** Resolves once requests through HAProxy have been answered by every pid in `pids`; polls every 25 ms, bounded. */
async function everyServerAnswers(port: number, pids: readonly number[], proxy: Child, timeoutMs: number): Promise<void> {
  const seen = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && proxy.exited === undefined) {
    const pid = await new Promise<number | undefined>((resolve) => {
      const request = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1_000 }, (response) => {
        response.resume();
        response.on('end', () => resolve(Number(response.headers['x-server-pid'])));
        response.on('close', () => resolve(undefined));
      });
      request.on('timeout', () => request.destroy());
      request.on('error', () => resolve(undefined));
    });
    if (pid !== undefined) seen.add(pid);
    if (pids.every((wanted) => seen.has(wanted))) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(
    `haproxy: requests through it were not answered by both servers (${pids.join(', ')}) within ${timeoutMs} ms; haproxy ${proxy.describeExit()}, its last lines:\n${proxy.tail(8)}`,
  );
}

/**
 * HAProxy's log of failed requests (httplog: backend/server, timers, status, bytes, cookies,
 * termination state), grouped: "servers/a 503 SC-- ×2"; status -1 means no response was sent.
 */
function proxyErrors(proxy: Child): string {
  const counts = new Map<string, number>();
  for (const { text } of proxy.lines) {
    const match = text.match(/ (\S+\/\S+) \S+ (-?\d+) \S+ \S+ \S+ (\S{4}) /);
    if (match === null) continue;
    const key = `${match[1]} ${match[2]} ${match[3]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return formatReasons(counts);
}

async function trial(drainDelay: number): Promise<TrialReport> {
  const dir = mkdtempSync(join(tmpdir(), 'rx-graceful-e2e-'));
  const started: RunningServer[] = [];
  let proxy: Child | undefined;
  let load: Load | undefined;
  try {
    const config = { protocol: 'http', timeout: serverTimeoutMs, drainDelay, maxDelayMs: 20, readiness: true } as const;
    const starting = await Promise.allSettled([startServer('server a', config), startServer('server b', config)]);
    for (const outcome of starting) if (outcome.status === 'fulfilled') started.push(outcome.value);
    for (const outcome of starting) if (outcome.status === 'rejected') throw outcome.reason;
    const [a, b] = started as [RunningServer, RunningServer];
    const port = await freePort();
    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(port, a.port, b.port));
    proxy = startBinary('haproxy', haproxyBinary, ['-db', '-f', join(dir, 'haproxy.cfg')]);
    await everyServerAnswers(port, [a.child.pid, b.child.pid], proxy, 10_000);

    load = startKeepAliveLoops(port, {
      clients,
      deadlineMs: loadMs + 10_000,
      requestTimeoutMs: 10_000,
      phase: () => 'all',
      stopWhenRefused: () => false,
    });
    const loadStarted = Date.now();
    await load.whenCompleted(clients, 10_000);
    await letLoadRun(sigtermAfterMs - (Date.now() - loadStarted));
    const signalledAt = Date.now();
    a.child.signal('SIGTERM');
    await letLoadRun(loadMs - (Date.now() - loadStarted));
    const tally = (await load.stop()).get('all') ?? new Tally();
    const old = await awaitServerExit(a, signalledAt, drainDelay + serverTimeoutMs + 10_000);

    const down = proxy.lines.find((line) => /Server servers\/a is DOWN/.test(line.text) && line.at >= signalledAt);
    const downAfter = down === undefined ? 'never' : `${down.at - signalledAt} ms`;
    const judged = drainDelay >= 3 * checkIntervalMs;
    const failed = tally.failed + tally.refused;
    const misses = oldServerMisses(old);
    if (judged && failed > 0)
      misses.push(
        `drainDelay ${drainDelay}: ${failed} requests failed, none allowed (${formatReasons(tally.failures)}; refused ${tally.refused})`,
      );
    const cells = [
      String(drainDelay),
      String(tally.sent),
      String(tally.completed),
      String(tally.failed),
      String(tally.refused),
      formatReasons(tally.failures),
      proxyErrors(proxy),
      downAfter,
      formatOldServer(old),
    ];
    return { cells, misses };
  } finally {
    await load?.stop();
    for (const server of started) server.child.signal('SIGTERM');
    proxy?.signal('SIGTERM');
    await Promise.all([...started.map((server) => server.child.exits(10_000)), proxy?.exits(5_000)]);
    await Promise.all([...started.map((server) => server.child.kill()), proxy?.kill()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The haproxy scenario: `trials` per `drainDelay` variant (500 and 0, or `--drain-delay`). */
export const haproxyScenario: Scenario = {
  name: 'haproxy',
  needs: { file: haproxyBinary, install: 'apt-get install haproxy' },
  async run(mode: Mode, settings: Settings): Promise<ScenarioReport> {
    const trials = trialsFor(settings, 1, 5);
    const delays = settings.drainDelay === undefined ? [500, 0] : [settings.drainDelay];
    const header = [
      'trial',
      'drainDelay',
      'sent',
      'completed',
      'failed',
      'refused',
      'failures by reason',
      'haproxy logged',
      'a DOWN after SIGTERM',
      'old server (a)',
    ];
    const rows: string[][] = [];
    const misses: string[] = [];
    for (const drainDelay of delays) {
      const label = `haproxy · ${mode} (${busyLoopsFor(mode)} busy loops) · drainDelay ${drainDelay}`;
      const done = await runTrials(
        label,
        trials,
        header.length,
        () => trial(drainDelay),
        [String(drainDelay)],
        ` (drainDelay ${drainDelay})`,
      );
      rows.push(...done.rows);
      misses.push(...done.misses);
    }
    return {
      table: markdownTable(header, rows),
      notes: [
        `${clients} keep-alive clients through HAProxy for ${loadMs} ms, SIGTERM to server a after ${sigtermAfterMs} ms; check every ${checkIntervalMs} ms, fall 1 rise 1, retries 0.`,
        `Target: 0 failed when drainDelay ≥ ${3 * checkIntervalMs} ms (a refused connect counts as failed here: HAProxy itself refused); every old instance exits by itself with code 0.`,
        `With a shorter drainDelay the failures are reported, not judged: the instance stops accepting at once while HAProxy routes to it until its next check, and with retries 0 each new server connection is refused and answered 503 (SC--).`,
      ],
      misses,
    };
  },
};
