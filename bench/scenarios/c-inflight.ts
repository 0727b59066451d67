import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { chartConfig } from '../charts';
import { formatSummary } from '../../harness/markdown';
import { RoundSeries } from '../../harness/stats';
import { ratioColumn, summaryColumn, systemsTable, type Scenario, type TargetCheck } from './scenario';

const requests = 100;
const handlerMs = 500;
const shutdownAfterMs = 100;
const timeoutMs = 10_000;

/** C. 100 requests in flight, shutdown 100 ms in: resolve time against the ideal, whole responses, `Connection: close`. */
export const scenario: Scenario = {
  id: 'C',
  title: 'C. Shutdown with requests in flight',
  async run(context) {
    const resolve = new RoundSeries(context.rounds);
    const ideal = new RoundSeries(context.rounds);
    const over = new RoundSeries(context.rounds);
    const whole = new RoundSeries(context.rounds);
    const withClose = new RoundSeries(context.rounds);
    const load = context.load;

    await context.eachTrial('C in flight', async (system, round) => {
      await context.withServer(
        system,
        {
          handler: { kind: 'delayed', delayMs: handlerMs },
          trigger: { kind: 'afterFirstRequest', delayMs: shutdownAfterMs },
          timeoutMs,
          exitBySelf: false,
        },
        async ({ peer, port }) => {
          const [clients, done] = await Promise.all([
            load.call('inflight', { port, count: requests, settleMs: timeoutMs + 2_000 }, timeoutMs + 10_000),
            peer.next('done', timeoutMs + 5_000),
          ]);
          resolve.set(system, round, done.durationMs);
          ideal.set(system, round, done.lastFinishMs);
          over.set(system, round, done.lastFinishMs === null ? null : done.durationMs - done.lastFinishMs);
          whole.set(system, round, clients.whole);
          withClose.set(system, round, clients.withClose);
          context.record({ scenario: 'C', system, round, ...done, ...clients });
        },
      );
    });

    const { markdown, summaries } = systemsTable(
      context.systems,
      [
        summaryColumn('resolve ms', 'resolveMs', resolve, 1),
        summaryColumn('ideal ms', 'idealMs', ideal, 1),
        summaryColumn('over ideal ms', 'overIdealMs', over, 1),
        ratioColumn('resolve × bare', 'resolveVsBare', resolve),
        summaryColumn('whole', 'wholeResponses', whole),
        summaryColumn('with close', 'withConnectionClose', withClose),
      ],
      { scenario: 'C' },
    );

    const targets: TargetCheck[] = ['rx-graceful', 'rx-graceful-state'].flatMap((system) => {
      const late = over.summary(system);
      const wholeCount = whole.summary(system);
      const closeCount = withClose.summary(system);
      return [
        {
          target: `C: ${system} resolves within 2 ms of the ideal`,
          measured: late ? `${formatSummary(late, 1)} ms after the last response` : 'not measured',
          met: late ? late.median <= 2 : null,
        },
        {
          target: `C: ${system} 100 of 100 responses whole with \`Connection: close\``,
          measured:
            wholeCount && closeCount
              ? `${formatSummary(wholeCount)} whole, ${formatSummary(closeCount)} with close`
              : 'not measured',
          met: wholeCount && closeCount ? wholeCount.min === requests && closeCount.min === requests : null,
        },
      ];
    });

    const chartRows = context.systems.flatMap((system) => {
      const summary = resolve.summary(system);
      const idealSummary = ideal.summary(system);
      return summary
        ? [{ system, median: summary.median, min: summary.min, max: summary.max, ideal: idealSummary?.median ?? null }]
        : [];
    });
    const spec: TopLevelSpec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: {
        text: `C. ${requests} requests in flight (${handlerMs} ms handler), shutdown ${shutdownAfterMs} ms in`,
        subtitle: 'time to resolve, ms (log scale); black tick: ideal (last response finished)',
      },
      width: 460,
      height: { step: 24 },
      data: { values: chartRows },
      encoding: { y: { field: 'system', type: 'nominal', sort: null, title: null } },
      layer: [
        {
          mark: { type: 'bar', color: '#4c78a8' },
          encoding: {
            x: {
              field: 'median',
              type: 'quantitative',
              scale: { type: 'log', domain: [100, 20_000] },
              axis: { values: [100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000], format: ',d' },
              title: 'resolve, ms',
            },
          },
        },
        { mark: { type: 'rule', color: '#333' }, encoding: { x: { field: 'min', type: 'quantitative' }, x2: { field: 'max' } } },
        { mark: { type: 'tick', color: 'black', thickness: 2 }, encoding: { x: { field: 'ideal', type: 'quantitative' } } },
        {
          mark: { type: 'text', align: 'left', dx: 4, fontSize: 10 },
          encoding: {
            x: { field: 'max', type: 'quantitative' },
            text: { field: 'median', type: 'quantitative', format: ',.0f' },
          },
        },
      ],
      config: chartConfig,
    };

    return {
      id: 'C',
      title: this.title,
      method:
        `${requests} keep-alive connections each send one request; the handler answers after ${handlerMs} ms. The server process calls the system’s shutdown ${shutdownAfterMs} ms after the first request reached the handler ` +
        `(timeout ${timeoutMs / 1000} s; Node’s default keepAliveTimeout 5 s). Resolve is from that call to the system’s report; the ideal is from that call to the \`finish\` of the last response; ` +
        'the client counts whole responses (status 200, whole body) and those carrying `Connection: close`, and keeps each connection open until the server closes it, as a keep-alive client does.',
      tables: [
        {
          caption:
            'Resolve and ideal (ms from the shutdown call), resolve minus ideal (ms), whole responses and those with `Connection: close` (of 100)',
          markdown,
        },
      ],
      summaries,
      charts: [{ file: path.join(__dirname, '..', 'c-inflight.svg'), title: 'C: time to resolve with requests in flight', spec }],
      targets,
    };
  },
};
