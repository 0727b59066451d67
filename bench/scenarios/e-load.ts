import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { chartConfig } from '../charts';
import { formatSummary } from '../../harness/markdown';
import { RoundSeries } from '../../harness/stats';
import { summaryColumn, systemsTable, type Scenario, type TargetCheck } from './scenario';

const clients = 100;
const handlerMs = 1;
const timeoutMs = 1_000;
const shapes = [
  { name: 'hammer', thinkMaxMs: 0, description: 'next request at once' },
  { name: 'paced', thinkMaxMs: 10, description: '0–10 ms think time' },
] as const;
const outcomes = ['completed', 'refused', 'resetNewcomers', 'cut', 'lost', 'resolveMs'] as const;
type Outcome = (typeof outcomes)[number];

/** E. Shutdown under load from 100 keep-alive clients: what the clients see. */
export const scenario: Scenario = {
  id: 'E',
  title: 'E. Shutdown under load',
  async run(context) {
    const loadMs = context.quick ? 300 : 500;
    const endAfterMs = loadMs + timeoutMs + 1_500;
    const series = new Map<string, Map<Outcome, RoundSeries>>(
      shapes.map((shape) => [shape.name, new Map(outcomes.map((outcome) => [outcome, new RoundSeries(context.rounds)]))]),
    );
    const load = context.load;

    for (const shape of shapes) {
      const figures = series.get(shape.name) as Map<Outcome, RoundSeries>;
      const set = (outcome: Outcome, system: string, round: number, value: number): void =>
        figures.get(outcome)?.set(system, round, value);
      await context.eachTrial(`E ${shape.name}`, async (system, round) => {
        await context.withServer(
          system,
          {
            handler: { kind: 'delayed', delayMs: handlerMs },
            trigger: { kind: 'afterFirstRequest', delayMs: loadMs },
            timeoutMs,
            exitBySelf: false,
          },
          async ({ peer, port }) => {
            const [storm, done] = await Promise.all([
              load.call('storm', { port, clients, thinkMaxMs: shape.thinkMaxMs, endAfterMs }, endAfterMs + 10_000),
              peer.next('done', loadMs + timeoutMs + 5_000),
            ]);
            const written = storm.failures.filter((failure) => failure.sent).map((failure) => failure.id);
            const ran = new Set((await peer.call('ran', { ids: written }, 10_000)).ids);
            let lost = 0;
            let resetNewcomers = 0;
            let cut = 0;
            for (const failure of storm.failures) {
              if (ran.has(failure.id)) lost++;
              else if (failure.fresh) resetNewcomers++;
              else cut++;
            }
            set('completed', system, round, storm.completed);
            set('refused', system, round, storm.refused);
            set('resetNewcomers', system, round, resetNewcomers);
            set('cut', system, round, cut);
            set('lost', system, round, lost);
            set('resolveMs', system, round, done.durationMs);
            const reasons: Record<string, number> = {};
            for (const failure of storm.failures) reasons[failure.reason] = (reasons[failure.reason] ?? 0) + 1;
            context.record({
              scenario: 'E',
              shape: shape.name,
              system,
              round,
              completed: storm.completed,
              refused: storm.refused,
              resetNewcomers,
              cut,
              lost,
              unansweredAtEnd: storm.unansweredAtEnd,
              connectErrors: storm.connectErrors,
              reasons,
              ...done,
            });
          },
        );
      });
    }

    const figure = (shape: string, outcome: Outcome): RoundSeries => series.get(shape)?.get(outcome) as RoundSeries;
    const headers: Record<Outcome, string> = {
      completed: 'completed',
      refused: 'refused',
      resetNewcomers: 'reset newcomers',
      cut: 'cut before run',
      lost: 'lost',
      resolveMs: 'resolve ms',
    };
    const perShape = shapes.map((shape) => ({
      caption: `${shape.name} (${shape.description}): per trial, median (min–max) over rounds`,
      ...systemsTable(
        context.systems,
        outcomes.map((outcome) =>
          summaryColumn(headers[outcome], outcome, figure(shape.name, outcome), outcome === 'resolveMs' ? 1 : 0),
        ),
        { scenario: 'E', shape: shape.name },
      ),
    }));
    const tables = perShape.map(({ caption, markdown }) => ({ caption, markdown }));
    const summaries = perShape.flatMap((table) => table.summaries);

    const targets: TargetCheck[] = ['rx-graceful', 'rx-graceful-state'].flatMap((system) => {
      const worst = (shape: string, outcome: Outcome): number | null => figure(shape, outcome).summary(system)?.max ?? null;
      const lostAndReset = shapes.map((shape) => [worst(shape.name, 'lost'), worst(shape.name, 'resetNewcomers')] as const);
      const measured = lostAndReset.every(([lost, reset]) => lost !== null && reset !== null);
      const pacedCut = worst('paced', 'cut');
      return [
        {
          target: `E: ${system} 0 lost and 0 reset newcomers in every trial of both shapes`,
          measured: measured
            ? shapes
                .map((shape, index) => `${shape.name}: ≤ ${lostAndReset[index]?.[0]} lost, ≤ ${lostAndReset[index]?.[1]} reset`)
                .join('; ')
            : 'not measured',
          met: measured ? lostAndReset.every(([lost, reset]) => lost === 0 && reset === 0) : null,
        },
        {
          target: `E: ${system} paced, at most 2 requests per trial cut before the handler ran`,
          measured:
            pacedCut === null
              ? 'not measured'
              : `≤ ${pacedCut} per trial (median ${formatSummary(figure('paced', 'cut').summary(system))})`,
          met: pacedCut === null ? null : pacedCut <= 2,
        },
      ];
    });

    const labels: Partial<Record<Outcome, string>> = {
      lost: 'lost (ran, no answer)',
      cut: 'cut before run',
      resetNewcomers: 'reset newcomers',
    };
    const chartRows = shapes.flatMap((shape) =>
      context.systems.flatMap((system) =>
        (['lost', 'cut', 'resetNewcomers'] as const).map((outcome) => ({
          shape: shape.name,
          system,
          outcome: labels[outcome],
          count: figure(shape.name, outcome).summary(system)?.median ?? 0,
        })),
      ),
    );
    const spec: TopLevelSpec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: {
        text: `E. Shutdown under load, ${clients} keep-alive clients`,
        subtitle: 'failed requests per trial (median over rounds); fewer is better',
      },
      data: { values: chartRows },
      facet: { row: { field: 'shape', type: 'nominal', sort: shapes.map((shape): string => shape.name), title: null } },
      spec: {
        width: 420,
        height: { step: 20 },
        mark: { type: 'bar' },
        encoding: {
          y: { field: 'system', type: 'nominal', sort: null, title: null },
          x: { field: 'count', type: 'quantitative', stack: 'zero', title: 'requests per trial' },
          color: {
            field: 'outcome',
            type: 'nominal',
            sort: Object.values(labels),
            scale: { domain: Object.values(labels), range: ['#e45756', '#f58518', '#72b7b2'] },
            legend: { orient: 'bottom', title: null },
          },
        },
      },
      resolve: { scale: { x: 'shared' } },
      config: chartConfig,
    };

    return {
      id: 'E',
      title: this.title,
      method:
        `${clients} keep-alive clients in one load process, each in a loop: send a request (with an \`x-request-id\`), read the whole response, then the next request at once (hammer) or after 0–10 ms (paced); ` +
        'on `Connection: close` or a closed connection, connect again; on ECONNREFUSED, stop (a real client goes elsewhere). ' +
        `The handler answers after ${handlerMs} ms (a handler that awaits something) and records every id it ran. The server process calls the system’s shutdown ${loadMs} ms after the first request (timeout ${timeoutMs} ms); ` +
        `the trial ends when every client has stopped, at most ${endAfterMs} ms after it began. Failed requests are split with the server’s record: lost = the handler ran it, the client got no whole response; ` +
        'reset newcomers = first request on a new connection, not run (accepted, then closed); cut before run = on a reused keep-alive connection, not run (the idle-close race).',
      tables,
      summaries,
      charts: [
        {
          file: path.join(__dirname, '..', 'e-load.svg'),
          title: 'E: failed requests per trial during a shutdown under load',
          spec,
        },
      ],
      targets,
    };
  },
};
