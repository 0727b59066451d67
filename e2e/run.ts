/**
 * `npm run e2e`: the end-to-end proof that a rollout loses no request. Runs each scenario idle and
 * saturated, prints a table per scenario and mode, one check per scenario × mode, and ends with
 * `e2e: N passed, N failed`; exits 1 if any target was missed.
 *
 *   npm run e2e                          # full: 5 trials (cluster: 3 restarts) per mode
 *   npm run e2e -- --short               # CI: 1 trial (1 restart) per mode, about 1–3 minutes
 *   npm run e2e -- --only=fetch,cluster --trials=2 --drain-delay=250
 */
import { existsSync } from 'node:fs';
import { killLeftovers, start } from '../harness/child';
import { errorMessage, parseFlags, runMain, wholeNumber } from '../harness/cli';
import { clusterScenario } from './cluster';
import { fetchScenario } from './fetch';
import { h2loadScenario } from './h2load';
import { haproxyScenario } from './haproxy';
import { busyLoopsFor, modes, type Mode, type Scenario, type ScenarioReport, type Settings } from './scenario';

const scenarios: readonly Scenario[] = [haproxyScenario, clusterScenario, fetchScenario, h2loadScenario];

const usage = `usage: npm run e2e -- [--short] [--only=${scenarios.map((s) => s.name).join(',')}] [--drain-delay=MS] [--trials=N] [--mode=idle|saturated]`;

/** Runs `scenario` in `mode`; saturated: one busy loop per core spinning beside it, killed by pid after it. */
async function runOne(scenario: Scenario, mode: Mode, settings: Settings): Promise<ScenarioReport> {
  const spin = { args: ['-e', 'for(;;){}'] };
  const loops = Array.from({ length: busyLoopsFor(mode) }, (_, i) => start(`busy loop ${i + 1}`, process.execPath, spin));
  let report: ScenarioReport;
  try {
    report = await scenario.run(mode, settings);
  } catch (error) {
    report = { table: '', notes: [], misses: [`the scenario broke: ${errorMessage(error)}`] };
  } finally {
    await Promise.all(loops.map((loop) => loop.kill()));
  }
  const leftovers = await killLeftovers();
  return { ...report, misses: [...report.misses, ...leftovers.map((left) => `left running, killed by the e2e: ${left}`)] };
}

async function main(): Promise<number> {
  const names = { short: 'boolean', trials: 'string', 'drain-delay': 'string', mode: 'string', only: 'string' } as const;
  const flags = parseFlags(process.argv.slice(2), names);
  const settings: Settings = {
    short: flags['short'] === true,
    trials: wholeNumber('trials', flags['trials'], 1, 100),
    drainDelay: wholeNumber('drain-delay', flags['drain-delay'], 0, 60_000),
  };
  const runModes = modes.filter((mode) => flags['mode'] === undefined || flags['mode'] === mode);
  if (runModes.length === 0)
    throw new TypeError(`--mode must be one of ${modes.join(', ')}, got ${JSON.stringify(flags['mode'])}`);
  const only = typeof flags['only'] === 'string' ? flags['only'].split(',').filter(Boolean) : [];
  for (const name of only)
    if (!scenarios.some((scenario) => scenario.name === name)) throw new TypeError(`--only: no scenario "${name}"`);

  const runStarted = Date.now();
  let passed = 0;
  let failed = 0;
  console.log(`# rx-graceful e2e (${settings.short ? 'short' : 'full'}; Node ${process.version})`);
  for (const scenario of scenarios.filter(({ name }) => only.length === 0 || only.includes(name))) {
    if (scenario.needs !== undefined && !existsSync(scenario.needs.file)) {
      console.log(`\nskip: ${scenario.name} not installed (${scenario.needs.install})`);
      continue;
    }
    for (const mode of runModes) {
      const started = Date.now();
      const report = await runOne(scenario, mode, settings);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const busy = mode === 'saturated' ? ` (${busyLoopsFor(mode)} busy loops)` : '';
      console.log(`\n## ${scenario.name} · ${mode}${busy} · ${seconds} s\n`);
      if (report.table !== '') console.log(report.table);
      for (const note of report.notes) console.log(`\n${note}`);
      if (report.misses.length === 0) passed++;
      else failed++;
      console.log(`\ncheck ${scenario.name}/${mode}: ${report.misses.length === 0 ? 'passed' : 'FAILED'}`);
      for (const miss of report.misses) console.log(`  - ${miss.replace(/\n/g, '\n    ')}`);
    }
  }
  console.log(`\ntotal ${((Date.now() - runStarted) / 1000).toFixed(1)} s`);
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

runMain(main, usage);
