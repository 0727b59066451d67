import { setTimeout as sleep } from 'node:timers/promises';
import type { ServerCalls } from '../../harness/server';
import type { Bench } from '../context';
import { instructionsPerRequest } from './a-instructions';
import { formatSummary, summarize } from '../../harness/markdown';
import { check, column, ratioColumn, rxSystems, systemsTable, type ScenarioReport } from './scenario';

const connections = 50;
const windowMs = 500;
const maxMarks = 100;
/** The targets: instructions per request (CPU per request where valgrind is missing) at most this many times bare's. */
const limits = { 'rx-graceful': 1.02, 'rx-graceful-state': 1.05, 'rx-graceful-prometheus': 1.05 };

type Mark = ServerCalls['mark']['result'];

/**
 * A. Cost per request: instructions per request under callgrind (a-instructions.ts), which the
 * targets judge; and server CPU per request, req/s and p50/p99 latency under autocannon.
 */
export async function costPerRequest(bench: Bench): Promise<ScenarioReport> {
  const warmupS = bench.settings.quick ? 0.3 : 1;
  const durationS = bench.settings.quick ? 1.2 : 4;
  const config = { handler: { kind: 'trivial' }, trigger: { kind: 'call' }, timeoutMs: 1_000 } as const;
  // --quick times bare and rx-graceful only: the targets are judged by instructions, and the
  // quick run has three minutes for every scenario.
  const systems = bench.settings.quick ? bench.systems.filter((s) => s === 'bare' || s === 'rx-graceful') : bench.systems;
  const figures = await bench.trials(
    'A cost per request',
    config,
    async ({ child, port }) => {
      const callMs = (durationS + warmupS) * 1000 + 15_000;
      await bench.load.call('autocannon', { port, connections, durationS: warmupS }, callMs);
      // Marks every windowMs while the load runs; each figure is the median over the windows,
      // so that a burst of noise from elsewhere on the machine spoils one window, not the trial.
      const measured = bench.load.call('autocannon', { port, connections, durationS }, callMs);
      const marks: Mark[] = [];
      await sleep(windowMs / 2);
      for (let i = 0; i < maxMarks && (i + 1) * windowMs < durationS * 1000; i++) {
        marks.push(await child.call('mark', {}, 5_000));
        await sleep(windowMs);
      }
      const result = await measured;
      const windows = marks.slice(1).map((mark, index) => {
        const previous = marks[index] as Mark;
        const served = mark.requests - previous.requests;
        const cpuPerRequestUs = served > 0 ? (mark.cpuUs - previous.cpuUs) / served : null;
        return { served, cpuPerRequestUs, requestsPerS: served / ((mark.atMs - previous.atMs) / 1000) };
      });
      const cpuPerRequestUs = summarize(windows.map((window) => window.cpuPerRequestUs))?.median ?? null;
      const requestsPerS = summarize(windows.map((window) => window.requestsPerS))?.median ?? null;
      return { cpuPerRequestUs, requestsPerS, p50Ms: result.p50Ms, p99Ms: result.p99Ms, windows, autocannon: result };
    },
    systems,
  );

  const cpu = figures.get('cpuPerRequestUs');
  const rate = figures.get('requestsPerS');
  const columns = [
    column('CPU µs/req', 'cpuPerRequestUs', cpu, 2),
    ratioColumn('× bare', 'cpuVsBare', cpu),
    column('req/s', 'requestsPerS', rate),
    ratioColumn('× bare', 'requestsVsBare', rate),
    column('p50 ms', 'p50Ms', figures.get('p50Ms'), 2),
    column('p99 ms', 'p99Ms', figures.get('p99Ms'), 2),
  ];
  const caption =
    'CPU per request (µs) and throughput; median (min–max) over rounds; × bare is the ratio to bare Node in the same round';
  const instructions = await instructionsPerRequest(bench);
  // Instructions resolve a few tenths of a %, autocannon's CPU time about ±30 % on this machine: the targets take the first when there is one.
  const judged =
    instructions === null
      ? { what: 'CPU', ratio: (system: string) => cpu.ratio(system), digits: 2 }
      : { what: 'instructions', ratio: instructions.ratio, digits: 3 };
  return {
    title: 'A. Cost per request',
    method:
      (instructions === null
        ? ''
        : `${instructions.method}\n\nThe targets are judged by instructions. Time, under autocannon: `) +
      `Trivial handler (200, 2-byte body). autocannon with ${connections} keep-alive connections: ${warmupS} s warm-up, then ${durationS} s measured. ` +
      `While it runs, the orchestrator reads the server process’s process.cpuUsage() (user + system) and its handler’s request count every ${windowMs} ms; ` +
      'per window, CPU per request is the CPU time over the requests run, req/s the requests over the wall time; a trial’s figure is the median over its windows. ' +
      'p50/p99 come from autocannon’s per-response times over the whole measured run. With two cores, the load generator is as busy as the server: req/s is bounded by both.',
    tables: [...(instructions === null ? [] : [instructions.table]), systemsTable(caption, systems, columns, { scenario: 'A' })],
    charts: [],
    targets: rxSystems.map((system) =>
      check(`A: ${judged.what} per request of ${system} ≤ ${limits[system]} × bare`, judged.ratio(system), (r) => [
        `${formatSummary(r, judged.digits)} × bare`,
        r.median <= limits[system],
      ]),
    ),
  };
}
