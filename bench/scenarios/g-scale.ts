import fs from 'node:fs';
import type { TopLevelSpec } from 'vega-lite';
import { formatNumber, formatSummary, markdownTable, summarize, type Summary } from '../../harness/markdown';
import { chartConfig } from '../charts';
import type { Bench, Figures } from '../context';
import { idleTrials } from './b-idle';
import { check, type ScenarioReport, type TargetCheck } from './scenario';

/** The sizes of a full run and of a quick one (whose two are B's, so that it runs no trial of its own). */
const fullSizes = [1_000, 5_000, 10_000, 25_000, 50_000];
const quickSizes = [1_000, 10_000];
/** File descriptors a server process needs beyond its connections (stdio, IPC, the listener, node's own). */
const headroom = 200;
/** Ephemeral ports left to everything else on 127.0.0.1 while a trial holds its connections. */
const portsKept = 1_000;
/** The systems side by side; rx-graceful as B runs it (`idleLinger: 0`). */
const compared = ['bare', 'rx-graceful'];

/** How many ephemeral ports connect() may use (Linux), or Infinity where that cannot be read. */
function ephemeralPorts(): number {
  try {
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && high !== undefined && high >= low ? high - low + 1 : Infinity;
  } catch {
    return Infinity;
  }
}

/** The most idle connections one server on 127.0.0.1 can hold here (rounded down to 500), and what bounds it. */
function ceiling(bench: Bench): { most: number; why: string } {
  const byFiles = bench.fileLimit - headroom;
  const ports = ephemeralPorts();
  const most = Math.floor(Math.min(byFiles, ports - portsKept) / 500) * 500;
  const files = `the server process's open-file limit is ${bench.fileLimit} (ulimit -n; no process can raise it above the hard limit, ulimit -Hn, without CAP_SYS_RESOURCE)`;
  const local = `127.0.0.1 has ${ports} ephemeral ports (/proc/sys/net/ipv4/ip_local_port_range), one per connection to one port of one address`;
  return { most, why: byFiles <= ports - portsKept ? `${files}; and ${local}` : `${local}; and ${files}` };
}

/** The per-connection value (`scale` × value / size) of each round. */
function perConnection(figures: Figures, key: string, system: string, size: number, scale: number): Summary | null {
  return summarize(
    figures
      .get(key)
      .values(system)
      .map((value) => (value === null ? null : (scale * value) / size)),
  );
}

/**
 * G. Scale: idle keep-alive connections from 1,000 up to 50,000 (or as many as one server process
 * can hold here), bare Node and rx-graceful side by side: time to drain them per connection, heap
 * per connection, and the longest the server's event loop was held at once during the drain.
 */
