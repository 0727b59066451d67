/**
 * The benchmark orchestrator: `npm run bench [-- --quick]`. Starts two load processes for the
 * whole run and one server process per trial, runs scenarios A–F with the systems
 * interleaved, prints each scenario's table and JSON lines on stdout (progress on stderr),
 * and writes bench/RESULTS.md with its charts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeChart } from './charts';
import { BenchContext } from './context';
import { librarySourceDigest, targetsTable, writeResults } from './results';
import { scenario as a } from './scenarios/a-cost';
import { scenario as b } from './scenarios/b-idle';
import { scenario as c } from './scenarios/c-inflight';
import { scenario as d } from './scenarios/d-hung';
import { scenario as e } from './scenarios/e-load';
import { scenario as f } from './scenarios/f-memory';
import type { Scenario, ScenarioReport } from './scenarios/scenario';
import { parseSettings, usage, type ScenarioId } from './settings';

const scenarios: Record<ScenarioId, Scenario> = { A: a, B: b, C: c, D: d, E: e, F: f };

function print(report: ScenarioReport): void {
  const out: string[] = [`## ${report.title}`, ''];
  for (const table of report.tables) out.push(`${table.caption}:`, '', table.markdown, '');
  for (const summary of report.summaries) out.push(JSON.stringify(summary));
  process.stdout.write(`${out.join('\n')}\n\n`);
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  if (settings === 'help') {
    process.stdout.write(usage);
    return;
  }
  const startedAt = new Date();
  const digestAtStart = librarySourceDigest();
  const outDir = path.join(__dirname, 'out');
  fs.mkdirSync(outDir, { recursive: true });

  const context = await BenchContext.create(settings, path.join(outDir, 'trials.jsonl'));
  if (context.cpus) context.progress(`servers pinned to CPU ${context.cpus.server}, load processes to CPU ${context.cpus.load}`);
  const reports: ScenarioReport[] = [];
  process.once('SIGINT', () => {
    context.abort();
    process.exit(130);
  });
  try {
    for (const id of settings.scenarios) {
      const report = await scenarios[id].run(context);
      print(report);
      reports.push(report);
    }
  } finally {
    await context.close();
  }

  // Charts go beside the results file, so that a run with --results=elsewhere leaves the
  // committed bench/RESULTS.md and its charts as they are.
  const chartDir = path.dirname(settings.resultsPath);
  for (const report of reports) {
    for (const chart of report.charts) {
      chart.file = path.join(chartDir, path.basename(chart.file));
      await writeChart(chart.file, chart.spec);
    }
  }
  const info = {
    settings,
    systems: context.systems,
    notes: context.notes,
    startedAt,
    durationMs: context.elapsedMs(),
    fileLimit: context.fileLimit,
    sourceDigest: { atStart: digestAtStart, atEnd: librarySourceDigest() },
    pinned: context.cpus ? `servers on CPU ${context.cpus.server}, load processes on CPU ${context.cpus.load} (taskset)` : 'no',
  };
  writeResults(settings.resultsPath, info, reports);
  process.stdout.write(`## Against the targets\n\n${targetsTable(reports)}\n`);
  context.progress(
    `done in ${(info.durationMs / 1000).toFixed(0)} s; wrote ${path.relative(process.cwd(), settings.resultsPath)}`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
