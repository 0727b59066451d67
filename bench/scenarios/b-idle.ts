import { formatSummary } from '../../harness/markdown';
import type { Bench, Figures, Series } from '../context';
import { agedMajorCollections } from '../settings';
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
  const sizes: { size: number; label: string; resolve: Series; settled: Series }[] = [];
  for (const size of [100, 1_000, 10_000]) {
    const label = size.toLocaleString('en-US');
    if (bench.tooManyFiles(`B ${label}`, size) === null) {
      const figures = await idleTrials(bench, size);
      sizes.push({ size, label, resolve: figures.get('resolveMs'), settled: figures.get('settledMs') });
    }
  }

  const columns = sizes.flatMap(({ size, label, resolve }) => [
    column(`${label} idle, ms`, `resolveMs${size}`, resolve, 1),
    ratioColumn('× bare', `vsBare${size}`, resolve),
  ]);
  const caption = 'Time from the shutdown call to its resolution (ms), by number of idle connections';
  const settledColumns = sizes.flatMap(({ size, label, settled }) => [
    column(`${label} idle, ms`, `settledMs${size}`, settled, 1),
    ratioColumn('× bare', `settledVsBare${size}`, settled),
  ]);
  const settledCaption =
    'Time from the shutdown call until the loop has run the close callbacks of the closed sockets (ms; no target): the same trials';

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
    if (size === 10_000) checks.push(ratioTarget('B 10,000 idle: rx-graceful ≤ 1.05 × bare', resolve.ratio('rx-graceful'), 1.05));
    return checks;
  });

  return {
    title: 'B. Shutdown with idle keep-alive connections',
    method:
      `The load processes open N keep-alive connections (${openConcurrency} at a time per process; above 2,000 split over two processes), send one request on each and keep them idle ` +
      `(server keepAliveTimeout ${keepAliveTimeoutMs / 1000} s so none expires during setup). The server measures its memory (F: three \`gc()\`, then a 300 ms pause, so that V8’s concurrent sweeping after them does not run into the timed shutdown on the server’s one core). Then the server process calls the system’s shutdown with a ${idleTimeoutMs / 1000} s timeout ` +
      'and times, in its own clock, how long the shutdown takes to report that it has finished. ' +
      'The second table times the same shutdowns to the second check phase after that report, by which the loop has run the close callbacks (the `close` events) of the sockets closed before it: Node’s `server.close()` reports before it runs those of the sockets it destroyed, a drain in slices runs those of its earlier slices before it reports. It judges no target. ' +
      'rx-graceful’s systems run with `idleLinger: 0` (any `--rx-*` flag applies on top): B is the cost of closing idle connections; the default linger is judged by what pooled clients see (npm run e2e -- --only=fetch). ' +
      (bench.settings.aged
        ? `Aged (\`--aged\`): before its shutdown each server allocates until ${agedMajorCollections} major collections have come by themselves, as in a process that has served for a while; V8 has then dropped the compiled code of every function that did not run since (rx-graceful keeps its shutdown path compiled while it serves). The first shutdown of a process, JIT compilation included, is what a deploy pays.`
        : 'Each server process is fresh: the first shutdown of a process, JIT compilation included, is what a deploy pays (with the code its start-up compiled; `--aged` runs the servers as processes that have served for a while).'),
    tables: [
      systemsTable(caption, bench.systems, columns, { scenario: 'B' }),
      systemsTable(settledCaption, bench.systems, settledColumns, { scenario: 'B', measure: 'settled' }),
    ],
    charts: [],
    targets,
  };
}

/** Long enough that no idle connection times out while the others are being opened. */
export const keepAliveTimeoutMs = 120_000;
export const idleTimeoutMs = 10_000;
export const openConcurrency = 100;

/** The trials of each size and set of systems, once per run: B, F and G share them. */
const cache = new Map<string, Promise<Figures>>();

/**
 * The trials B, F and G share, once per size and run: open `size` idle keep-alive connections (one
 * request each), measure the server's memory around that, then shut down with a 10 s timeout and
 * time it. Figures: `resolveMs` (B), `settledMs` (the same, to when the loop has run the closed
 * sockets' close callbacks), `heapPerConnection` and `rssPerConnection` (F, at 10,000),
 * `longestLoopGapMs` (G: the longest the server's event loop was held at once during the shutdown),
 * `loopHoldWithoutGcMs` (the same, less the GC pauses inside each gap), `loopHoldWaitMs` (how long of
 * that gap the server's main thread waited for its core) and `gcMs` (the GC pauses).
 * B is the cost of closing idle connections, not of the linger (`idleLinger: 0`), whose default is
 * chosen by what pooled clients see (npm run e2e -- --only=fetch). `systems`: only these (G); the
 * trials of every system, once run, serve any of them.
 */
export function idleTrials(bench: Bench, size: number, systems: readonly string[] = bench.systems): Promise<Figures> {
  const key = (of: readonly string[]): string => `${size} ${of.join(',')}`;
  const cached = cache.get(key(bench.systems)) ?? cache.get(key(systems));
  if (cached !== undefined) return cached;
  const shape = { handler: { kind: 'trivial' }, trigger: { kind: 'call' }, options: { idleLinger: 0 } } as const;
  const config = { ...shape, timeoutMs: idleTimeoutMs, keepAliveTimeoutMs };
  const label = `${systems === bench.systems ? 'B/F' : 'G'} ${size.toLocaleString('en-US')} idle`;
  const trials = bench.trials(
    label,
    config,
    async ({ child, port }) => {
      const before = await child.call('memory', {}, 10_000);
      const parts = bench.spread(size);
      try {
        const idle = ({ load, count }: (typeof parts)[number]) =>
          load.call('idle', { port, count, concurrency: openConcurrency }, 60_000 + 3 * count);
        const open = (await Promise.all(parts.map(idle))).reduce((sum, part) => sum + part.opened, 0);
        if (open !== size) throw new Error(`opened ${open} of ${size} connections`);
        const after = await child.call('memory', {}, 10_000);
        if (bench.settings.aged) await child.call('age', { majors: agedMajorCollections }, 70_000);
        if (!(await child.call('shutdown', {}, 5_000))) throw new Error('the server did not start a shutdown');
        const done = await child.next('done', idleTimeoutMs + 5_000);
        const heapPerConnection = (after.heapUsed - before.heapUsed) / open;
        const perConnection = { heapPerConnection, rssPerConnection: (after.rss - before.rss) / open };
        const { longestLoopGapMs, loopHoldWithoutGcMs, gcMs, loopHoldWaitMs } = done;
        const loop = { longestLoopGapMs, loopHoldWithoutGcMs, gcMs, loopHoldWaitMs };
        const times = { resolveMs: done.durationMs, settledMs: done.settledMs };
        return { ...times, ...perConnection, ...loop, size, before, after, killed: done.killed };
      } finally {
        await Promise.all(parts.map(({ load }) => load.call('release', {}, 10_000)));
      }
    },
    systems,
  );
  cache.set(key(systems), trials);
  return trials;
}
