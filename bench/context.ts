import { execSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startLoad, startServer, type LoadChild, type ServerChild } from '../harness/child';
import { errorMessage } from '../harness/cli';
import type { Protocol, ServerConfig } from '../harness/protocol';
import { summarize, type Summary } from '../harness/markdown';
import type { Settings } from './settings';

/** Above this many connections the client side is split over both load processes. */
const splitAbove = 2_000;

/** Which core the servers and the load processes are pinned to, or null (not pinned). */
export type CpuPlan = { server: number; load: number };

function planCpus(pin: boolean): CpuPlan | null {
  if (!pin || os.availableParallelism() < 2) return null;
  return spawnSync('taskset', ['--cpu-list', '0,1', 'true']).status === 0 ? { server: 0, load: 1 } : null;
}

/** The soft limit on open files of this process (inherited by its children). */
function openFileLimit(): number {
  try {
    const raw = execSync('ulimit -n', { shell: '/bin/sh', encoding: 'utf8' }).trim();
    return raw === 'unlimited' ? Number.POSITIVE_INFINITY : Number(raw);
  } catch {
    return Number.NaN;
  }
}

/** One figure of a scenario: per system, its value in each round (null where the trial failed). */
export class Series {
  private readonly bySystem = new Map<string, (number | null)[]>();

  constructor(private readonly rounds: number) {}

  set(system: string, round: number, value: number | null): void {
    const values = this.values(system);
    values[round] = value;
    this.bySystem.set(system, values);
  }

  values(system: string): (number | null)[] {
    return this.bySystem.get(system) ?? Array.from({ length: this.rounds }, () => null);
  }

  summary(system: string): Summary | null {
    return summarize(this.values(system));
  }

  /** Median and range of the per-round ratio to bare Node's value in the same round. */
  ratio(system: string): Summary | null {
    const bare = this.values('bare');
    return summarize(this.values(system).map((value, round) => (value === null || !bare[round] ? null : value / bare[round])));
  }
}

/** Every figure of a scenario, by key. */
export class Figures {
  private readonly byKey = new Map<string, Series>();

  constructor(private readonly rounds: number) {}

  /** The figure `key` (empty if no trial gave it). */
  get(key: string): Series {
    let series = this.byKey.get(key);
    if (series === undefined) this.byKey.set(key, (series = new Series(this.rounds)));
    return series;
  }

  /** Keeps every number (or null) of `values` as the figure of `system` in `round`. */
  add(system: string, round: number, values: Readonly<Record<string, unknown>>): void {
    for (const [key, value] of Object.entries(values))
      if (typeof value === 'number' || value === null) this.get(key).set(system, round, value);
  }
}

/** The server of one trial, as a scenario uses it. */
export type TrialServer = { readonly child: ServerChild; readonly port: number };

/**
 * What every scenario shares: the systems and their interleaved order, two load processes kept for
 * the whole run (harness/load.ts), a fresh server process per trial (harness/server.ts), the
 * figures of every trial, progress on stderr, and the raw trial log (bench/out/trials.jsonl).
 */
export class Bench {
  /** Why a scenario or a size was left out, for the report. */
  readonly notes: string[] = [];
  readonly fileLimit = openFileLimit();
  private readonly startedAt = performance.now();
  private readonly trialLog = fs.createWriteStream(path.join(__dirname, 'out', 'trials.jsonl'), { flags: 'w' });
  readonly systems: readonly string[];
  readonly rounds: number;
  /** The load process that runs the clients of every trial up to 2,000 connections. */
  readonly load: LoadChild;

  /** Starts the load processes; the trial log is opened with the instance. */
  static async create(settings: Settings): Promise<Bench> {
    const cpus = planCpus(settings.pin);
    for (const dir of [path.join(__dirname, 'out'), path.dirname(settings.resultsPath)]) fs.mkdirSync(dir, { recursive: true });
    const loads = await Promise.all([1, 2].map((n) => startLoad(`load ${n}`, { cpu: cpus?.load ?? null, output: 'inherit' })));
    return new Bench(settings, loads, cpus);
  }

