import path from 'node:path';
import { formatSummary } from '../../harness/markdown';
import { resolveChart } from '../charts';
import type { Bench } from '../context';
import { check, column, rxSystems, systemsTable, type ScenarioReport, type TargetCheck } from './scenario';

const requests = 10;
const timeoutMs = 300;
const exitWindowMs = 2_000;

/** D. 10 requests that never get an answer, timeout 300 ms: resolve, `killed`, and whether the process exits by itself. */
export async function neverAnswered(bench: Bench): Promise<ScenarioReport> {
  const config = { handler: { kind: 'never' }, trigger: { kind: 'onRequestCount', count: requests }, timeoutMs } as const;
  const figures = await bench.trials('D never answered', config, async ({ child, port }) => {
    const inflight = bench.load.call('inflight', { port, count: requests, settleMs: timeoutMs + 3_000 }, timeoutMs + 10_000);
    const [clients, done] = await Promise.all([inflight, child.next('done', timeoutMs + 5_000)]);
    // The server has let go of its IPC channel: whatever keeps it alive now is the system's.
    const exited = (await child.exits(exitWindowMs)) !== undefined;
    const graceful = done.graceful === null ? null : Number(done.graceful);
    const times = { resolveMs: done.durationMs, overDeadlineMs: done.durationMs - timeoutMs };
    return { ...times, killed: done.killed, graceful, exits: Number(exited), clientsCut: clients.failed };
  });

  const resolve = figures.get('resolveMs');
  const over = figures.get('overDeadlineMs');
  const killed = figures.get('killed');
  const exits = figures.get('exits');
  const graceful = figures.get('graceful');
  const exitLabel = (system: string): string => {
    const values = exits.values(system).filter((value) => value !== null);
    const yes = values.filter((value) => value === 1).length;
    if (values.length === 0) return '—';
    return yes === values.length ? 'yes' : yes === 0 ? 'no' : `${yes} of ${values.length}`;
  };
  const reportedLabel = (system: string): string => {
    const count = killed.summary(system);
    if (count !== null) return formatSummary(count);
    const flags = graceful.values(system).filter((flag) => flag !== null);
    return flags.length > 0 ? `no count (gracefully=${flags.map((flag) => String(flag === 1)).join('/')})` : 'no count';
  };
  const columns = [
    column('resolve ms', 'resolveMs', resolve, 1),
    column('over deadline ms', 'overDeadlineMs', over, 1),
    { header: 'killed reported', key: 'killedReported', cell: reportedLabel, json: (system: string) => killed.summary(system) },
    column('clients cut', 'clientsCut', figures.get('clientsCut')),
    { header: 'exits by itself', key: 'exitedBySelf', cell: exitLabel, json: (system: string) => exits.values(system) },
  ];
  const caption = 'Resolve (ms from the shutdown call), over the deadline (ms), killed as reported, clients cut, process exit';

  const targets: TargetCheck[] = rxSystems.flatMap((system) => {
    const exit = exitLabel(system);
    return [
      check(`D: ${system} resolves within 3 ms of the deadline`, over.summary(system), (late) => [
        `${formatSummary(late, 1)} ms after it`,
        Math.abs(late.median) <= 3,
      ]),
      check(`D: ${system} reports killed = 10`, killed.summary(system), (count) => [
        formatSummary(count),
        count.min === requests && count.max === requests,
      ]),
      { target: `D: ${system} process exits by itself`, measured: exit, met: exit === '—' ? null : exit === 'yes' },
    ];
  });
  const spec = resolveChart(bench.systems, resolve, {
    title: `D. ${requests} requests never answered, timeout ${timeoutMs} ms`,
    subtitle: 'time to resolve, ms; red rule: the deadline',
    width: 420,
    fields: (system, summary) => ({
      label: `${summary.median.toFixed(0)} ms · killed: ${reportedLabel(system)} · exits by itself: ${exitLabel(system)}`,
    }),
    x: { title: 'resolve, ms', scale: { domainMin: 0 } },
    label: { field: 'label', type: 'nominal' },
    last: [
      {
        data: { values: [{ deadline: timeoutMs }] },
        mark: { type: 'rule', color: '#e45756', strokeDash: [4, 3] },
        encoding: { x: { field: 'deadline', type: 'quantitative' } },
      },
    ],
  });

  return {
    title: 'D. Shutdown with requests that never finish',
    method:
      `${requests} connections each send one request the handler never answers. The server process calls the system’s shutdown when the ${requests}th request reaches the handler (timeout ${timeoutMs} ms) ` +
      `and reports the resolve time and any killed count the system gives. Then it closes its IPC channel and does nothing else: “exits” says whether the process ended by itself within ${exitWindowMs / 1000} s ` +
      '(the harness never calls `process.exit` in this scenario). “cut” is how many of the clients saw their connection closed without an answer.',
    tables: [systemsTable(caption, bench.systems, columns, { scenario: 'D' })],
    charts: [
      { file: path.join(__dirname, '..', 'd-hung.svg'), title: 'D: time to resolve with requests that never finish', spec },
    ],
    targets,
  };
}
