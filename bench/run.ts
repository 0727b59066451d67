/**
 * The benchmark orchestrator: `npm run bench [-- --quick]`. Starts two load processes for the
 * whole run and one server process per trial (the harness's), runs scenarios A–G with the systems
 * interleaved, prints each scenario's tables and JSON lines on stdout (progress on stderr), and
 * writes bench/RESULTS.md with its charts.
 */
import path from 'node:path';
import { runMain } from '../harness/cli';
import { writeChart } from './charts';
import { Bench } from './context';
import { librarySourceDigest, targetsTable, writeResults } from './results';
import { costPerRequest } from './scenarios/a-cost';
import { idleConnections } from './scenarios/b-idle';
import { inFlight } from './scenarios/c-inflight';
import { neverAnswered } from './scenarios/d-hung';
import { underLoad } from './scenarios/e-load';
import { memoryPerConnection } from './scenarios/f-memory';
import { scale } from './scenarios/g-scale';
import type { ScenarioReport } from './scenarios/scenario';
import { parseSettings, usage } from './settings';

/** Scenarios A–G, in the order they run. */
const scenarios = {
  A: costPerRequest,
  B: idleConnections,
  C: inFlight,
  D: neverAnswered,
  E: underLoad,
  F: memoryPerConnection,
  G: scale,
};

function print(report: ScenarioReport): void {
  const out: string[] = [`## ${report.title}`, ''];
  for (const table of report.tables) out.push(`${table.caption}:`, '', table.markdown, '');
  for (const summary of report.tables.flatMap((table) => table.summaries)) out.push(JSON.stringify(summary));
  process.stdout.write(`${out.join('\n')}\n\n`);
}

async function main(): Promise<number> {
  const settings = parseSettings(process.argv.slice(2));
  if (settings === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  const startedAt = new Date();
  const atStart = librarySourceDigest();
  const bench = await Bench.create(settings);
  if (bench.cpus) bench.progress(`servers pinned to CPU ${bench.cpus.server}, load processes to CPU ${bench.cpus.load}`);
  const reports: ScenarioReport[] = [];
  try {
    for (const id of settings.scenarios) {
      const report = await scenarios[id](bench);
      print(report);
      reports.push(report);
    }
  } finally {
    await bench.close();
  }

  // Charts go beside the results file, so that a run with --results=elsewhere leaves the
  // committed bench/RESULTS.md and its charts as they are.
  for (const chart of reports.flatMap((report) => report.charts)) {
    chart.file = path.join(path.dirname(settings.resultsPath), path.basename(chart.file));
    await writeChart(chart.file, chart.spec);
  }
  writeResults(bench, { startedAt, atStart, atEnd: librarySourceDigest() }, reports);
  process.stdout.write(`## Against the targets\n\n${targetsTable(reports)}\n`);
  bench.progress(
    `done in ${(bench.elapsedMs() / 1000).toFixed(0)} s; wrote ${path.relative(process.cwd(), settings.resultsPath)}`,
  );
  return 0;
}

runMain(main, usage);
