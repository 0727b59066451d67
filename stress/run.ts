/**
 * `npm run stress`: shutdown under load, many trials. Each trial forks a server process and a
 * load process (100 keep-alive clients), shuts the server down at a seeded random moment, and
 * classes every request from both sides. Exits 1 if any trial lost a request (or went wrong).
 *
 *   npm run stress -- [--trials=20] [--protocol=http|https|h2|all] [--seed=N] [--quick]
 *                     [--think=MS] [--idle-linger=MS]
 *
 * `--think` makes each client pause 0 to MS ms between requests, so that connections sit idle
 * when the shutdown comes and the idle-close race is exercised; `--idle-linger` sets the
 * library's `idleLinger`, to compare the resets with and without the linger.
 */
import { protocols, type Protocol } from './messages';
import { randomSeed, trialSeed } from './prng';
import { jsonLine, legend, resetSummary, trialTable } from './report';
import { runTrial, type TrialResult } from './trial';

interface Flags {
  trials: number;
  protocols: readonly Protocol[];
  seed: number;
  quick: boolean;
  thinkMaxMs: number;
  idleLinger: number | undefined;
}

const usage =
  'usage: npm run stress -- [--trials=N] [--protocol=http|https|h2|all] [--seed=N] [--quick] [--think=MS] [--idle-linger=MS]';

/** A whole number from 0 to `max`, or undefined. */
function whole(value: string | undefined, max: number): number | undefined {
  return value !== undefined && /^\d+$/.test(value) && Number(value) <= max ? Number(value) : undefined;
}

function parseFlags(argv: readonly string[]): Flags {
  const flags: Flags = {
    trials: 20,
    protocols: ['http'],
    seed: randomSeed(),
    quick: false,
    thinkMaxMs: 0,
    idleLinger: undefined,
  };
  for (const arg of argv) {
    const [name, value] = arg.split('=', 2) as [string, string | undefined];
    const number = whole(value, 2 ** 32 - 1);
    if (name === '--quick' && value === undefined) flags.quick = true;
    else if (name === '--trials' && number !== undefined && number >= 1 && number <= 1000) flags.trials = number;
    else if (name === '--seed' && number !== undefined) flags.seed = number;
    else if (name === '--think' && number !== undefined && number <= 1000) flags.thinkMaxMs = number;
    else if (name === '--idle-linger' && number !== undefined && number <= 1000) flags.idleLinger = number;
    else if (name === '--protocol' && value === 'all') flags.protocols = protocols;
    else if (name === '--protocol' && protocols.includes(value as Protocol)) flags.protocols = [value as Protocol];
    else throw new Error(`bad argument ${JSON.stringify(arg)}\n${usage}`);
  }
  return flags;
}

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2));
  const began = Date.now();
  const command =
    `npm run stress -- --trials=${flags.trials} --protocol=${flags.protocols.length > 1 ? 'all' : flags.protocols[0]} --seed=${flags.seed}` +
    (flags.quick ? ' --quick' : '') +
    (flags.thinkMaxMs > 0 ? ` --think=${flags.thinkMaxMs}` : '') +
    (flags.idleLinger === undefined ? '' : ` --idle-linger=${flags.idleLinger}`);
  console.log(`# rx-graceful stress: shutdown under load\n`);
  console.log(`seed ${flags.seed} (trial n uses seed ${flags.seed} + n - 1; rerun one trial with --trials=1 --seed=<its seed>)`);
  console.log(`command: ${command}`);
  console.log(
    `node ${process.version}, 100 keep-alive clients on 127.0.0.1 (HTTP/2: 10 sessions × 10 stream loops), handlers 0–200 ms, timeout 5000 ms, ` +
      `shutdown ${flags.quick ? '0.2–1 s' : '0.5–4 s'} after the first request, ` +
      (flags.thinkMaxMs > 0 ? `clients pause 0–${flags.thinkMaxMs} ms between requests, ` : 'requests back to back, ') +
      `idleLinger ${flags.idleLinger === undefined ? 'default (1000 ms)' : `${flags.idleLinger} ms`}\n`,
  );

  const all: TrialResult[] = [];
  for (const protocol of flags.protocols) {
    const results: TrialResult[] = [];
    for (let index = 0; index < flags.trials; index++) {
      const result = await runTrial({
        protocol,
        seed: trialSeed(flags.seed, index),
        quick: flags.quick,
        trial: index + 1,
        thinkMaxMs: flags.thinkMaxMs,
        ...(flags.idleLinger === undefined ? {} : { idleLinger: flags.idleLinger }),
      });
      results.push(result);
      process.stderr.write(
        `${protocol} trial ${index + 1}/${flags.trials}: sent ${result.sent}, completed ${result.completed}, refused ${result.refused}, ` +
          `reset ${result.reset}, lost ${result.lost}${result.ok ? '' : ' FAILED'} (${(result.wallMs / 1000).toFixed(1)} s)\n`,
      );
      for (const problem of [...result.problems, ...result.anomalies]) process.stderr.write(`  ${problem}\n`);
    }
    console.log(`## ${protocol}\n`);
    console.log(trialTable(results));
    console.log(`\n${resetSummary(results)}\n`);
    all.push(...results);
  }

  console.log('## Trials as JSON\n');
  for (const result of all) console.log(jsonLine(result));
  console.log(`\n${legend}\n`);

  const lost = all.reduce((total, result) => total + result.lost, 0);
  const failed = all.filter((result) => !result.ok);
  const minutes = ((Date.now() - began) / 60_000).toFixed(1);
  if (failed.length === 0) {
    console.log(`PASS: ${all.length} trials, 0 lost (${minutes} min)`);
    return 0;
  }
  console.log(`FAIL: ${lost} lost; ${failed.length} of ${all.length} trials not ok (${minutes} min):`);
  for (const result of failed) {
    console.log(
      `- ${result.protocol} trial ${result.trial} (seed ${result.seed}): ${[...result.problems, ...result.anomalies].join('; ') || `${result.lost} lost`}`,
    );
    for (const request of result.lostRequests.slice(0, 10)) console.log(`  lost ${JSON.stringify(request)}`);
  }
  return 1;
}

// Ctrl-C: the children are killed by harness/child.ts's exit hook.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  },
);
