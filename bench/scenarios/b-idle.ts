import { formatRatio, formatSummary, markdownTable } from '../../harness/markdown';
import { RoundSeries } from '../../harness/stats';
import { idleKeepAliveTimeoutMs, idleTimeoutMs, idleTrials, openConcurrency } from './idle-trials';
import { isPeer, ratioTarget, type Scenario, type TargetCheck } from './scenario';

/** B. Idle keep-alive connections, then a shutdown with a 10 s timeout: time to resolve. */
export const scenario: Scenario = {
  id: 'B',
  title: 'B. Shutdown with idle keep-alive connections',
  async run(context) {
    const sizes = [100, 1_000, 10_000].filter((size) => {
      const problem = context.tooManyFiles(size);
      if (problem) {
        context.notes.push(`B ${size}: ${problem}`);
        context.progress(`skipping B with ${size} connections: ${problem}`);
      }
      return problem === null;
    });
    const resolve = new Map(sizes.map((size) => [size, new RoundSeries(context.rounds)]));

    for (const size of sizes) {
      const series = resolve.get(size) as RoundSeries;
      for (const trial of await idleTrials(context, size)) series.set(trial.system, trial.round, trial.done.durationMs);
    }

    const header = ['system', ...sizes.flatMap((size) => [`${size.toLocaleString('en-US')} idle, ms`, '× bare'])];
    const rows = context.systems.map((system) => [
      system,
      ...sizes.flatMap((size) => {
        const series = resolve.get(size) as RoundSeries;
        return [formatSummary(series.summary(system), 1), formatRatio(series.ratio(system, 'bare'))];
      }),
    ]);
    const summaries = context.systems.flatMap((system) =>
      sizes.map((size) => {
        const series = resolve.get(size) as RoundSeries;
        return {
          scenario: 'B',
          system,
          idleConnections: size,
          resolveMs: series.summary(system),
          vsBare: series.ratio(system, 'bare'),
        };
      }),
    );

    const targets: TargetCheck[] = [];
    for (const size of sizes) {
      const series = resolve.get(size) as RoundSeries;
      const peers = context.systems.filter(isPeer).map((system) => ({ system, median: series.summary(system)?.median }));
      const fastest = peers.reduce<{ system: string; median: number } | null>(
        (best, peer) =>
          peer.median !== undefined && (best === null || peer.median < best.median)
            ? { system: peer.system, median: peer.median }
            : best,
        null,
      );
      for (const system of ['rx-graceful', 'rx-graceful-state']) {
        const own = series.summary(system);
        targets.push({
          target: `B ${size.toLocaleString('en-US')} idle: ${system} no later than the fastest peer`,
          measured:
            own && fastest ? `${formatSummary(own, 1)} ms vs ${fastest.system} ${fastest.median.toFixed(1)} ms` : 'not measured',
          met: own && fastest ? own.median <= fastest.median : null,
        });
      }
      if (size === 10_000)
        targets.push(ratioTarget('B 10,000 idle: rx-graceful ≤ 0.75 × bare', series.ratio('rx-graceful', 'bare'), 0.75));
    }

    return {
      id: 'B',
      title: this.title,
      method:
        `The load processes open N keep-alive connections (${openConcurrency} at a time per process; above 2,000 split over two processes), send one request on each and keep them idle ` +
        `(server keepAliveTimeout ${idleKeepAliveTimeoutMs / 1000} s so none expires during setup). Then the server process calls the system’s shutdown with a ${idleTimeoutMs / 1000} s timeout ` +
        'and times, in its own clock, how long the shutdown takes to report that it has finished.',
      tables: [
        {
          caption: 'Time from the shutdown call to its resolution (ms), by number of idle connections',
          markdown: markdownTable(header, rows),
        },
      ],
      summaries,
      charts: [],
      targets,
    };
  },
};
