import { setTimeout as sleep } from 'node:timers/promises';
import { RoundSeries, summarize } from '../../harness/stats';
import type { CpuMark } from '../protocol';
import { ratioColumn, ratioTarget, summaryColumn, systemsTable, type Scenario } from './scenario';

const connections = 50;
const windowMs = 500;
const maxMarks = 100;

/** A. Cost per request: server CPU per request and req/s under autocannon, p50/p99 latency. */
export const scenario: Scenario = {
  id: 'A',
  title: 'A. Cost per request',
  async run(context) {
    const warmupS = context.quick ? 0.3 : 1;
    const durationS = context.quick ? 1.2 : 4;
    const cpu = new RoundSeries(context.rounds);
    const rate = new RoundSeries(context.rounds);
    const p50 = new RoundSeries(context.rounds);
    const p99 = new RoundSeries(context.rounds);
    const load = context.load;

    await context.eachTrial('A cost per request', async (system, round) => {
      await context.withServer(
        system,
        { handler: { kind: 'trivial' }, trigger: { kind: 'command' }, timeoutMs: 1_000, exitBySelf: false },
        async ({ peer, port }) => {
          const callMs = (durationS + warmupS) * 1000 + 15_000;
          await load.call('autocannon', { port, connections, durationS: warmupS }, callMs);
          // Marks every windowMs while the load runs; each figure is the median over the windows,
          // so that a burst of noise from elsewhere on the machine spoils one window, not the trial.
          const measured = load.call('autocannon', { port, connections, durationS }, callMs);
          const marks: CpuMark[] = [];
          await sleep(windowMs / 2);
          for (let i = 0; i < maxMarks && (i + 1) * windowMs < durationS * 1000; i++) {
            marks.push(await peer.call('mark', {}, 5_000));
            await sleep(windowMs);
          }
          const result = await measured;
          const windows = marks.slice(1).map((mark, index) => {
            const previous = marks[index] as CpuMark;
            const served = mark.requests - previous.requests;
            return {
              served,
              cpuPerRequestUs: served > 0 ? (mark.cpuUs - previous.cpuUs) / served : null,
              requestsPerS: served / ((mark.atMs - previous.atMs) / 1000),
            };
          });
          const cpuPerRequestUs = summarize(windows.map((window) => window.cpuPerRequestUs))?.median ?? null;
          const requestsPerS = summarize(windows.map((window) => window.requestsPerS))?.median ?? null;
          cpu.set(system, round, cpuPerRequestUs);
          rate.set(system, round, requestsPerS);
          p50.set(system, round, result.p50Ms);
          p99.set(system, round, result.p99Ms);
          context.record({ scenario: 'A', system, round, cpuPerRequestUs, requestsPerS, windows, ...result });
        },
      );
    });

    const { markdown, summaries } = systemsTable(
      context.systems,
      [
        summaryColumn('CPU µs/req', 'cpuPerRequestUs', cpu, 2),
        ratioColumn('× bare', 'cpuVsBare', cpu),
        summaryColumn('req/s', 'requestsPerS', rate),
        ratioColumn('× bare', 'requestsVsBare', rate),
        summaryColumn('p50 ms', 'p50Ms', p50, 2),
        summaryColumn('p99 ms', 'p99Ms', p99, 2),
      ],
      { scenario: 'A' },
    );
    const limits: [string, number][] = [
      ['rx-graceful', 1.02],
      ['rx-graceful-state', 1.05],
    ];
    const targets = limits.map(([system, limit]) =>
      ratioTarget(`A: CPU per request of ${system} ≤ ${limit} × bare`, cpu.ratio(system, 'bare'), limit),
    );

    return {
      id: 'A',
      title: this.title,
      method:
        `Trivial handler (200, 2-byte body). autocannon with ${connections} keep-alive connections: ${warmupS} s warm-up, then ${durationS} s measured. ` +
        `While it runs, the orchestrator reads the server process’s process.cpuUsage() (user + system) and its handler’s request count every ${windowMs} ms; ` +
        'per window, CPU per request is the CPU time over the requests run, req/s the requests over the wall time; a trial’s figure is the median over its windows. ' +
        'p50/p99 come from autocannon’s per-response times over the whole measured run. With two cores, the load generator is as busy as the server: req/s is bounded by both.',
      tables: [
        {
          caption:
            'CPU per request (µs) and throughput; median (min–max) over rounds; × bare is the ratio to bare Node in the same round',
          markdown,
        },
      ],
      summaries,
      charts: [],
      targets,
    };
  },
};
