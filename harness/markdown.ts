/** The report writer of bench, stress and e2e: Markdown tables, the numbers in them, and the summaries of rounds. */

/** A Markdown table, cells written as given; columns from `rightFrom` on are right-aligned. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
  rightFrom = header.length,
): string {
  const line = (cells: readonly (string | number)[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, index) => (index < rightFrom ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

/** "ECONNRESET on a reused connection ×2; status 502 ×1", or `none` (default "—") when there is none. */
export function formatReasons(reasons: ReadonlyMap<string, number>, none = '—'): string {
  if (reasons.size === 0) return none;
  return [...reasons]
    .sort((a, b) => b[1] - a[1])
    .map(([reason, count]) => `${reason} ×${count}`)
    .join('; ');
}

/** `value` with `digits` decimals and thousands separators. */
export function formatNumber(value: number, digits: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `median (min–max)`, or just the value when there was one round; `—` when nothing was measured. Ratios: 2 digits. */
export function formatSummary(summary: Summary | null, digits = 0): string {
  if (!summary) return '—';
  const median = formatNumber(summary.median, digits);
  if (summary.n === 1 || summary.min === summary.max) return median;
  return `${median} (${formatNumber(summary.min, digits)}–${formatNumber(summary.max, digits)})`;
}

/** The median, range and count (`n`: the rounds that produced a value) of the values of some rounds. */
export type Summary = { median: number; min: number; max: number; n: number };

/** The summary of the finite values, or null when there is none. */
export function summarize(values: readonly (number | null)[]): Summary | null {
  const present = values.filter((value): value is number => value !== null && Number.isFinite(value)).sort((a, b) => a - b);
  const at = (index: number): number => present[index] as number;
  if (present.length === 0) return null;
  const middle = present.length >> 1;
  const median = present.length % 2 === 1 ? at(middle) : (at(middle - 1) + at(middle)) / 2;
  return { median, min: at(0), max: at(present.length - 1), n: present.length };
}
