import { execSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { startTs, type CallMap, type Child, type Message } from '../harness/child';
import type { LoadCalls, ServerCalls, ServerConfig, ServerEvent } from './protocol';
import type { Settings } from './settings';
import { systems as allSystems } from './systems';

/** A load process, as the orchestrator calls it. */
export type LoadPeer = Child<{ type: 'ready' }, LoadCalls>;
/** A server process, as the orchestrator calls it and hears its events. */
export type ServerPeer = Child<ServerEvent, ServerCalls>;

/** A started server process and the port its system listens on. */
export interface ServerHandle {
  peer: ServerPeer;
  port: number;
}

/** Above this many connections the client side is split over every load process. */
const splitAbove = 2_000;
const serverStartMs = 20_000;

const loadProcesses = 2;

/** Which core the servers and the load processes are pinned to, or null (not pinned). */
export interface CpuPlan {
  server: number;
  load: number;
}

function planCpus(pin: boolean): CpuPlan | null {
  if (!pin || os.availableParallelism() < 2) return null;
  const taskset = spawnSync('taskset', ['--cpu-list', '0,1', 'true']);
  return taskset.status === 0 ? { server: 0, load: 1 } : null;
}

/**
 * Starts `bench/<script>` with `gc()` (for scenario F), its output passed through; with `cpu`,
 * pinned to that core, so that the server and the load never share a core and the scheduler does
 * not move them.
 */
function startChild<M extends Message, Calls extends CallMap<Calls>>(
  name: string,
  script: string,
  args: string[],
  cpu: number | null,
): Child<M, Calls> {
  return startTs<M, Calls>(name, path.join(__dirname, script), { args, nodeFlags: ['--expose-gc'], cpu, output: 'inherit' });
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

/**
 * What every scenario shares: the systems and their interleaved order, the load processes,
 * server processes started per trial, progress on stderr, and the raw trial log.
 */
export class BenchContext {
  /** Ids of the systems that run, bare first. */
  readonly systems: string[];
  /** Why a system or a size was left out, for the report. */
  readonly notes: string[] = [];
  readonly fileLimit = openFileLimit();
  private readonly startedAt = performance.now();
  private readonly trialLog: fs.WriteStream;

  /** Starts the load processes (kept for the whole run) and opens the trial log. */
  static async create(settings: Settings, trialLogPath: string): Promise<BenchContext> {
    const cpus = planCpus(settings.pin);
    const loads: LoadPeer[] = Array.from({ length: loadProcesses }, (_, index) =>
      startChild(`load ${index + 1}`, 'load.ts', [], cpus?.load ?? null),
    );
    try {
      await Promise.all(loads.map((load) => load.next('ready', serverStartMs)));
    } catch (error) {
      await Promise.all(loads.map((load) => load.kill()));
      throw error;
    }
    return new BenchContext(settings, loads, cpus, trialLogPath);
  }

  private constructor(
    readonly settings: Settings,
    readonly loads: readonly LoadPeer[],
    readonly cpus: CpuPlan | null,
    trialLogPath: string,
  ) {
    const asked = settings.systems;
    if (asked) {
      const unknown = asked.filter((id) => !allSystems.some((entry) => entry.id === id));
      if (unknown.length > 0)
        throw new TypeError(`unknown system ${unknown.join(', ')}; known: ${allSystems.map((s) => s.id).join(', ')}`);
    }
    this.systems = [];
    for (const entry of allSystems) {
      if (asked && entry.id !== 'bare' && !asked.includes(entry.id)) continue;
      const reason = entry.unavailable();
      if (reason) {
        if (!this.notes.includes(reason)) this.notes.push(reason);
        this.progress(`skipping ${entry.id}: ${reason}`);
        continue;
      }
      this.systems.push(entry.id);
    }
    this.trialLog = fs.createWriteStream(trialLogPath, { flags: 'w' });
  }

  get rounds(): number {
    return this.settings.rounds;
  }

  get quick(): boolean {
    return this.settings.quick;
  }

  /** Round r runs the systems forward when r is even, backward when odd, rotated every two rounds. */
  order(round: number): string[] {
    const shift = Math.floor(round / 2) % this.systems.length;
    const rotated = [...this.systems.slice(shift), ...this.systems.slice(0, shift)];
    return round % 2 === 0 ? rotated : rotated.reverse();
  }

  progress(message: string): void {
    const seconds = ((performance.now() - this.startedAt) / 1000).toFixed(0).padStart(4);
    process.stderr.write(`[${seconds}s] ${message}\n`);
  }

  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  /**
   * Runs `trial` for every round and system, interleaved. A trial that throws is logged and
   * leaves its value missing; the run goes on.
   */
  async eachTrial(label: string, trial: (system: string, round: number) => Promise<void>): Promise<void> {
    const total = this.rounds * this.systems.length;
    let k = 0;
    for (let round = 0; round < this.rounds; round++) {
      for (const system of this.order(round)) {
        k++;
        this.progress(`${label} · ${system} · round ${round + 1} of ${this.rounds} · trial ${k} of ${total}`);
        try {
          await trial(system, round);
        } catch (error) {
          this.progress(`  ! ${label} · ${system}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
  }

  /**
   * Starts a server process for `system`, runs `use`, and always kills the process afterwards.
   * `rxDefaults` are rx-graceful options for this scenario; `--rx-*` flags override them.
   */
  async withServer<T>(
    system: string,
    config: Omit<ServerConfig, 'system' | 'systemOptions'>,
    use: (server: ServerHandle) => Promise<T>,
    rxDefaults: Readonly<Record<string, unknown>> = {},
  ): Promise<T> {
    const full: ServerConfig = {
      ...config,
      system,
      systemOptions: system.startsWith('rx-graceful') ? { ...rxDefaults, ...this.settings.rxOptions } : {},
    };
    const peer: ServerPeer = startChild(`server ${system}`, 'server.ts', [JSON.stringify(full)], this.cpus?.server ?? null);
    try {
      const ready = await peer.next('ready', serverStartMs);
      return await use({ peer, port: ready.port });
    } finally {
      await peer.kill();
    }
  }

  /** The load process that runs the clients of every trial up to 2,000 connections. */
  get load(): LoadPeer {
    const first = this.loads[0];
    if (!first) throw new Error('no load process');
    return first;
  }

  /** How `count` client connections are spread over the load processes. */
  spread(count: number): { load: LoadPeer; count: number }[] {
    if (count <= splitAbove || this.loads.length === 1) return [{ load: this.load, count }];
    const share = Math.ceil(count / this.loads.length);
    return this.loads.map((load, index) => ({ load, count: Math.max(0, Math.min(share, count - index * share)) }));
  }

  /** Null if `connections` fit under the open-file limit of a server process, else why not. */
  tooManyFiles(connections: number): string | null {
    const needed = connections + 200;
    if (!(this.fileLimit >= needed)) {
      return `${connections.toLocaleString('en-US')} connections need an open-file limit ≥ ${needed.toLocaleString('en-US')} (ulimit -n is ${this.fileLimit}); raise it with \`ulimit -n ${needed}\``;
    }
    return null;
  }

  /** Appends one raw trial to bench/out/trials.jsonl. */
  record(trial: Record<string, unknown>): void {
    this.trialLog.write(`${JSON.stringify(trial)}\n`);
  }

  /** Kills the load processes and closes the trial log. */
  async close(): Promise<void> {
    await Promise.all(this.loads.map((load) => load.kill()));
    await new Promise<void>((resolve) => this.trialLog.end(resolve));
  }

  /** Kills the load processes now, for an interrupted run. */
  abort(): void {
    for (const load of this.loads) void load.kill();
  }
}
