/**
 * `npm run e2e`: the end-to-end proof that a rollout loses no request. Runs each scenario idle and
 * saturated, prints a table per scenario and mode, one check per scenario × mode, and ends with
 * `e2e: N passed, N failed`; exits 1 if any target was missed.
 *
 *   npm run e2e                          # full: 5 trials (cluster: 3 restarts) per mode
 *   npm run e2e -- --short               # CI: 1 trial (1 restart) per mode, about 3 minutes
 *   npm run e2e -- --only=fetch,cluster --trials=2 --drain-delay=250
 */
import { existsSync } from 'node:fs';
import { busyLoopsFor, modes, withBusyLoops } from '../harness/busy-loops';
import { clusterScenario } from './cluster';
import { fetchScenario } from './fetch';
import { h2loadScenario } from './h2load';
import { haproxyScenario } from './haproxy';
import { killLeftovers } from '../harness/child';
import { errorMessage, type ScenarioReport } from './report';
import type { Scenario, Settings } from './scenario';

const scenarios: readonly Scenario[] = [haproxyScenario, clusterScenario, fetchScenario, h2loadScenario];

const usage = `usage: npm run e2e -- [--short] [--only=${scenarios.map((s) => s.name).join('|')}]... [--drain-delay=MS] [--trials=N] [--mode=idle|saturated]`;

function parseFlags(argv: readonly string[]): {
  settings: Settings;
  only: Set<string>;
  runModes: ReadonlyArray<(typeof modes)[number]>;
} {
  const only = new Set<string>();
  let runModes: ReadonlyArray<(typeof modes)[number]> = modes;
  let short = false;
  let trials: number | undefined;
  let drainDelay: number | undefined;
  const count = (flag: string, value: string, min: number, max: number): number => {
    const parsed = Number(value);
    if (value === '' || !Number.isInteger(parsed) || parsed < min || parsed > max)
      throw new Error(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
    return parsed;
  };
  for (const arg of argv) {
    const [flag = '', value = ''] = arg.split(/=(.*)/s);
    if (arg === '--short') short = true;
    else if (flag === '--trials') trials = count(flag, value, 1, 100);
    else if (flag === '--drain-delay') drainDelay = count(flag, value, 0, 60_000);
    else if (flag === '--mode') {
      const mode = modes.find((m) => m === value);
      if (mode === undefined) throw new Error(`--mode must be one of ${modes.join(', ')}, got "${value}"`);
      runModes = [mode];
    } else if (flag === '--only') {
      for (const name of value.split(',').filter(Boolean)) {
        if (!scenarios.some((scenario) => scenario.name === name)) throw new Error(`--only: no scenario "${name}"`);
        only.add(name);
      }
    } else throw new Error(`unknown argument "${arg}"`);
  }
  return { settings: { short, trials, drainDelay }, only, runModes };
}

async function runOne(scenario: Scenario, mode: (typeof modes)[number], settings: Settings): Promise<ScenarioReport> {
  let report: ScenarioReport;
  try {
    report = await withBusyLoops(busyLoopsFor(mode), () => scenario.run(mode, settings));
  } catch (error) {
    report = { table: '', notes: [], misses: [`the scenario broke: ${errorMessage(error)}`] };
  }
  const leftovers = await killLeftovers();
  if (leftovers.length === 0) return report;
  return { ...report, misses: [...report.misses, ...leftovers.map((left) => `left running, killed by the e2e: ${left}`)] };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(process.argv.slice(2));
  } catch (error) {
    console.error(`e2e: ${errorMessage(error)}\n${usage}`);
    return 2;
  }
  const { settings, only, runModes } = parsed;
  const runStarted = Date.now();
  let passed = 0;
  let failed = 0;
  console.log(`# rx-graceful e2e (${settings.short ? 'short' : 'full'}; Node ${process.version})`);
  for (const scenario of scenarios) {
    if (only.size > 0 && !only.has(scenario.name)) continue;
    if (scenario.needs !== undefined && !existsSync(scenario.needs.file)) {
      console.log(`\nskip: ${scenario.name} not installed (${scenario.needs.install})`);
      continue;
    }
    for (const mode of runModes) {
      const started = Date.now();
      const report = await runOne(scenario, mode, settings);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(
        `\n## ${scenario.name} · ${mode}${mode === 'saturated' ? ` (${busyLoopsFor(mode)} busy loops)` : ''} · ${seconds} s\n`,
      );
      if (report.table !== '') console.log(report.table);
      for (const note of report.notes) console.log(`\n${note}`);
      if (report.misses.length === 0) {
        passed++;
        console.log(`\ncheck ${scenario.name}/${mode}: passed`);
      } else {
        failed++;
        console.log(`\ncheck ${scenario.name}/${mode}: FAILED`);
        for (const miss of report.misses) console.log(`  - ${miss.replace(/\n/g, '\n    ')}`);
      }
    }
  }
  console.log(`\ntotal ${((Date.now() - runStarted) / 1000).toFixed(1)} s`);
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

// Ctrl-C: the children are killed by harness/child.ts's exit hook.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main().then(
  // Explicit: a keep-alive socket of the global fetch agent must not hold the run open.
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
