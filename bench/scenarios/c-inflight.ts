import path from 'node:path';
import { formatSummary } from '../../harness/markdown';
import { resolveChart } from '../charts';
import type { Bench } from '../context';
import { check, column, ratioColumn, rxSystems, systemsTable, type ScenarioReport } from './scenario';

const requests = 100;
const handlerMs = 500;
const shutdownAfterMs = 100;
const timeoutMs = 10_000;

/** C. 100 requests in flight, shutdown 100 ms in: resolve time against the ideal, whole responses, `Connection: close`. */
export async function inFlight(bench: Bench): Promise<ScenarioReport> {
  const handler = { kind: 'delayed', delayMs: [handlerMs, handlerMs] } as const;
  const config = { handler, trigger: { kind: 'afterFirstRequest', delayMs: shutdownAfterMs }, timeoutMs } as const;
  const figures = await bench.trials('C in flight', config, async ({ child, port }) => {
    const inflight = bench.load.call('inflight', { port, count: requests, settleMs: timeoutMs + 2_000 }, timeoutMs + 10_000);
    const [clients, done] = await Promise.all([inflight, child.next('done', timeoutMs + 5_000)]);
    const overIdealMs = done.lastFinishMs === null ? null : done.durationMs - done.lastFinishMs;
    return { resolveMs: done.durationMs, idealMs: done.lastFinishMs, overIdealMs, ...clients, killed: done.killed };
  });

  const resolve = figures.get('resolveMs');
  const ideal = figures.get('idealMs');
  const over = figures.get('overIdealMs');
  const whole = figures.get('whole');
  const withClose = figures.get('withClose');
  const columns = [
    column('resolve ms', 'resolveMs', resolve, 1),
    column('ideal ms', 'idealMs', ideal, 1),
    column('over ideal ms', 'overIdealMs', over, 1),
    ratioColumn('resolve × bare', 'resolveVsBare', resolve),
    column('whole', 'wholeResponses', whole),
    column('with close', 'withConnectionClose', withClose),
  ];
  const caption =
    'Resolve and ideal (ms from the shutdown call), resolve minus ideal (ms), whole responses and those with `Connection: close` (of 100)';
  const targets = rxSystems.flatMap((system) => {
    const closing = withClose.summary(system);
    return [
      check(`C: ${system} resolves within 2 ms of the ideal`, over.summary(system), (late) => [
        `${formatSummary(late, 1)} ms after the last response`,
        late.median <= 2,
      ]),
      check(
        `C: ${system} 100 of 100 responses whole with \`Connection: close\``,
        closing === null ? null : whole.summary(system),
        (count) => [
          `${formatSummary(count)} whole, ${formatSummary(closing)} with close`,
          count.min === requests && closing?.min === requests,
        ],
      ),
    ];
  });
  const spec = resolveChart(bench.systems, resolve, {
    title: `C. ${requests} requests in flight (${handlerMs} ms handler), shutdown ${shutdownAfterMs} ms in`,
    subtitle: 'time to resolve, ms (log scale); black tick: ideal (last response finished)',
    width: 460,
    fields: (system) => ({ ideal: ideal.summary(system)?.median ?? null }),
    x: {
      scale: { type: 'log', domain: [100, 20_000] },
      axis: { values: [100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000], format: ',d' },
      title: 'resolve, ms',
    },
    label: { field: 'median', type: 'quantitative', format: ',.0f' },
    over: [{ mark: { type: 'tick', color: 'black', thickness: 2 }, encoding: { x: { field: 'ideal', type: 'quantitative' } } }],
  });

  return {
    title: 'C. Shutdown with requests in flight',
    method:
      `${requests} keep-alive connections each send one request; the handler answers after ${handlerMs} ms. The server process calls the system’s shutdown ${shutdownAfterMs} ms after the first request reached the handler ` +
      `(timeout ${timeoutMs / 1000} s; Node’s default keepAliveTimeout 5 s). Resolve is from that call to the system’s report; the ideal is from that call to the \`finish\` of the last response; ` +
      'the client counts whole responses (status 200, whole body) and those carrying `Connection: close`, and keeps each connection open until the server closes it, as a keep-alive client does.',
    tables: [systemsTable(caption, bench.systems, columns, { scenario: 'C' })],
    charts: [{ file: path.join(__dirname, '..', 'c-inflight.svg'), title: 'C: time to resolve with requests in flight', spec }],
    targets,
  };
}
