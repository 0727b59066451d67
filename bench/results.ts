import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { markdownTable } from '../harness/markdown';
import type { ScenarioReport } from './scenarios/scenario';
import type { Settings } from './settings';

export interface RunInfo {
  settings: Settings;
  systems: string[];
  notes: string[];
  startedAt: Date;
  durationMs: number;
  fileLimit: number;
  /** How the processes were placed on cores. */
  pinned: string;
  /** `librarySourceDigest()` when the run began and when it ended. */
  sourceDigest: { atStart: string | null; atEnd: string | null };
}

/** A short digest of every file under src/, to tell which version of the library was measured. */
export function librarySourceDigest(): string | null {
  const root = path.join(__dirname, '..', 'src');
  if (!fs.existsSync(root)) return null;
  const hash = createHash('sha256');
  const files = (fs.readdirSync(root, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((file) => file.endsWith('.ts'))
    .sort();
  for (const file of files)
    hash
      .update(file)
      .update('\0')
      .update(fs.readFileSync(path.join(root, file)))
      .update('\0');
  return hash.digest('hex').slice(0, 12);
}

/** The library's default idle linger, when the library is there to ask. */
function defaultIdleLinger(): number | null {
  try {
    const library = require('../src') as { DEFAULT_IDLE_LINGER?: unknown };
    return typeof library.DEFAULT_IDLE_LINGER === 'number' ? library.DEFAULT_IDLE_LINGER : null;
  } catch {
    return null;
  }
}

function metLabel(met: boolean | null): string {
  if (met === null) return 'not measured';
  return met ? 'met' : '**missed**';
}

/** The targets table alone, also printed at the end of the run. */
export function targetsTable(reports: readonly ScenarioReport[]): string {
  const rows = reports.flatMap((report) => report.targets.map((check) => [check.target, check.measured, metLabel(check.met)]));
  return markdownTable(['target (issue 4)', 'rx-graceful, this run', ''], rows);
}

export function resultsMarkdown(info: RunInfo, reports: readonly ScenarioReport[], resultsDir: string): string {
  const cpu = os.cpus();
  const { settings } = info;
  const linger = 'idleLinger' in settings.rxOptions ? null : defaultIdleLinger();
  const rxOptions = [
    Object.keys(settings.rxOptions).length > 0 ? JSON.stringify(settings.rxOptions) : 'defaults',
    ...(linger === null ? [] : [`(idleLinger default ${linger} ms)`]),
  ].join(' ');
  const lines: string[] = [
    '# rx-graceful benchmark results',
    '',
    `Written by \`${settings.command}\`; do not edit by hand. How to read it: [README.md](README.md).`,
    '',
    `- Date: ${info.startedAt.toISOString()}`,
    `- Node: ${process.version} on ${os.platform()} ${os.release()} (${os.arch()})`,
    `- Cores: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}; open-file limit ${info.fileLimit}`,
    `- Command: \`${settings.command}\``,
    `- Mode: ${settings.quick ? 'quick' : 'full'}, ${settings.rounds} round${settings.rounds === 1 ? '' : 's'} per scenario, systems interleaved (forward, backward, rotated)`,
    `- Systems: ${info.systems.join(', ')}`,
    `- rx-graceful options: ${rxOptions}`,
    `- Pinned: ${info.pinned}`,
    `- rx-graceful source (sha-256 of src/**/*.ts): ${info.sourceDigest.atStart ?? 'absent'}` +
      (info.sourceDigest.atEnd === info.sourceDigest.atStart
        ? ''
        : `, **changed during the run** (now ${info.sourceDigest.atEnd ?? 'absent'}): rx-graceful figures mix versions`),
    `- Took: ${(info.durationMs / 1000).toFixed(0)} s`,
    '',
    'Figures are medians over rounds with the range in parentheses; “× bare” is the ratio to bare Node measured in the same round, then its median and range. ' +
      'The machine is shared and its speed drifts: compare figures within one run only.',
    '',
  ];
  if (info.notes.length > 0) lines.push('Left out:', '', ...info.notes.map((note) => `- ${note}`), '');
  lines.push('## Against the targets', '', targetsTable(reports), '');
  for (const report of reports) {
    lines.push(`## ${report.title}`, '', report.method, '');
    for (const table of report.tables) lines.push(`${table.caption}:`, '', table.markdown, '');
    for (const chart of report.charts) {
      lines.push(`![${chart.title}](${path.relative(resultsDir, chart.file).split(path.sep).join('/')})`, '');
    }
  }
  return lines.join('\n');
}

export function writeResults(file: string, info: RunInfo, reports: readonly ScenarioReport[]): void {
  fs.writeFileSync(file, resultsMarkdown(info, reports, path.dirname(file)));
}
