import { formatSummary } from '../../harness/markdown';
import type { Bench, Figures, Series } from '../context';
import {
  check,
  column,
  ratioColumn,
  ratioTarget,
  rxSystems,
  systemsTable,
  type ScenarioReport,
  type TargetCheck,
} from './scenario';

/** B. Idle keep-alive connections, then a shutdown with a 10 s timeout: time to resolve. */
export async function idleConnections(bench: Bench): Promise<ScenarioReport> {
  const sizes: { size: number; label: string; resolve: Series }[] = [];
  for (const size of [100, 1_000, 10_000]) {
    const label = size.toLocaleString('en-US');
    if (bench.tooManyFiles(`B ${label}`, size) === null)
      sizes.push({ size, label, resolve: (await idleTrials(bench, size)).get('resolveMs') });
  }

  const columns = sizes.flatMap(({ size, label, resolve }) => [
    column(`${label} idle, ms`, `resolveMs${size}`, resolve, 1),
    ratioColumn('× bare', `vsBare${size}`, resolve),
  ]);
  const caption = 'Time from the shutdown call to its resolution (ms), by number of idle connections';

  const targets: TargetCheck[] = sizes.flatMap(({ size, label, resolve }) => {
    const peers = bench.systems.filter((system) => !system.startsWith('rx-graceful'));
    const fastest = peers
      .map((system) => ({ system, median: resolve.summary(system)?.median ?? Infinity }))
      .reduce((best, peer) => (peer.median < best.median ? peer : best), { system: 'no peer', median: Infinity });
    const checks = rxSystems.map((system) =>
      check(
        `B ${label} idle: ${system} no later than the fastest peer`,
        fastest.median === Infinity ? null : resolve.summary(system),
        (own) => [
          `${formatSummary(own, 1)} ms vs ${fastest.system} ${fastest.median.toFixed(1)} ms`,
          own.median <= fastest.median,
        ],
      ),
    );
    if (size === 10_000) checks.push(ratioTarget('B 10,000 idle: rx-graceful ≤ 0.75 × bare', resolve.ratio('rx-graceful'), 0.75));
    return checks;
  });

  return {
    title: 'B. Shutdown with idle keep-alive connections',
    method:
      `The load processes open N keep-alive connections (${openConcurrency} at a time per process; above 2,000 split over two processes), send one request on each and keep them idle ` +
      `(server keepAliveTimeout ${keepAliveTimeoutMs / 1000} s so none expires during setup). Then the server process calls the system’s shutdown with a ${idleTimeoutMs / 1000} s timeout ` +
      'and times, in its own clock, how long the shutdown takes to report that it has finished.',
    tables: [systemsTable(caption, bench.systems, columns, { scenario: 'B' })],
    charts: [],
    targets,
  };
}

/** Long enough that no idle connection times out while the others are being opened. */
export const keepAliveTimeoutMs = 60_000;
export const idleTimeoutMs = 10_000;
export const openConcurrency = 100;

/** The trials of each size, once per run: B and F share them. */
const cache = new Map<number, Promise<Figures>>();

/**
 * The trials B and F share, once per size and run: open `size` idle keep-alive connections (one
 * request each), measure the server's memory around that, then shut down with a 10 s timeout and
 * time it. Figures: `resolveMs` (B), `heapPerConnection` and `rssPerConnection` (F, at 10,000).
 * B is the cost of closing idle connections, not of the linger (`idleLinger: 0`), whose default is
 * chosen by what pooled clients see (npm run e2e -- --only=fetch).
 */
export function idleTrials(bench: Bench, size: number): Promise<Figures> {
  const cached = cache.get(size);
  if (cached !== undefined) return cached;
  const shape = { handler: { kind: 'trivial' }, trigger: { kind: 'call' }, options: { idleLinger: 0 } } as const;
  const config = { ...shape, timeoutMs: idleTimeoutMs, keepAliveTimeoutMs };
  const label = `B/F ${size.toLocaleString('en-US')} idle`;
  const trials = bench.trials(label, config, async ({ child, port }) => {
    const before = await child.call('memory', {}, 10_000);
    const parts = bench.spread(size);
    try {
      const idle = ({ load, count }: (typeof parts)[number]) =>
        load.call('idle', { port, count, concurrency: openConcurrency }, 60_000);
      const open = (await Promise.all(parts.map(idle))).reduce((sum, part) => sum + part.opened, 0);
      if (open !== size) throw new Error(`opened ${open} of ${size} connections`);
      const after = await child.call('memory', {}, 10_000);
      if (!(await child.call('shutdown', {}, 5_000))) throw new Error('the server did not start a shutdown');
      const done = await child.next('done', idleTimeoutMs + 5_000);
      const heapPerConnection = (after.heapUsed - before.heapUsed) / open;
      const perConnection = { heapPerConnection, rssPerConnection: (after.rss - before.rss) / open };
      return { resolveMs: done.durationMs, ...perConnection, size, before, after, killed: done.killed };
    } finally {
      await Promise.all(parts.map(({ load }) => load.call('release', {}, 10_000)));
    }
  });
  cache.set(size, trials);
  return trials;
}
