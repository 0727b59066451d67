/**
 * What every e2e scenario has: the run's settings, the shape the runner calls, the harness's server
 * process as the scenarios start and stop it, the tallies of the request loops, and the runner of
 * a scenario's trials with the table they make.
 */
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ShutdownResult } from '../src';
import { startServer, type Exit, type ServerChild } from '../harness/child';
import { errorMessage } from '../harness/cli';
import { markdownTable } from '../harness/markdown';
export { formatReasons } from '../harness/markdown';
import type { DoneEvent, Ended } from '../harness/protocol';

/** The run's flags: `short` (CI: fewer trials), `trials` (cluster: restarts) per mode, the one `drainDelay` to run. */
export type Settings = { readonly short: boolean; readonly trials: number | undefined; readonly drainDelay: number | undefined };

/** What one scenario in one mode printed: a table, lines under it (targets, evidence), every target missed. */
export type ScenarioReport = { readonly table: string; readonly notes: readonly string[]; readonly misses: readonly string[] };

/** How busy the machine is during a scenario: as it is, or every core spinning (one `node -e 'for(;;){}'` per core). */
export const modes = ['idle', 'saturated'] as const;
export type Mode = (typeof modes)[number];

/** Busy loops for `mode`: none when idle, one per core when saturated. */
export function busyLoopsFor(mode: Mode): number {
  return mode === 'saturated' ? availableParallelism() : 0;
}

/** One end-to-end scenario; `needs` names a program it needs and how to install it (absent: skipped). */
export type Scenario = {
  name: string;
  needs?: { file: string; install: string };
  run(mode: Mode, settings: Settings): Promise<ScenarioReport>;
};

/** A trial's table rows and the targets it missed. */
export type TrialReport = { rows: string[][]; misses: string[] };

/** The `timeout` option of every server in the scenarios (ms). */
export const serverTimeoutMs = 5_000;

/** Lets the load run for `ms`; never used to wait for something to happen. */
export const letLoadRun = (ms: number): Promise<void> => sleep(Math.max(0, ms));

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A server process of the harness: rx-graceful over http or h2c, answering after 0–20 ms, shut down by SIGTERM. */
export function startE2eServer(protocol: 'http' | 'h2c', drainDelay?: number): Promise<{ child: ServerChild; port: number }> {
  const options = drainDelay === undefined ? {} : { drainDelay };
  const shape = { handler: { kind: 'delayed', delayMs: [0, 20], tagged: true }, trigger: { kind: 'signal' } } as const;
  return startServer({ system: 'rx-graceful', protocol, ...shape, timeoutMs: serverTimeoutMs, options });
}

/**
 * How an old server process (one sent SIGTERM, or a cluster worker told to shut down) ended: its
 * exit (undefined: still running when the e2e stopped waiting, after `waitedMs`, and then killed),
 * `exitMs` from the shutdown's start, the `wait()` result it reported, and its last lines.
 */
export type OldServer = {
  readonly pid: number;
  readonly exit: Exit | undefined;
  readonly exitMs: number | undefined;
  readonly result: ShutdownResult | undefined;
  readonly waitedMs: number;
  readonly lastLines?: string;
};

/** Waits (at most `timeoutMs`) for a server sent SIGTERM at `signalledAt` to exit; kills it if it still runs. */
export async function awaitServerExit(child: ServerChild, signalledAt: number, timeoutMs: number): Promise<OldServer> {
  const exit = await child.exits(Math.max(0, signalledAt + timeoutMs - Date.now()));
  const exitMs = child.exitedAt === undefined ? undefined : child.exitedAt - signalledAt;
  await (exit === undefined ? child.kill() : child.outputClosed(5_000));
  const done = child.messages.find((message): message is DoneEvent => message.type === 'done');
  return { pid: child.pid, exit, exitMs, result: done?.result ?? undefined, waitedMs: timeoutMs, lastLines: child.tail(10) };
}

