import type { Summary } from './stats';

/** A Markdown table; cells are written as given. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const rule = `|${header.map(() => ' --- ').join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

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

export function formatRatio(summary: Summary | null): string {
  return summary ? formatSummary(summary, 2) : '—';
}
