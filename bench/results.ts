import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_IDLE_LINGER } from '../src';
import { markdownTable } from '../harness/markdown';
import type { ScenarioReport } from './scenarios/scenario';
import type { Bench } from './context';
import { agedMajorCollections } from './settings';

/** A short digest of every file under src/, to tell which version of the library was measured. */
export function librarySourceDigest(): string {
  const root = path.join(__dirname, '..', 'src');
  const hash = createHash('sha256');
  const files = fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
  for (const file of files.sort()) hash.update(`${file}\0${fs.readFileSync(path.join(root, file), 'utf8')}\0`);
  return hash.digest('hex').slice(0, 12);
}

/** The targets table alone, also printed at the end of the run. */
export function targetsTable(reports: readonly ScenarioReport[]): string {
  const label = (met: boolean | null): string => (met === null ? 'not measured' : met ? 'met' : '**missed**');
  const rows = reports.flatMap((report) => report.targets.map((check) => [check.target, check.measured, label(check.met)]));
  return markdownTable(['target (issues 4 and 12)', 'rx-graceful, this run', ''], rows);
}

/** Writes RESULTS.md (or `--results`): the run's circumstances, every table, the targets, the charts beside it. */
export function writeResults(
  bench: Bench,
  run: { startedAt: Date; atStart: string; atEnd: string },
  reports: readonly ScenarioReport[],
): void {
  const cpu = os.cpus();
  const { settings, cpus } = bench;
  const file = settings.resultsPath;
  const pinned = cpus ? `servers on CPU ${cpus.server}, load processes on CPU ${cpus.load} (taskset)` : 'no';
  const rxOptions = [
    Object.keys(settings.rxOptions).length > 0 ? JSON.stringify(settings.rxOptions) : 'defaults',
    ...('idleLinger' in settings.rxOptions ? [] : [`(idleLinger default ${DEFAULT_IDLE_LINGER} ms)`]),
  ].join(' ');
  const changed = `, **changed during the run** (now ${run.atEnd}): rx-graceful figures mix versions`;
  const lines: string[] = [
    '# rx-graceful benchmark results',
    '',
    `Written by \`${settings.command}\`; do not edit by hand. How to read it: [README.md](README.md).`,
    '',
    `- Date: ${run.startedAt.toISOString()}`,
    `- Node: ${process.version} on ${os.platform()} ${os.release()} (${os.arch()})`,
    `- Cores: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}; open-file limit ${bench.fileLimit}`,
    `- Command: \`${settings.command}\``,
    `- Mode: ${settings.quick ? 'quick' : 'full'}, ${settings.rounds} round${settings.rounds === 1 ? '' : 's'} per scenario, systems interleaved (forward, backward, rotated)`,
    `- Systems: ${settings.systems.join(', ')}`,
    `- Protocols of C and E: ${settings.protocols.join(', ')} (a peer only over those it claims; the others over http)`,
    `- rx-graceful options: ${rxOptions}`,
    `- Pinned: ${pinned}`,
    ...(settings.serverNodeFlags.length > 0 ? [`- Server processes run with: \`${settings.serverNodeFlags.join(' ')}\``] : []),
    ...(settings.aged
      ? [`- Aged (\`--aged\`): B, F and G's servers let ${agedMajorCollections} major collections come before their shutdown`]
      : []),
    `- rx-graceful source (sha-256 of src/**/*.ts): ${run.atStart}${run.atEnd === run.atStart ? '' : changed}`,
    `- Took: ${(bench.elapsedMs() / 1000).toFixed(0)} s`,
    '',
    'Figures are medians over rounds with the range in parentheses; “× bare” is the ratio to bare Node measured in the same round, then its median and range. ' +
      'The machine is shared and its speed drifts: compare figures within one run only.',
    '',
  ];
  if (bench.notes.length > 0) lines.push('Left out:', '', ...bench.notes.map((note) => `- ${note}`), '');
  lines.push('## Against the targets', '', targetsTable(reports), '');
  for (const report of reports) {
    lines.push(`## ${report.title}`, '', report.method, '');
    for (const table of report.tables) lines.push(`${table.caption}:`, '', table.markdown, '');
    for (const chart of report.charts)
      lines.push(`![${chart.title}](${path.relative(path.dirname(file), chart.file).split(path.sep).join('/')})`, '');
  }
  fs.writeFileSync(file, lines.join('\n'));
}
