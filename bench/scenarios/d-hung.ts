import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { chartConfig } from '../charts';
import { formatSummary } from '../../harness/markdown';
import { RoundSeries } from '../../harness/stats';
import { summaryColumn, systemsTable, type Scenario, type TargetCheck } from './scenario';

const requests = 10;
const timeoutMs = 300;
const exitWindowMs = 2_000;

/** D. 10 requests that never get an answer, timeout 300 ms: resolve, `killed`, and whether the process exits by itself. */
export const scenario: Scenario = {
  id: 'D',
  title: 'D. Shutdown with requests that never finish',
  async run(context) {
    const resolve = new RoundSeries(context.rounds);
    const overDeadline = new RoundSeries(context.rounds);
    const killed = new RoundSeries(context.rounds);
    const exits = new RoundSeries(context.rounds);
    const clientsCut = new RoundSeries(context.rounds);
    const graceful = new Map<string, (boolean | null)[]>();
    const load = context.load;

    await context.eachTrial('D never answered', async (system, round) => {
      await context.withServer(
        system,
        { handler: { kind: 'never' }, trigger: { kind: 'onRequestCount', count: requests }, timeoutMs, exitBySelf: true },
        async ({ peer, port }) => {
          const [clients, done] = await Promise.all([
            load.call('inflight', { port, count: requests, settleMs: timeoutMs + 3_000 }, timeoutMs + 10_000),
            peer.next('done', timeoutMs + 5_000),
          ]);
          const exited = (await peer.exits(exitWindowMs)) !== undefined;
          resolve.set(system, round, done.durationMs);
          overDeadline.set(system, round, done.durationMs - timeoutMs);
          killed.set(system, round, done.killed);
          exits.set(system, round, exited ? 1 : 0);
          clientsCut.set(system, round, clients.failed);
          const flags = graceful.get(system) ?? [];
          flags[round] = done.graceful;
          graceful.set(system, flags);
          context.record({ scenario: 'D', system, round, ...done, exitedBySelf: exited, ...clients });
        },
      );
    });

    const exitLabel = (system: string): string => {
      const values = exits.values(system).filter((value): value is number => value !== null);
      if (values.length === 0) return '—';
      const yes = values.filter((value) => value === 1).length;
      return yes === values.length ? 'yes' : yes === 0 ? 'no' : `${yes} of ${values.length}`;
    };
    const reportedLabel = (system: string): string => {
      const count = killed.summary(system);
      if (count) return formatSummary(count);
      const flags = (graceful.get(system) ?? []).filter((flag): flag is boolean => typeof flag === 'boolean');
      return flags.length > 0 ? `no count (gracefully=${flags.join('/')})` : 'no count';
    };
    const { markdown, summaries } = systemsTable(
      context.systems,
      [
        summaryColumn('resolve ms', 'resolveMs', resolve, 1),
        summaryColumn('over deadline ms', 'overDeadlineMs', overDeadline, 1),
        { header: 'killed reported', key: 'killedReported', cell: reportedLabel, json: (system) => killed.summary(system) },
        summaryColumn('clients cut', 'clientsCut', clientsCut),
        { header: 'exits by itself', key: 'exitedBySelf', cell: exitLabel, json: (system) => exits.values(system) },
      ],
      { scenario: 'D' },
    );

    const targets: TargetCheck[] = ['rx-graceful', 'rx-graceful-state'].flatMap((system) => {
      const late = overDeadline.summary(system);
      const count = killed.summary(system);
      const exit = exitLabel(system);
      return [
        {
          target: `D: ${system} resolves within 3 ms of the deadline`,
          measured: late ? `${formatSummary(late, 1)} ms after it` : 'not measured',
          met: late ? Math.abs(late.median) <= 3 : null,
        },
        {
          target: `D: ${system} reports killed = 10`,
          measured: count ? formatSummary(count) : 'not measured',
          met: count ? count.min === requests && count.max === requests : null,
        },
        { target: `D: ${system} process exits by itself`, measured: exit, met: exit === '—' ? null : exit === 'yes' },
      ];
    });

    const chartRows = context.systems.flatMap((system) => {
      const summary = resolve.summary(system);
      return summary
        ? [
            {
              system,
              median: summary.median,
              min: summary.min,
              max: summary.max,
              label: `${summary.median.toFixed(0)} ms · killed: ${reportedLabel(system)} · exits by itself: ${exitLabel(system)}`,
            },
          ]
        : [];
    });
    const spec: TopLevelSpec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: {
        text: `D. ${requests} requests never answered, timeout ${timeoutMs} ms`,
        subtitle: 'time to resolve, ms; red rule: the deadline',
      },
      width: 420,
      height: { step: 24 },
      layer: [
        {
          data: { values: chartRows },
          encoding: { y: { field: 'system', type: 'nominal', sort: null, title: null } },
          layer: [
            {
              mark: { type: 'bar', color: '#4c78a8' },
              encoding: { x: { field: 'median', type: 'quantitative', title: 'resolve, ms', scale: { domainMin: 0 } } },
            },
            {
              mark: { type: 'rule', color: '#333' },
              encoding: { x: { field: 'min', type: 'quantitative' }, x2: { field: 'max' } },
            },
            {
              mark: { type: 'text', align: 'left', dx: 4, fontSize: 10 },
              encoding: { x: { field: 'max', type: 'quantitative' }, text: { field: 'label', type: 'nominal' } },
            },
          ],
        },
        {
          data: { values: [{ deadline: timeoutMs }] },
          mark: { type: 'rule', color: '#e45756', strokeDash: [4, 3] },
          encoding: { x: { field: 'deadline', type: 'quantitative' } },
        },
      ],
      config: chartConfig,
    };

    return {
      id: 'D',
      title: this.title,
      method:
        `${requests} connections each send one request the handler never answers. The server process calls the system’s shutdown when the ${requests}th request reaches the handler (timeout ${timeoutMs} ms) ` +
        `and reports the resolve time and any killed count the system gives. Then it closes its IPC channel and does nothing else: “exits” says whether the process ended by itself within ${exitWindowMs / 1000} s ` +
        '(the harness never calls `process.exit` in this scenario). “cut” is how many of the clients saw their connection closed without an answer.',
      tables: [
        {
          caption: 'Resolve (ms from the shutdown call), over the deadline (ms), killed as reported, clients cut, process exit',
          markdown,
        },
      ],
      summaries,
      charts: [
        { file: path.join(__dirname, '..', 'd-hung.svg'), title: 'D: time to resolve with requests that never finish', spec },
      ],
      targets,
    };
  },
};
