/**
 * examples/cluster.ts under load: 100 keep-alive clients straight at the cluster's port through
 * rolling restarts (SIGHUP, wait for the primary's "restart N done", the next), then SIGTERM.
 * The primary must exit by itself with code 0, and every old worker with code 0 after printing
 * its result. Target: 0 failed with drainDelay ≥ 500 ms, else at most 2 per restart.
 */
import type { ShutdownResult } from '../src';
import { busyLoopsFor, type Mode } from '../harness/busy-loops';
import { startKeepAliveLoops, type Load } from './clients';
import { join } from 'node:path';
import { startTs, type Child, type Line } from '../harness/child';
import {
  errorMessage,
  errorRow,
  formatOldServer,
  formatReasons,
  markdownTable,
  oldServerMisses,
  Tally,
  type OldServer,
  type ScenarioReport,
} from './report';
import { freePort, letLoadRun, serverTimeoutMs, trialsFor, type Scenario, type Settings } from './scenario';
import { startupMs } from './servers';

const workers = 2;
const clients = 100;
/** Load between two restarts, and before the first (ms). */
const settleMs = 300;
const zeroTargetFrom = 500;
/**
 * The failures of the final stop are shown but not judged: the target is per restart, and when the
 * last worker stops listening, node:cluster's primary closes the connections it has accepted but
 * not yet handed to a worker (a reset the workers never see). Set to true to judge them too.
 */
const judgeStop = false;

/** The workers that began draining in `lines`, with how they ended, as the example printed it. */
function oldWorkers(lines: readonly Line[], waitedMs: number): OldServer[] {
  const first = (pattern: RegExp): Line | undefined => lines.find((line) => pattern.test(line.text));
  const pids = lines
    .map((line) => line.text.match(/^worker (\d+): draining$/)?.[1])
    .filter((pid): pid is string => pid !== undefined);
  return pids.map((pid) => {
    const began = first(new RegExp(`^worker ${pid}: draining$`)) as Line;
    const drained = first(new RegExp(`^worker ${pid}: drained `));
    const exited = first(new RegExp(`^primary: worker ${pid} exited with `));
    const how = exited?.text.match(/exited with (?:code (\S+)|(SIG\w+))$/) ?? undefined;
    return {
      pid: Number(pid),
      exit:
        how === undefined
          ? undefined
          : { code: how[1] === undefined ? null : Number(how[1]), signal: (how[2] ?? null) as NodeJS.Signals | null },
      exitMs: exited === undefined ? undefined : exited.at - began.at,
      result: drained === undefined ? undefined : (JSON.parse(drained.text.slice(drained.text.indexOf('{'))) as ShutdownResult),
      waitedMs,
    };
  });
}

/** One stretch of the run: the load's tally is kept under `name`; the primary's lines from `firstLine` on. */
interface Phase {
  readonly name: string;
  readonly firstLine: number;
  readonly at: number;
}

const warmUp = 'before the first restart';

/** The table row and the misses of one phase, given the lines the primary printed during it. */
function judgePhase(
  phase: Phase,
  lines: readonly Line[],
  tally: Tally,
  drainDelay: number,
  durationMs: number,
  waitedMs: number,
): { row: string[]; misses: string[] } {
  const stop = phase.name === 'stop';
  const judged = !stop || judgeStop;
  // A refused connect before the SIGTERM means no worker was there: a failure. After it, it is expected.
  const failed = tally.failed + (stop ? 0 : tally.refused);
  const allowed = drainDelay >= zeroTargetFrom ? 0 : 2;
  const misses: string[] = [];
  if (judged && failed > allowed)
    misses.push(
      `${phase.name}: ${failed} requests failed, at most ${allowed} allowed (${formatReasons(tally.failures)}${stop ? '' : `, refused ${tally.refused}`})`,
    );
  const old = oldWorkers(lines, waitedMs);
  if (phase.name !== warmUp && old.length < workers)
    misses.push(`${phase.name}: ${old.length} of ${workers} old workers printed "draining"`);
  for (const worker of old)
    misses.push(...oldServerMisses(worker).map((miss) => `${phase.name}: ${miss.replace('server', 'worker')}`));
  const row = [
    judged ? phase.name : `${phase.name} (failures not judged)`,
    String(drainDelay),
    `${(durationMs / 1000).toFixed(1)} s`,
    String(tally.sent),
    String(tally.completed),
    String(failed),
    String(tally.refused),
    formatReasons(tally.failures),
    old.map(formatOldServer).join('<br>') || '—',
  ];
  return { row, misses };
}

