import type { TopLevelSpec } from 'vega-lite';
import { formatSummary, markdownTable, type Summary } from '../../harness/markdown';
import type { Series } from '../context';

/** One check of the targets against rx-graceful's figures; `met` is null when it could not be measured. */
export type TargetCheck = { target: string; measured: string; met: boolean | null };

/** A table of a scenario: its caption, its Markdown, and one JSON line per row. */
export type Table = { caption: string; markdown: string; summaries: Record<string, unknown>[] };

/** What a scenario gives run.ts: its tables, charts and target checks, and what was measured and how (for RESULTS.md). */
export interface ScenarioReport {
  title: string;
  method: string;
  tables: Table[];
  charts: { file: string; title: string; spec: TopLevelSpec }[];
  targets: TargetCheck[];
}

/** rx-graceful's systems, whose figures the targets judge. */
export const rxSystems = ['rx-graceful', 'rx-graceful-state', 'rx-graceful-prometheus'] as const;

/** One column of a table: its header, its cell per system, and under `key` the same figure in each system's JSON line. */
export type Column = { header: string; key: string; cell: (system: string) => string; json: (system: string) => unknown };

/** The column of `series`: median (min–max) over rounds with `digits` decimals. */
export function column(header: string, key: string, series: Series, digits = 0): Column {
  const summary = (system: string): Summary | null => series.summary(system);
  return { header, key, cell: (system) => formatSummary(summary(system), digits), json: summary };
}

/** The column of `series`'s per-round ratio to bare. */
export function ratioColumn(header: string, key: string, series: Series): Column {
  return { header, key, cell: (system) => formatSummary(series.ratio(system), 2), json: (system) => series.ratio(system) };
}

/** A table with a row per system, and a JSON line per system that begins with `fields` (the scenario, …). */
export function systemsTable(caption: string, systems: readonly string[], columns: readonly Column[], fields: object): Table {
  const markdown = markdownTable(
    ['system', ...columns.map((c) => c.header)],
    systems.map((system) => [system, ...columns.map((c) => c.cell(system))]),
  );
  const json = (system: string): object => Object.fromEntries(columns.map((c) => [c.key, c.json(system)]));
  return { caption, markdown, summaries: systems.map((system) => ({ ...fields, system, ...json(system) })) };
}

/** The check of `target` on `summary`: `judge` says what was measured and whether it met the target; null: 'not measured'. */
export function check(target: string, summary: Summary | null, judge: (s: Summary) => [string, boolean]): TargetCheck {
  if (summary === null) return { target, measured: 'not measured', met: null };
  const [measured, met] = judge(summary);
  return { target, measured, met };
}

/** The check of `target`: a ratio to bare whose median is at most `limit`. */
export function ratioTarget(target: string, ratio: Summary | null, limit: number): TargetCheck {
  return check(target, ratio, (r) => [`${formatSummary(r, 2)} × bare`, r.median <= limit]);
}
