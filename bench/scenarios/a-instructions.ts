import os from 'node:os';
import path from 'node:path';
import { callgrindAvailable, CallgrindServer, KeepAliveClient, transpileServer } from '../../harness/callgrind';
import { errorMessage } from '../../harness/cli';
import { formatNumber, formatSummary, summarize, type Summary } from '../../harness/markdown';
import type { ServerConfig } from '../../harness/protocol';
import { systemIds } from '../../harness/systems';
import { Figures, type Bench } from '../context';
import { column, systemsTable, type Column, type Table } from './scenario';

/** The calibration: bare Node whose handler first runs `spin(calibrationSteps)` (harness/server.ts), about 1 % of a request. */
export const calibration = 'calibration';
const calibrationSteps = 60;
/**
 * Numbers of `spin` calls, each counted in a window: the first optimizes `spin` where it is called
 * and is thrown away; the other two differ by `calibrationSteps`' cost times their difference.
 */
const spinCalls = [20_000, 1_000, 11_000] as const;

/** Counts for the full run and for `--quick` (fewer requests, fewer systems). */
const plans = {
  full: { warmup: 12_000, warmupRounds: 4, scavenges: 6, connections: 1, systems: null },
  quick: {
    warmup: 6_000,
    warmupRounds: 3,
    scavenges: 3,
    connections: 1,
    // One pair of trials at once: --quick stays within its budget; the calibration is in the full run.
    systems: ['bare', 'rx-graceful'],
  },
} as const;
/** After the warm-up, requests are sent in chunks of this many until one leaves V8's JIT quiet, at most `settleChunks` times. */
const settleChunk = 1_000;
const settleChunks = 30;
/** Trials run at once: instruction counts do not depend on what else runs, only the wall time does. */
const parallel = Math.max(1, Math.min(2, os.availableParallelism()));

/** What one trial measured. */
type Trial = {
  instructionsPerRequest: number;
  requests: number;
  /** Requests sent before counting began. */
  warmup: number;
  /** V8 optimizations and deoptimizations during the measured window: 0 when the JIT had settled. */
  jitEvents: number;
  otherGcs: number;
  spinInstructions?: number;
};

/** The instruction table of scenario A, what it measured and how, and the ratios the targets judge. */
export interface InstructionsReport {
  readonly method: string;
  readonly table: Table;
  /** Per system, its instructions per request over bare's (median and range over rounds); null where not measured. */
  readonly ratio: (system: string) => Summary | null;
}

/**
 * A, by instructions: the instructions the server process executes per request, counted by
 * valgrind's callgrind in a window of whole GC cycles after a warm-up (harness/callgrind.ts), for
 * bare Node, the calibration (bare plus a known ~1 % per request) and every system. Null when
 * valgrind is not installed (noted in the report).
 */
