import { RoundSeries } from '../../harness/stats';
import { idleKeepAliveTimeoutMs, idleTrials } from './idle-trials';
import { ratioColumn, ratioTarget, summaryColumn, systemsTable, type Scenario } from './scenario';

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

    const { markdown, summaries } = systemsTable(
      context.systems,
      [
        summaryColumn('heap B/conn', 'heapBytesPerConnection', heap),
        ratioColumn('× bare', 'heapVsBare', heap),
        summaryColumn('RSS B/conn', 'rssBytesPerConnection', rss),
        ratioColumn('× bare', 'rssVsBare', rss),
      ],
      { scenario: 'F' },
    );
    const targets = ['rx-graceful', 'rx-graceful-state'].map((system) =>
      ratioTarget(`F: ${system} heap per idle connection ≤ 1.10 × bare`, heap.ratio(system, 'bare'), 1.1),
    );

    return {
      id: 'F',
      title: this.title,
      method:
        `In the server process (started with --expose-gc): gc() three times, then process.memoryUsage(), before and after the load processes open ${connections.toLocaleString('en-US')} keep-alive connections ` +
        `with one request each and hold them idle (keepAliveTimeout ${idleKeepAliveTimeoutMs / 1000} s). These are the trials of B with 10,000 connections, measured before their shutdown. Per connection = (after − before) / connections. RSS is noisier than heap.`,
      tables: [{ caption: `Bytes per idle connection with ${connections.toLocaleString('en-US')} open`, markdown }],
      summaries,
      charts: [],
      targets,
    };
  },
};