/** How an old server ended and what its `wait()` said, as a table cell; and what it did wrong. */
export function judgeOldServer(server: OldServer, kind = 'server'): { cell: string; misses: string[] } {
  const { pid, exit, result, waitedMs } = server;
  const misses: string[] = [];
  if (exit === undefined) misses.push(`${kind} pid ${pid} did not exit by itself within ${waitedMs} ms`);
  else if (exit.code !== 0) misses.push(`${kind} pid ${pid} exited with ${exit.signal ?? `code ${String(exit.code)}`}`);
  if (result === undefined) misses.push(`${kind} pid ${pid} printed no done$/wait() result`);
  if (misses.length > 0 && server.lastLines !== undefined) misses.push(`${kind} pid ${pid}'s last lines:\n${server.lastLines}`);
  const ended =
    exit === undefined
      ? `still running after ${waitedMs} ms, killed`
      : exit.signal === null
        ? `code ${String(exit.code)} after ${String(server.exitMs)} ms`
        : `killed by ${exit.signal}`;
  if (result === undefined) return { cell: `pid ${pid}: ${ended}, no result printed`, misses };
  const { killed, drained, closedIdle, durationMs, timedOut, forced } = result;
  const flags = `${timedOut ? ', timed out' : ''}${forced ? ', forced' : ''}`;
  const printed = `killed ${killed}, drained ${drained}, closedIdle ${closedIdle}, ${Math.round(durationMs)} ms${flags}`;
  return { cell: `pid ${pid}: ${ended}, result printed (${printed})`, misses };
}

/** Requests of one stretch of a run, by the clients; `failed`: neither completed nor refused, by reason in `failures`. */
export type Tally = { sent: number; completed: number; refused: number; failed: number; failures: Map<string, number> };

/** Which requests a tally takes: those that began (`by: 'began'`) or whose outcome was known (`by: 'ended'`) from `from` to before `to` (Date.now()). */
export type TallyWindow = {
  readonly from?: number | undefined;
  readonly to?: number | undefined;
  readonly by?: 'began' | 'ended';
  /** HTTP/1 loops: a failure after its request was written says whether its connection was new or reused. */
  readonly connections?: boolean;
};

/** The requests of `ended` in `window` (all of them by default). */
export function within(ended: readonly Ended[], { from = 0, to = Infinity, by = 'began' }: TallyWindow = {}): Ended[] {
  return ended.filter(({ at, endedAt }) => {
    const time = by === 'began' ? at : endedAt;
    return time >= from && time < to;
  });
}

/** Neither completed nor refused: what a tally counts as `failed`. */
export function isFailure({ outcome }: Ended): boolean {
  return outcome.kind !== 'completed' && outcome.kind !== 'refused';
}

/** The tally of the requests in `window` (all of them by default). */
export function tally(ended: readonly Ended[], window: TallyWindow = {}): Tally {
  const connections = window.connections ?? true;
  const counts: Tally = { sent: 0, completed: 0, refused: 0, failed: 0, failures: new Map() };
  for (const { outcome } of within(ended, window)) {
    counts.sent++;
    if (outcome.kind === 'completed') counts.completed++;
    else if (outcome.kind === 'refused') counts.refused++;
    else {
      counts.failed++;
      const on =
        connections && outcome.kind === 'failed' && outcome.sent ? ` on a ${outcome.fresh ? 'new' : 'reused'} connection` : '';
      counts.failures.set(`${outcome.reason}${on}`, (counts.failures.get(`${outcome.reason}${on}`) ?? 0) + 1);
    }
  }
  return counts;
}

/** `settings.trials`, or `short` / `full` by the run's form. */
export function trialsFor(settings: Settings, short: number, full: number): number {
  return settings.trials ?? (settings.short ? short : full);
}

/**
 * Runs `trial` `trials` times for each `drainDelay` of `delays`, saying so on stderr after `label`:
 * the table of the rows every trial gave (`header` its columns), and their misses, each naming its
 * trial. A trial that broke gets a row with its number, its drainDelay and the error.
 */
export async function runTrials(
  label: string,
  header: string,
  delays: readonly (number | undefined)[],
  trials: number,
  trial: (n: number, drainDelay: number | undefined) => Promise<TrialReport>,
): Promise<{ table: string; misses: string[] }> {
  const columns = header.split('|');
  const rows: string[][] = [];
  const misses: string[] = [];
  for (const drainDelay of delays) {
    for (let n = 1; n <= trials; n++) {
      const name = `trial ${n} (drainDelay ${drainDelay ?? 'default'})`;
      process.stderr.write(`${label} · ${name} of ${trials}\n`);
      try {
        const result = await trial(n, drainDelay);
        rows.push(...result.rows);
        misses.push(...result.misses.map((miss) => `${name}: ${miss}`));
      } catch (error) {
        const first = [String(n), String(drainDelay ?? 'default'), `error: ${errorMessage(error).split('\n')[0] ?? ''}`];
        rows.push([...first, ...Array.from({ length: Math.max(0, columns.length - first.length) }, () => '—')]);
        misses.push(`${name} broke: ${errorMessage(error)}`);
      }
    }
  }
  return { table: markdownTable(columns, rows), misses };
}
