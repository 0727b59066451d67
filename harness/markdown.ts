import type { Summary } from './stats';

/** A Markdown table, cells written as given; columns from `rightFrom` on are right-aligned. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
  rightFrom = header.length,
): string {
  const line = (cells: readonly (string | number)[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, index) => (index < rightFrom ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

/** `value` with `digits` decimals and thousands separators. */
export function formatNumber(value: number, digits: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `median (min–max)`, or just the value when there was one round; `—` when nothing was measured. */
export function formatSummary(summary: Summary | null, digits = 0): string {
  if (!summary) return '—';
  const median = formatNumber(summary.median, digits);
  if (summary.n === 1 || summary.min === summary.max) return median;
  return `${median} (${formatNumber(summary.min, digits)}–${formatNumber(summary.max, digits)})`;
}

/** A ratio's summary with two decimals, or `—`. */
export function formatRatio(summary: Summary | null): string {
  return formatSummary(summary, 2);
}