export async function scale(bench: Bench): Promise<ScenarioReport> {
  const systems = compared.filter((system) => bench.systems.includes(system));
  const { most, why } = ceiling(bench);
  const asked = bench.settings.quick ? quickSizes : fullSizes;
  const sizes = [...asked.filter((size) => size <= most), ...(asked.some((size) => size > most) ? [most] : [])];
  for (const size of asked.filter((size) => size > most)) {
    const line = `G: ${size.toLocaleString('en-US')} connections skipped: ${why}; the largest size measured is ${most.toLocaleString('en-US')}.`;
    bench.notes.push(line);
    bench.progress(line);
  }
  const measured: { size: number; figures: Figures }[] = [];
  for (const size of [...new Set(sizes)].sort((a, b) => a - b))
    measured.push({ size, figures: await idleTrials(bench, size, systems) });

  const rows = measured.map(({ size, figures }) => {
    const row = (system: string) => ({
      resolveMs: figures.get('resolveMs').summary(system),
      usPerConnection: perConnection(figures, 'resolveMs', system, size, 1000),
      heapPerConnection: figures.get('heapPerConnection').summary(system),
      longestLoopGapMs: figures.get('longestLoopGapMs').summary(system),
      loopHoldWithoutGcMs: figures.get('loopHoldWithoutGcMs').summary(system),
      loopHoldWaitMs: figures.get('loopHoldWaitMs').summary(system),
      gcMs: figures.get('gcMs').summary(system),
    });
    return {
      size,
      bySystem: Object.fromEntries(systems.map((system) => [system, row(system)])),
      resolveVsBare: figures.get('resolveMs').ratio('rx-graceful'),
      heapVsBare: figures.get('heapPerConnection').ratio('rx-graceful'),
    };
  });
  const cell = (
    size: number,
    system: string,
    key:
      | 'resolveMs'
      | 'usPerConnection'
      | 'heapPerConnection'
      | 'longestLoopGapMs'
      | 'loopHoldWithoutGcMs'
      | 'loopHoldWaitMs'
      | 'gcMs',
    digits: number,
  ) => formatSummary(rows.find((row) => row.size === size)?.bySystem[system]?.[key] ?? null, digits);
  const header = [
    'connections',
    ...systems.flatMap((system) => [
      `${system} drain ms`,
      'µs/conn',
      'heap B/conn',
      'longest loop hold ms',
      'less GC ms',
      'of it waiting for the core ms',
      'GC ms',
    ]),
  ];
  const markdown = markdownTable(header, [
    ...rows.map(({ size }) => [
      formatNumber(size, 0),
      ...systems.flatMap((system) => [
        cell(size, system, 'resolveMs', 1),
        cell(size, system, 'usPerConnection', 1),
        cell(size, system, 'heapPerConnection', 0),
        cell(size, system, 'longestLoopGapMs', 1),
        cell(size, system, 'loopHoldWithoutGcMs', 1),
        cell(size, system, 'loopHoldWaitMs', 1),
        cell(size, system, 'gcMs', 1),
      ]),
    ]),
  ]);
  const ratios = markdownTable(
    ['connections', 'rx-graceful drain × bare', 'rx-graceful heap × bare'],
    rows.map(({ size, resolveVsBare, heapVsBare }) => [
      formatNumber(size, 0),
      formatSummary(resolveVsBare, 2),
      formatSummary(heapVsBare, 2),
    ]),
  );
  const summaries = rows.flatMap(({ size, bySystem }) =>
    systems.map((system) => ({ scenario: 'G', size, system, ...bySystem[system] })),
  );

  const smallest = rows[0];
  const largest = rows[rows.length - 1];
  const rx = (row: (typeof rows)[number] | undefined) => row?.bySystem['rx-graceful'];
  const targets: TargetCheck[] = [];
  if (smallest !== undefined && largest !== undefined && largest !== smallest) {
    const first = rx(smallest)?.usPerConnection ?? null;
    targets.push(
      check(
        `G: rx-graceful drain time per connection flat (${formatNumber(largest.size, 0)} ≤ 1.25 × ${formatNumber(smallest.size, 0)})`,
        first === null ? null : (rx(largest)?.usPerConnection ?? null),
        (last) => [
          `${formatNumber(last.median, 1)} vs ${formatNumber(first?.median ?? NaN, 1)} µs/conn`,
          last.median <= 1.25 * (first?.median ?? NaN),
        ],
      ),
    );
    const firstHeap = rx(smallest)?.heapPerConnection ?? null;
    targets.push(
      check(
        `G: rx-graceful heap per connection flat (${formatNumber(largest.size, 0)} ≤ 1.10 × ${formatNumber(smallest.size, 0)})`,
        firstHeap === null ? null : (rx(largest)?.heapPerConnection ?? null),
        (last) => [
          `${formatNumber(last.median, 0)} vs ${formatNumber(firstHeap?.median ?? NaN, 0)} B/conn`,
          last.median <= 1.1 * (firstHeap?.median ?? NaN),
        ],
      ),
    );
  }
  if (largest !== undefined)
    targets.push(
      check(
        `G: rx-graceful's drain holds the event loop ≤ 5 ms at once while draining ${formatNumber(largest.size, 0)} (GC pauses excluded)`,
        rx(largest)?.loopHoldWithoutGcMs ?? null,
        (gap) => [
          `${formatSummary(gap, 1)} ms, of it waiting for the core ${formatSummary(rx(largest)?.loopHoldWaitMs ?? null, 1)} ms; ` +
            `with GC ${formatSummary(rx(largest)?.longestLoopGapMs ?? null, 1)} ms ` +
            `(bare ${formatSummary(largest.bySystem['bare']?.longestLoopGapMs ?? null, 1)} ms)`,
          gap.median <= 5,
        ],
      ),
    );

  return {
    title: 'G. Scale: idle connections from 1,000 up',
    method:
      `The trials of B (same server, same load processes, rx-graceful with \`idleLinger: 0\`), for bare Node and rx-graceful only, at ${asked.map((size) => formatNumber(size, 0)).join(', ')} idle keep-alive connections` +
      `${bench.settings.quick ? ' (quick: the two sizes B measures, no trial of its own)' : ''}; sizes B also measures reuse its trials. ` +
      `Sizes above what one server process can hold here are skipped with a note, and the largest that fits (${formatNumber(most, 0)}: ${why}) is measured instead. ` +
      'Drain: from the shutdown call to its report, per connection in µs. Heap: as F (gc() three times, heapUsed after − before, per connection). ' +
      'Longest loop hold: in the server process, a 1 ms timer notes the longest time between two turns of its event loop from the shutdown call to the report (the last stretch included); bare Node closes every idle socket in one turn, so its hold is its whole drain. On a busy machine it includes time spent waiting for a core. ' +
      '“Less GC”: the longest gap once the garbage collector’s pauses inside it (Node’s `gc` performance entries) are taken out, which is what the drain’s own work held; a heap with tens of thousands of sockets pauses for several ms at a scavenge whether or not a drain runs. “GC ms”: every GC pause from the call to the report, summed. The target judges the hold less GC, and the table gives both. ' +
      '“Waiting for the core”: of that longest gap less GC, the time the server’s main thread was ready to run and waited for its core (Linux’s `/proc/thread-self/schedstat`, read at every turn), while another thread of the process (V8’s compiler or GC helpers, pinned to the same core) or another process ran; it is part of the hold a response in flight would see, and tells it apart from the drain’s own work.',
    tables: [
      {
        caption: 'Drain time, heap per connection and the longest event-loop hold, by number of idle connections',
        markdown,
        summaries,
      },
      { caption: 'rx-graceful to bare Node, per round', markdown: ratios, summaries: [] },
    ],
    charts: [
      {
        file: 'g-scale.svg',
        title: 'Cost per idle connection as the count grows',
        spec: scaleChart(rows.flatMap(({ size, bySystem }) => systems.map((system) => ({ size, system, ...bySystem[system] })))),
      },
    ],
    targets,
  };
}

