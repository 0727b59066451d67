/**
 * What every scenario has: the run's settings, the shape the runner calls, and the small waits
 * they share.
 */
import { createServer } from 'node:net';
import type { Mode } from '../harness/busy-loops';
import { errorMessage, errorRow, type ScenarioReport } from './report';

/** The run's flags, as the scenarios need them. */
export interface Settings {
  /** CI form: fewer trials. */
  readonly short: boolean;
  /** `--trials=N`: trials (cluster: restarts) per mode instead of the scenario's default. */
  readonly trials: number | undefined;
  /** `--drain-delay=MS`: the one `drainDelay` to run, instead of the scenario's variants. */
  readonly drainDelay: number | undefined;
}

/** One end-to-end scenario. */
export interface Scenario {
  readonly name: string;
  /** A program it needs, and how to install it: absent, the scenario is skipped. */
  readonly needs?: { readonly file: string; readonly install: string };
  run(mode: Mode, settings: Settings): Promise<ScenarioReport>;
}

/** The `timeout` option of every server in the scenarios (ms). */
export const serverTimeoutMs = 5_000;

/** Lets the load run for `ms`; never used to wait for something to happen. */
export function letLoadRun(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** One trial's table cells (after its number) and the targets it missed. */
export interface TrialReport {
  readonly cells: readonly string[];
  readonly misses: readonly string[];
}

/**
 * Runs `trial` `trials` times, saying so on stderr after `label`: a table row per trial (for one that
 * broke: its number, `first`, the error, `width` cells in all) and its misses, each naming the trial
 * (and `tag` when it broke).
 */
export async function runTrials(
  label: string,
  trials: number,
  width: number,
  trial: () => Promise<TrialReport>,
  first: readonly string[] = [],
  tag = '',
): Promise<{ rows: string[][]; misses: string[] }> {
  const rows: string[][] = [];
  const misses: string[] = [];
  for (let n = 1; n <= trials; n++) {
    process.stderr.write(`${label} · trial ${n} of ${trials}\n`);
    try {
      const result = await trial();
      rows.push([String(n), ...result.cells]);
      misses.push(...result.misses.map((miss) => `trial ${n}: ${miss}`));
    } catch (error) {
      rows.push(errorRow([String(n), ...first], error, width));
      misses.push(`trial ${n}${tag} broke: ${errorMessage(error)}`);
    }
  }
  return { rows, misses };
}

/** `settings.trials`, or `short` / `full` by the run's form. */
export function trialsFor(settings: Settings, short: number, full: number): number {
  return settings.trials ?? (settings.short ? short : full);
}
