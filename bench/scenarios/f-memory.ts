import { formatRatio, formatSummary, markdownTable } from '../markdown';
import { RoundSeries } from '../stats';
import { idleKeepAliveTimeoutMs, idleTrials } from './idle-trials';
import type { Scenario, TargetCheck } from './scenario';

const connections = 10_000;

/** F. Heap and RSS per idle keep-alive connection with 10,000 open. */
export const scenario: Scenario = {
  id: 'F',
  title: 'F. Memory per idle connection',
  async run(context) {
    const heap = new RoundSeries(context.rounds);
    const rss = new RoundSeries(context.rounds);
    const problem = context.tooManyFiles(connections);
    if (problem) {
      context.notes.push(`F: ${problem}`);
      context.progress(`skipping F: ${problem}`);
    } else {
      for (const trial of await idleTrials(context, connections)) {
        heap.set(trial.system, trial.round, (trial.after.heapUsed - trial.before.heapUsed) / trial.open);
        rss.set(trial.system, trial.round, (trial.after.rss - trial.before.rss) / trial.open);
      }
    }

    const rows = context.systems.map((system) => [
      system,
      formatSummary(heap.summary(system)),
      formatRatio(heap.ratio(system, 'bare')),
      formatSummary(rss.summary(system)),
      formatRatio(rss.ratio(system, 'bare')),
    ]);
    const summaries = context.systems.map((system) => ({
      scenario: 'F',
      system,
      heapBytesPerConnection: heap.summary(system),
      heapVsBare: heap.ratio(system, 'bare'),
      rssBytesPerConnection: rss.summary(system),
      rssVsBare: rss.ratio(system, 'bare'),
    }));
    const targets: TargetCheck[] = ['rx-graceful', 'rx-graceful-state'].map((system) => {
      const ratio = heap.ratio(system, 'bare');
      return {
        target: `F: ${system} heap per idle connection ≤ 1.10 × bare`,
        measured: ratio ? `${formatRatio(ratio)} × bare` : 'not measured',
        met: ratio ? ratio.median <= 1.1 : null,
      };
    });

    return {
      id: 'F',
      title: this.title,
      method:
        `In the server process (started with --expose-gc): gc() three times, then process.memoryUsage(), before and after the load processes open ${connections.toLocaleString('en-US')} keep-alive connections ` +
        `with one request each and hold them idle (keepAliveTimeout ${idleKeepAliveTimeoutMs / 1000} s). These are the trials of B with 10,000 connections, measured before their shutdown. Per connection = (after − before) / connections. RSS is noisier than heap.`,
      tables: [
        {
          caption: `Bytes per idle connection with ${connections.toLocaleString('en-US')} open`,
          markdown: markdownTable(['system', 'heap B/conn', '× bare', 'RSS B/conn', '× bare'], rows),
        },
      ],
      summaries,
      charts: [],
      targets,
    };
  },
};