type Point = { size: number; system: string; usPerConnection?: Summary | null; heapPerConnection?: Summary | null };

/** Two panels side by side, drain µs per connection and heap bytes per connection against the number of connections, a line per system. */
function scaleChart(points: readonly Point[]): TopLevelSpec {
  const panel = (key: 'usPerConnection' | 'heapPerConnection', title: string) => ({
    width: 300,
    height: 200,
    data: {
      values: points.flatMap((point) => {
        const summary = point[key];
        return summary
          ? [{ connections: point.size, system: point.system, median: summary.median, min: summary.min, max: summary.max }]
          : [];
      }),
    },
    encoding: {
      x: { field: 'connections', type: 'quantitative', scale: { type: 'log' }, title: 'idle connections' },
      color: { field: 'system', type: 'nominal', title: null },
    },
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: { y: { field: 'median', type: 'quantitative', title, scale: { zero: true } } },
      },
      { mark: { type: 'rule' }, encoding: { y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {
      text: 'G. Cost per idle connection as the count grows',
      subtitle: 'median of the rounds, with their range; flat is the goal',
    },
    hconcat: [
      panel('usPerConnection', 'drain time per connection (µs)'),
      panel('heapPerConnection', 'heap per connection (bytes)'),
    ],
    config: chartConfig,
  } as TopLevelSpec;
}