async function run(drainDelay: number, restarts: number): Promise<{ rows: string[][]; misses: string[] }> {
  const port = await freePort();
  const env = { PORT: String(port), DRAIN_DELAY: String(drainDelay), TIMEOUT: String(serverTimeoutMs) };
  const primary: Child = startTs('cluster primary', join(__dirname, '..', 'examples', 'cluster.ts'), {
    args: [String(workers)],
    env,
    ipc: false,
  });
  let load: Load | undefined;
  try {
    let from = 0;
    for (let n = 1; n <= workers; n++)
      from =
        (await primary.waitForLine(/^worker \d+: listening/, `worker ${n} of ${workers} listening`, startupMs, from)).index + 1;
    const phases: Phase[] = [{ name: warmUp, firstLine: primary.lines.length, at: Date.now() }];
    const begin = (name: string): Phase => {
      const phase = { name, firstLine: primary.lines.length, at: Date.now() };
      phases.push(phase);
      return phase;
    };
    const current = (): Phase => phases[phases.length - 1] as Phase;
    load = startKeepAliveLoops(port, {
      clients,
      deadlineMs: (restarts + 1) * workers * (startupMs + drainDelay + serverTimeoutMs),
      requestTimeoutMs: 10_000,
      phase: () => current().name,
      stopWhenRefused: () => current().name === 'stop',
    });
    await load.whenCompleted(clients, 10_000);
    await letLoadRun(settleMs);

    const restartBound = workers * (startupMs + drainDelay + serverTimeoutMs + 5_000);
    for (let n = 1; n <= restarts; n++) {
      const phase = begin(`restart ${n}`);
      primary.signal('SIGHUP');
      const { match } = await primary.waitForLine(
        /^primary: restart (?:(\d+) done|failed: .*)$/,
        `restart ${n} done`,
        restartBound,
        phase.firstLine,
      );
      if (match[1] !== String(n)) throw new Error(`cluster primary (pid ${primary.pid}): ${match[0]}`);
      await letLoadRun(settleMs);
    }

    const stop = begin('stop');
    primary.signal('SIGTERM');
    const stopBound = drainDelay + serverTimeoutMs + 15_000;
    const exit = await primary.exits(stopBound);
    const primaryEnded =
      exit === undefined
        ? `still running ${stopBound} ms after SIGTERM, killed`
        : `${primary.describeExit()} ${(primary.exitedAt ?? stop.at) - stop.at} ms after SIGTERM`;
    if (exit === undefined) await primary.kill();
    await primary.outputClosed(10_000);
    const loopsEnded = await load.ended(5_000);
    const tallies = await load.stop();
    const ended = Date.now();

    const rows: string[][] = [];
    const misses: string[] = [];
    phases.forEach((phase, i) => {
      const next = phases[i + 1];
      const lines = primary.lines.slice(phase.firstLine, next?.firstLine);
      const judged = judgePhase(
        phase,
        lines,
        tallies.get(phase.name) ?? new Tally(),
        drainDelay,
        (next?.at ?? ended) - phase.at,
        phase === stop ? stopBound : restartBound,
      );
      rows.push(judged.row);
      misses.push(...judged.misses);
    });
    if (exit === undefined || exit.code !== 0) misses.push(`the primary ${primaryEnded}`);
    if (!loopsEnded) misses.push('the client loops were not all ended by refusals within 5 s of the primary exit');
    rows.push(['primary', String(drainDelay), '', '', '', '', '', '', primaryEnded]);
    return { rows, misses };
  } finally {
    await load?.stop();
    await primary.kill();
  }
}

/** The cluster scenario: examples/cluster.ts through `restarts` rolling restarts per `drainDelay` variant. */
export const clusterScenario: Scenario = {
  name: 'cluster',
  async run(mode: Mode, settings: Settings): Promise<ScenarioReport> {
    const restarts = trialsFor(settings, 1, 3);
    const delays = settings.drainDelay === undefined ? [500, 0] : [settings.drainDelay];
    const header = ['phase', 'drainDelay', 'took', 'sent', 'completed', 'failed', 'refused', 'failures by reason', 'old workers'];
    const rows: string[][] = [];
    const misses: string[] = [];
    for (const drainDelay of delays) {
      process.stderr.write(
        `cluster · ${mode} (${busyLoopsFor(mode)} busy loops) · drainDelay ${drainDelay} · ${restarts} restart(s)\n`,
      );
      try {
        const result = await run(drainDelay, restarts);
        rows.push(...result.rows);
        misses.push(...result.misses.map((miss) => `drainDelay ${drainDelay}, ${miss}`));
      } catch (error) {
        rows.push(errorRow(['—', String(drainDelay)], error, header.length));
        misses.push(`drainDelay ${drainDelay} broke: ${errorMessage(error)}`);
      }
    }
    return {
      table: markdownTable(header, rows),
      notes: [
        `${workers} workers, ${clients} keep-alive clients straight at the cluster's port, ${restarts} rolling restart(s) by SIGHUP, then SIGTERM; ${settleMs} ms of load between steps.`,
        `Target: 0 failed per phase when drainDelay ≥ ${zeroTargetFrom} ms, else at most 2 per phase; a refused connect counts as failed except after the SIGTERM; every old worker and the primary exit by themselves with code 0.`,
        ...(judgeStop
          ? []
          : [
              'The stop row is shown, not judged: after the SIGTERM every worker stops, and the primary resets connections it accepted but had not handed to a worker yet.',
            ]),
      ],
      misses,
    };
  },
};