  private constructor(
    readonly settings: Settings,
    readonly loads: readonly LoadChild[],
    readonly cpus: CpuPlan | null,
  ) {
    this.systems = settings.systems;
    this.rounds = settings.rounds;
    this.load = loads[0] as LoadChild;
  }

  /** Round r runs the systems forward when r is even, backward when odd, rotated every two rounds. */
  order(round: number, systems: readonly string[] = this.systems): string[] {
    const shift = Math.floor(round / 2) % systems.length;
    const rotated = [...systems.slice(shift), ...systems.slice(0, shift)];
    return round % 2 === 0 ? rotated : rotated.reverse();
  }

  progress(message: string): void {
    process.stderr.write(`[${(this.elapsedMs() / 1000).toFixed(0).padStart(4)}s] ${message}\n`);
  }

  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  /**
   * Runs `trial` for every round and system (of `systems`, default the run's), interleaved, each
   * with a fresh server process for `config` (protocol http unless it names one; rx-graceful's
   * options: `config.options`, overridden by `--rx-*`), which is killed after it. Every number (or null) the trial returns is kept as a figure of that system and round, and
   * the whole return goes to the trial log. A trial that throws is reported on stderr and leaves its
   * figures missing; the run goes on. `systems`: only these (default: every system of the run).
   */
  async trials(
    label: string,
    config: Omit<ServerConfig, 'system' | 'protocol'> & { readonly protocol?: Protocol },
    trial: (server: TrialServer, system: string) => Promise<Record<string, unknown>>,
    systems: readonly string[] = this.systems,
  ): Promise<Figures> {
    const figures = new Figures(this.rounds);
    const placement = { cpu: this.cpus?.server ?? null, output: 'inherit', nodeFlags: this.settings.serverNodeFlags } as const;
    const total = this.rounds * systems.length;
    let k = 0;
    for (let round = 0; round < this.rounds; round++) {
      for (const system of this.order(round, systems)) {
        this.progress(`${label} · ${system} · round ${round + 1} of ${this.rounds} · trial ${++k} of ${total}`);
        const options = system.startsWith('rx-graceful') ? { ...config.options, ...this.settings.rxOptions } : {};
        let server: TrialServer | undefined;
        try {
          server = await startServer({ protocol: 'http', ...config, system, options }, placement);
          const values = await trial(server, system);
          figures.add(system, round, values);
          this.trialLog.write(`${JSON.stringify({ scenario: label, system, round, ...values })}\n`);
        } catch (error) {
          this.progress(`  ! ${label} · ${system}: ${errorMessage(error)}`);
        } finally {
          await server?.child.kill();
        }
      }
    }
    return figures;
  }

  /** How `count` client connections are spread over the load processes. */
  spread(count: number): { load: LoadChild; count: number }[] {
    if (count <= splitAbove) return [{ load: this.load, count }];
    const share = Math.ceil(count / this.loads.length);
    return this.loads.map((load, index) => ({ load, count: Math.max(0, Math.min(share, count - index * share)) }));
  }

  /** Null if `connections` fit under the open-file limit of a server process, else why not (noted for the report). */
  tooManyFiles(scenario: string, connections: number): string | null {
    const needed = connections + 200;
    if (this.fileLimit >= needed) return null;
    const why = `${connections.toLocaleString('en-US')} connections need an open-file limit ≥ ${needed.toLocaleString('en-US')} (ulimit -n is ${this.fileLimit}); raise it with \`ulimit -n ${needed}\``;
    this.notes.push(`${scenario}: ${why}`);
    this.progress(`skipping ${scenario}: ${why}`);
    return why;
  }

  /** Closes the load processes' channels (they exit by themselves), kills what is left, and closes the trial log. */
  async close(): Promise<void> {
    for (const load of this.loads) load.disconnect();
    await Promise.all(this.loads.map(async (load) => (await load.exits(5_000)) ?? load.kill()));
    await new Promise<void>((resolve) => this.trialLog.end(resolve));
  }
}
