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
import { start, type Child, type ServerChild } from '../harness/child';
import { startLoops, type Loops } from '../harness/loops';
import * as e2e from './scenario';

const haproxyBinary = '/usr/sbin/haproxy';
const checkIntervalMs = 100;
const clients = 100;
const loadMs = 3_000;
const sigtermAfterMs = 1_000;
const header =
  'trial|drainDelay|sent|completed|failed|refused|failures by reason|haproxy logged|a DOWN after SIGTERM|old server (a)';

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
    await e2e.letLoadRun(25);
  }
  const why = `haproxy ${proxy.describeExit()}, its last lines:\n${proxy.tail(8)}`;
  throw new Error(
    `haproxy: requests through it were not answered by both servers (${pids.join(', ')}) within ${timeoutMs} ms; ${why}`,
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
    const key = match === null ? undefined : `${match[1]} ${match[2]} ${match[3]}`;
    if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return e2e.formatReasons(counts);
}

/** One shutdown of server a behind HAProxy. */
async function trial(n: number, drainDelay: number | undefined): Promise<e2e.TrialReport> {
  const dir = mkdtempSync(join(tmpdir(), 'rx-graceful-e2e-'));
  const servers: ServerChild[] = [];
  let proxy: Child | undefined;
  let loops: Loops | undefined;
  try {
    const starting = await Promise.allSettled([e2e.startE2eServer('http', drainDelay), e2e.startE2eServer('http', drainDelay)]);
    const started = starting.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
    servers.push(...started.map((server) => server.child));
    for (const outcome of starting) if (outcome.status === 'rejected') throw outcome.reason;
    const [a, b] = started.map((server) => server.port) as [number, number];
    const port = await e2e.freePort();
    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(port, a, b));
    proxy = start('haproxy', haproxyBinary, { args: ['-db', '-f', join(dir, 'haproxy.cfg')] });
    const pids = servers.map((server) => server.pid);
    await everyServerAnswers(port, pids, proxy, 10_000);

    loops = startLoops({ protocol: 'http', port, clients, deadlineMs: loadMs + 10_000, requestTimeoutMs: 10_000 });
    const loadStarted = Date.now();
    await loops.whenCompleted(clients, 10_000);
    await e2e.letLoadRun(sigtermAfterMs - (Date.now() - loadStarted));
    const signalledAt = Date.now();
    const old = servers[0] as ServerChild;
    old.signal('SIGTERM');
    await e2e.letLoadRun(loadMs - (Date.now() - loadStarted));
    loops.stop();
    const counts = e2e.tally((await loops.report).ended);
    const waitMs = (drainDelay ?? 0) + e2e.serverTimeoutMs + 10_000;
    const { cell, misses } = e2e.judgeOldServer(await e2e.awaitServerExit(old, signalledAt, waitMs));

    const down = proxy.lines.find((line) => /Server servers\/a is DOWN/.test(line.text) && line.at >= signalledAt);
    const failed = counts.failed + counts.refused;
    const reasons = e2e.formatReasons(counts.failures);
    if ((drainDelay ?? 0) >= 3 * checkIntervalMs && failed > 0)
      misses.push(`${failed} requests failed, none allowed (${reasons}; refused ${counts.refused})`);
    const figures = [counts.sent, counts.completed, counts.failed, counts.refused].map(String);
    const downAfter = down === undefined ? 'never' : `${down.at - signalledAt} ms`;
    return { rows: [[String(n), String(drainDelay), ...figures, reasons, proxyErrors(proxy), downAfter, cell]], misses };
  } finally {
    loops?.stop();
    await loops?.report;
    const children: Child[] = proxy === undefined ? servers : [...servers, proxy];
    for (const child of children) child.signal('SIGTERM');
    await Promise.all(children.map((child) => child.exits(10_000)));
    await Promise.all(children.map((child) => child.kill()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The haproxy scenario: `trials` per `drainDelay` variant (500 and 0, or `--drain-delay`). */
export const haproxyScenario: e2e.Scenario = {
  name: 'haproxy',
  needs: { file: haproxyBinary, install: 'apt-get install haproxy' },
  async run(mode, settings) {
    const label = `haproxy · ${mode} (${e2e.busyLoopsFor(mode)} busy loops)`;
    const delays = settings.drainDelay === undefined ? [500, 0] : [settings.drainDelay];
    const { table, misses } = await e2e.runTrials(label, header, delays, e2e.trialsFor(settings, 1, 5), trial);
    return {
      table,
      notes: [
        `${clients} keep-alive clients through HAProxy for ${loadMs} ms, SIGTERM to server a after ${sigtermAfterMs} ms; check every ${checkIntervalMs} ms, fall 1 rise 1, retries 0.`,
        `Target: 0 failed when drainDelay ≥ ${3 * checkIntervalMs} ms (a refused connect counts as failed here: HAProxy itself refused); every old instance exits by itself with code 0.`,
        `With a shorter drainDelay the failures are reported, not judged: the instance stops accepting at once while HAProxy routes to it until its next check, and with retries 0 each new server connection is refused and answered 503 (SC--).`,
      ],
      misses,
    };
  },
};