export async function instructionsPerRequest(bench: Bench): Promise<InstructionsReport | null> {
  if (!callgrindAvailable()) {
    bench.notes.push(
      'A, instructions: valgrind is not installed (apt-get install valgrind); only the autocannon table was measured',
    );
    return null;
  }
  const plan = bench.settings.quick ? plans.quick : plans.full;
  const wanted = [bench.systems[0] ?? 'bare', calibration, ...bench.systems.slice(1)];
  // Quick takes its few systems, unless `--systems` named some.
  const named = bench.systems.length < systemIds.length;
  const systems =
    plan.systems === null || named ? wanted : wanted.filter((system) => (plan.systems as readonly string[]).includes(system));
  const dir = path.join(__dirname, '..', 'out', 'callgrind');
  const serverJs = transpileServer(path.join(__dirname, '..', 'out', 'instr-js'));
  const rounds = 1;
  const figures = new Figures(rounds);
  const queue = systems.map((system) => ({ system, round: 0 }));
  let k = 0;
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const { system, round } = next;
      bench.progress(`A instructions · ${system} · trial ${++k} of ${systems.length}`);
      try {
        const trial = await countTrial(serverJs, dir, system, plan);
        figures.add(system, round, trial);
        if (trial.otherGcs > 0) bench.progress(`  ! A instructions · ${system}: ${trial.otherGcs} full GC(s) in the window`);
        if (trial.jitEvents > 0)
          bench.progress(`  ! A instructions · ${system}: V8 (de)optimized ${trial.jitEvents} times in the window`);
      } catch (error) {
        bench.progress(`  ! A instructions · ${system}: ${errorMessage(error)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));

  const instructions = figures.get('instructionsPerRequest');
  const spinCost = figures.get('spinInstructions').values(calibration);
  const bare = instructions.values('bare');
  const expected = summarize(spinCost.map((cost, round) => (cost === null || !bare[round] ? null : 1 + cost / bare[round])));
  const columns = [
    column('instructions/req', 'instructionsPerRequest', instructions),
    {
      header: '× bare',
      key: 'instructionsVsBare',
      cell: (system) => formatSummary(instructions.ratio(system), 3),
      json: (system) => instructions.ratio(system),
    } satisfies Column,
    {
      header: 'expected × bare',
      key: 'expectedVsBare',
      cell: (system) => (system === calibration ? formatSummary(expected, 3) : ''),
      json: (system) => (system === calibration ? expected : null),
    } satisfies Column,
    column('warm-up requests', 'warmup', figures.get('warmup')),
    column('requests in window', 'requests', figures.get('requests')),
  ];
  const spin = summarize(spinCost);
  const caption =
    'Instructions per request of the server process (callgrind), and the ratio to bare Node; the calibration’s expected ratio is 1 + its loop’s own count over bare’s';
  const method =
    `Instructions, not time: each system’s server process runs under valgrind’s callgrind (\`--instr-atstart=no\`), with V8 deterministic (\`--single-threaded --predictable --predictable-gc-schedule\`). ` +
    `A keep-alive client of the harness sends exact numbers of requests (${plan.connections} connection, one request at a time, trivial handler): ${plan.warmup.toLocaleString('en-US')} requests of warm-up over ${plan.warmupRounds} rounds of fresh connections (V8 optimizes and deoptimizes as the second connection comes), then chunks of ${settleChunk.toLocaleString('en-US')} until one passes with no optimization or deoptimization printed by V8’s \`--trace-opt --trace-deopt\`, all uncounted; then counting is turned on, a first window is thrown away, and the measured window runs from one young-generation GC to the ${plan.scavenges}th after it, so that it holds the GC work of exactly the garbage its requests made (the server opens and closes the window itself, by native calls on whose entry callgrind zeroes and dumps its counts). ` +
    `The figure is the instructions in the window over the requests in it. The calibration is bare Node whose handler first runs a loop of ${calibrationSteps} steps` +
    (spin === null ? '' : `, counted on its own at ${formatNumber(spin.median, 0)} instructions a call`) +
    '; its measured ratio to bare should equal the expected one. Two windows of one process agree to 0.2–0.4 %, and the absolute count depends on the warm-up (every system gets the same): compare ratios within one run. ' +
    'Each system’s measured window is kept as bench/out/callgrind/<system>.window.callgrind, for `callgrind_annotate`.' +
    (bench.settings.quick && !named ? ` Quick: only ${systems.join(', ')} (\`--systems\` names others).` : '');
  return {
    method,
    table: systemsTable(caption, systems, columns, { scenario: 'A', instrument: 'callgrind' }),
    ratio: (system) => instructions.ratio(system),
  };
}

/** One system's trial: a server under callgrind, warmed up, then one counted window (and the calibration's loop counted alone). */
async function countTrial(
  serverJs: string,
  dir: string,
  system: string,
  plan: (typeof plans)[keyof typeof plans],
): Promise<Trial> {
  const spin = system === calibration ? calibrationSteps : 0;
  const config: ServerConfig = {
    system: system === calibration ? 'bare' : system,
    protocol: 'http',
    handler: { kind: 'trivial', spin },
    trigger: { kind: 'call' },
    timeoutMs: 1_000,
    // Under valgrind a connection can wait seconds between two requests (turning counting on
    // re-translates the code): Node's 5 s keep-alive timeout would close it.
    keepAliveTimeoutMs: 600_000,
  };
  const server = await CallgrindServer.start(serverJs, config, dir);
  let client: KeepAliveClient | undefined;
  try {
    for (let round = 0; round < plan.warmupRounds; round++) {
      const warming = await KeepAliveClient.open(server.port, plan.connections);
      await warming.send(plan.warmup / plan.warmupRounds).finally(() => warming.close());
    }
    client = await KeepAliveClient.open(server.port, plan.connections);
    let warmup = plan.warmup;
    for (let chunk = 0, before = -1; chunk < settleChunks && before !== server.jitEvents(); chunk++) {
      before = server.jitEvents();
      await client.send(settleChunk);
      warmup += settleChunk;
    }
    await server.instrument();
    const window = (scavenges: number) =>
      (client as KeepAliveClient).sendUntil(server.child.call('window', { scavenges }, 600_000), scavenges * 5_000);
    // The first counted window runs code the warm-up did not (the window's own), and is thrown away.
    await window(1);
    server.windowInstructions();
    const jitBefore = server.jitEvents();
    const { requests, otherGcs } = await window(plan.scavenges);
    const jitEvents = server.jitEvents() - jitBefore;
    const kept = path.join(dir, `${system}.window.callgrind`);
    const trial: Trial = {
      instructionsPerRequest: server.windowInstructions(kept) / requests,
      requests,
      warmup,
      jitEvents,
      otherGcs,
    };
    if (spin > 0) {
      const counts: number[] = [];
      for (const times of spinCalls) {
        await server.child.call('spin', { steps: spin, times }, 600_000);
        counts.push(server.windowInstructions());
      }
      trial.spinInstructions = ((counts[2] as number) - (counts[1] as number)) / (spinCalls[2] - spinCalls[1]);
    }
    return trial;
  } finally {
    client?.close();
    await server.kill();
  }
}
