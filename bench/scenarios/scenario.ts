import type { TopLevelSpec } from 'vega-lite';
import { formatRatio, formatSummary, markdownTable } from '../../harness/markdown';
import type { RoundSeries, Summary } from '../../harness/stats';
import type { BenchContext } from '../context';
import type { ScenarioId } from '../settings';

/** One check of the targets against rx-graceful's figures. */
export interface TargetCheck {
  target: string;
  measured: string;
  /** null when it could not be measured (e.g. rx-graceful did not run). */
  met: boolean | null;
}

/** What a scenario gives run.ts: its tables, JSON lines, charts and target checks. */
export interface ScenarioReport {
  id: ScenarioId;
  title: string;
  /** What was measured and how, one paragraph, for RESULTS.md. */
  method: string;
  tables: { caption: string; markdown: string }[];
  /** One JSON object per summary row: what `run` prints as JSON lines. */
  summaries: Record<string, unknown>[];
  charts: { file: string; title: string; spec: TopLevelSpec }[];
  targets: TargetCheck[];
}

/** One scenario of the benchmark, run over every system. */
export interface Scenario {
  id: ScenarioId;
  title: string;
  run(context: BenchContext): Promise<ScenarioReport>;
}

/** The systems rx-graceful is compared with: every system but its own two. */
export function isPeer(system: string): boolean {
  return !system.startsWith('rx-graceful');
}

/** One column of a scenario's table, and under `key` the same figure in each system's JSON line. */
export interface Column {
  readonly header: string;
  readonly key: string;
  readonly cell: (system: string) => string;
  readonly json: (system: string) => unknown;
}

/** The column of `series`: median (min–max) over rounds with `digits` decimals. */
export function summaryColumn(header: string, key: string, series: RoundSeries, digits = 0): Column {
  return {
    header,
    key,
    cell: (system) => formatSummary(series.summary(system), digits),
    json: (system) => series.summary(system),
  };
}

/** The column of `series`'s per-round ratio to bare. */
export function ratioColumn(header: string, key: string, series: RoundSeries): Column {
  return {
    header,
    key,
    cell: (system) => formatRatio(series.ratio(system, 'bare')),
    json: (system) => series.ratio(system, 'bare'),
  };
}

/** A table with a row per system, and a JSON line per system that begins with `fields` (the scenario, …). */
export function systemsTable(
  systems: readonly string[],
  columns: readonly Column[],
  fields: Record<string, unknown>,
): { markdown: string; summaries: Record<string, unknown>[] } {
  return {
    markdown: markdownTable(
      ['system', ...columns.map((column) => column.header)],
      systems.map((system) => [system, ...columns.map((column) => column.cell(system))]),
    ),
    summaries: systems.map((system) => ({
      ...fields,
      system,
      ...Object.fromEntries(columns.map((column) => [column.key, column.json(system)])),
    })),
  };
}

/** The check of `target`: a ratio to bare whose median is at most `limit`. */
export function ratioTarget(target: string, ratio: Summary | null, limit: number): TargetCheck {
  return { target, measured: ratio ? `${formatRatio(ratio)} × bare` : 'not measured', met: ratio ? ratio.median <= limit : null };
}
