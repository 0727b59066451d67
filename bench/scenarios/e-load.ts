import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { classify } from '../../harness/classify';
import { formatSummary } from '../../harness/markdown';
import type { Ended } from '../../harness/protocol';
import { chartConfig } from '../charts';
import type { Bench, Figures, Series } from '../context';
import { check, column, rxSystems, systemsTable, type ScenarioReport, type TargetCheck } from './scenario';

const clients = 100;
const handlerMs = 1;
const timeoutMs = 1_000;
const shapes = [
  { name: 'hammer', thinkMaxMs: 0, description: 'next request at once' },
  { name: 'paced', thinkMaxMs: 10, description: '0–10 ms think time' },
] as const;
const headers = {
  completed: 'completed',
  refused: 'refused',
  resetNewcomers: 'reset newcomers',
  cut: 'cut before run',
  lost: 'lost',
  resolveMs: 'resolve ms',
};
const failures = { lost: 'lost (ran, no answer)', cut: 'cut before run', resetNewcomers: 'reset newcomers' } as const;

/** E. Shutdown under load from 100 keep-alive clients: what the clients see. */
export async function underLoad(bench: Bench): Promise<ScenarioReport> {
  const loadMs = bench.settings.quick ? 300 : 500;
  const endAfterMs = loadMs + timeoutMs + 1_500;
  const handler = { kind: 'delayed', delayMs: [handlerMs, handlerMs] } as const;
  const config = { handler, trigger: { kind: 'afterFirstRequest', delayMs: loadMs }, timeoutMs } as const;
  const byShape = new Map<string, Figures>();
  for (const shape of shapes) {
    const figures = await bench.trials(`E ${shape.name}`, config, async ({ child, port }) => {
      const seed = Math.floor(Math.random() * 2 ** 31);
      const args = { protocol: 'http', port, clients, deadlineMs: endAfterMs, thinkMaxMs: shape.thinkMaxMs, seed } as const;
      const loading = bench.load.call('loops', args, endAfterMs + 10_000);
      const [loops, done] = await Promise.all([loading, child.next('done', loadMs + timeoutMs + 5_000)]);
      // A failure counts once its bytes were written and before the trial's end; the server's log
      // then says whether the handler ran it (lost), and if not, on what kind of connection it was cut.
      let [completed, refused, connectErrors, unansweredAtEnd] = [0, 0, 0, 0];
      const judged: Ended[] = [];
      for (const ended of loops.ended) {
        const { outcome } = ended;
        if (outcome.kind === 'completed') completed++;
        else if (outcome.kind === 'refused') refused++;
        else if (!outcome.sent) connectErrors++;
        else if (outcome.reason === 'no answer by the deadline') unansweredAtEnd++;
        else judged.push(ended);
      }
      const { lost, resetFresh, resetReused, resetReasons } = classify({ ...loops, ended: judged }, done);
      const counts = { completed, refused, resetNewcomers: resetFresh, cut: resetReused, lost };
      return { ...counts, resolveMs: done.durationMs, unansweredAtEnd, connectErrors, resetReasons };
    });
    byShape.set(shape.name, figures);
  }

  const figure = (shape: string, key: string): Series => (byShape.get(shape) as Figures).get(key);
  const tables = shapes.map(({ name, description }) => {
    const columns = Object.entries(headers).map(([key, header]) =>
      column(header, key, figure(name, key), key === 'resolveMs' ? 1 : 0),
    );
    const caption = `${name} (${description}): per trial, median (min–max) over rounds`;
    return systemsTable(caption, bench.systems, columns, { scenario: 'E', shape: name });
  });

  const targets: TargetCheck[] = rxSystems.flatMap((system) => {
    const worst = (shape: string, key: string): number | null => figure(shape, key).summary(system)?.max ?? null;
    const shapesWorst = shapes.map(({ name }) => ({ name, lost: worst(name, 'lost'), reset: worst(name, 'resetNewcomers') }));
    const measured = shapesWorst.every(({ lost, reset }) => lost !== null && reset !== null);
    const lostAndReset = shapesWorst.map(({ name, lost, reset }) => `${name}: ≤ ${String(lost)} lost, ≤ ${String(reset)} reset`);
    const cut = figure('paced', 'cut').summary(system);
    return [
      {
        target: `E: ${system} 0 lost and 0 reset newcomers in every trial of both shapes`,
        measured: measured ? lostAndReset.join('; ') : 'not measured',
        met: measured ? shapesWorst.every(({ lost, reset }) => lost === 0 && reset === 0) : null,
      },
      check(`E: ${system} paced, at most 2 requests per trial cut before the handler ran`, cut, (paced) => [
        `≤ ${paced.max} per trial (median ${formatSummary(paced)})`,
        paced.max <= 2,
      ]),
    ];
  });

  const median = (shape: string, key: string, system: string): number => figure(shape, key).summary(system)?.median ?? 0;
  const chartRows = shapes.flatMap(({ name: shape }) =>
    bench.systems.flatMap((system) =>
      Object.entries(failures).map(([key, outcome]) => ({ shape, system, outcome, count: median(shape, key, system) })),
    ),
  );
  const legend = Object.values(failures);
  const colors = { domain: legend, range: ['#e45756', '#f58518', '#72b7b2'] };
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
        color: { field: 'outcome', type: 'nominal', sort: legend, scale: colors, legend: { orient: 'bottom', title: null } },
      },
    },
    resolve: { scale: { x: 'shared' } },
    config: chartConfig,
  };

  const title = 'E: failed requests per trial during a shutdown under load';
  return {
    title: 'E. Shutdown under load',
    method:
      `${clients} keep-alive clients in one load process, each in a loop: send a request (with an \`x-request-id\`), read the whole response, then the next request at once (hammer) or after 0–10 ms (paced); ` +
      'on `Connection: close` or a closed connection, connect again; on ECONNREFUSED, stop (a real client goes elsewhere). ' +
      `The handler answers after ${handlerMs} ms (a handler that awaits something) and records every id it ran. The server process calls the system’s shutdown ${loadMs} ms after the first request (timeout ${timeoutMs} ms); ` +
      `the trial ends when every client has stopped, at most ${endAfterMs} ms after it began. Failed requests are split with the server’s record: lost = the handler ran it, the client got no whole response; ` +
      'reset newcomers = first request on a new connection, not run (accepted, then closed); cut before run = on a reused keep-alive connection, not run (the idle-close race).',
    tables,
    charts: [{ file: path.join(__dirname, '..', 'e-load.svg'), title, spec }],
    targets,
  };
}
