/**
 * `npm run stress`: shutdown under load, many trials. Each trial forks a server process and a
 * load process (100 keep-alive clients), shuts the server down at a seeded random moment, and
 * classes every request from both sides (stress/trial.ts). Prints a Markdown table per protocol,
 * how the resets split, one JSON line per trial, and one check per trial; the last line is
 * `stress: N passed, N failed`, and the exit code is 1 if any trial failed.
 *
 *   npm run stress -- [--trials=20] [--protocol=http|https|h2|all] [--seed=N] [--quick]
 *                     [--think=MS] [--idle-linger=MS]
 *
 * `--think` makes each client pause 0 to MS ms between requests, so that connections sit idle
 * when the shutdown comes and the idle-close race is exercised; `--idle-linger` sets the
 * library's `idleLinger`, to compare the resets with and without the linger.
 */
import { parseFlags, runMain, wholeNumber } from '../harness/cli';
import { formatReasons, markdownTable } from '../harness/markdown';
import { protocols, runTrial, type TrialResult } from './trial';

const usage =
  'usage: npm run stress -- [--trials=N] [--protocol=http|https|h2|all] [--seed=N] [--quick] [--think=MS] [--idle-linger=MS]';
const columns =
  'trial|protocol|seed|shutdown at ms|open/active at shutdown|sent|completed|refused|reset|lost|killed|drain ms|trial s|ok';

function sum(results: readonly TrialResult[], pick: (result: TrialResult) => number): number {
  return results.reduce((total, r) => total + pick(r), 0);
}

/** One row per trial, then the totals. */
function trialTable(results: readonly TrialResult[]): string {
  const rows = results.map((r) => {
    const { shutdown: s, atShutdown: at } = r;
    const counts = [r.sent, r.completed, r.refused, r.reset, r.lost, s?.killed ?? '–', s ? Math.round(s.durationMs) : '–'];
    const moment = [r.shutdownAfterMs, at ? `${at.open}/${at.active}` : '–'];
    return [r.trial, r.protocol, r.seed, ...moment, ...counts, (r.wallMs / 1000).toFixed(1), r.ok ? 'yes' : '**NO**'];
  });
  const drains = results.flatMap((r) => (r.shutdown === null ? [] : [r.shutdown.durationMs]));
  const total = (pick: (result: TrialResult) => number): number => sum(results, pick);
  const counts = [total((r) => r.sent), total((r) => r.completed), total((r) => r.refused), total((r) => r.reset)];
  const drain = drains.length === 0 ? '–' : `max ${Math.round(Math.max(...drains))}`;
  const ends = [total((r) => r.shutdown?.killed ?? 0), drain, (total((r) => r.wallMs) / 1000).toFixed(1)];
  const protocol = [...new Set(results.map((r) => r.protocol))].join('+');
  const passed = `${results.filter((r) => r.ok).length}/${results.length}`;
  rows.push(['**total**', protocol, '', '', '', ...counts, `**${total((r) => r.lost)}**`, ...ends, passed]);
  return markdownTable(columns.split('|'), rows, 2);
}

/** How the resets of a run split: newcomers against reused connections, and what the clients saw. */
function resetSummary(results: readonly TrialResult[]): string {
  const reasons = new Map<string, number>();
  for (const [reason, count] of results.flatMap((r) => Object.entries(r.resetReasons))) {
    reasons.set(reason, (reasons.get(reason) ?? 0) + count);
  }
  const fresh = sum(results, (r) => r.resetFresh);
  const reused = sum(results, (r) => r.resetReused);
  return (
    `Resets: ${fresh + reused} in ${results.filter((r) => r.reset > 0).length} of ${results.length} trials ` +
    `(${reused} on a reused keep-alive connection or session, ${fresh} on a new one)` +
    `; as the clients saw them: ${formatReasons(reasons, 'none')}.`
  );
}

async function main(): Promise<number> {
  const names = { trials: 'string', protocol: 'string', seed: 'string', think: 'string', 'idle-linger': 'string' } as const;
  const flags = parseFlags(process.argv.slice(2), { ...names, quick: 'boolean' });
  const trials = wholeNumber('trials', flags['trials'], 1, 1_000) ?? 20;
  const seed = wholeNumber('seed', flags['seed'], 0, 2 ** 32 - 1) ?? Math.floor(Math.random() * 2 ** 31);
  const thinkMaxMs = wholeNumber('think', flags['think'], 0, 1_000) ?? 0;
  const idleLinger = wholeNumber('idle-linger', flags['idle-linger'], 0, 1_000);
  const quick = flags['quick'] === true;
  const protocol = flags['protocol'] ?? 'http';
  const chosen = protocols.filter((known) => protocol === 'all' || protocol === known);
  if (chosen.length === 0) throw new TypeError(`--protocol expects http, https, h2 or all, got ${JSON.stringify(protocol)}`);

  const began = Date.now();
  const command =
    `npm run stress -- --trials=${trials} --protocol=${chosen.length > 1 ? 'all' : String(protocol)} --seed=${seed}` +
    (quick ? ' --quick' : '') +
    (thinkMaxMs > 0 ? ` --think=${thinkMaxMs}` : '') +
    (idleLinger === undefined ? '' : ` --idle-linger=${idleLinger}`);
  console.log(`# rx-graceful stress: shutdown under load\n`);
  console.log(`seed ${seed} (trial n uses seed ${seed} + n - 1; rerun one trial with --trials=1 --seed=<its seed>)`);
  console.log(`command: ${command}`);
  console.log(
    `node ${process.version}, 100 keep-alive clients on 127.0.0.1 (HTTP/2: 10 sessions × 10 stream loops), handlers 0–200 ms, timeout 5000 ms, ` +
      `shutdown ${quick ? '0.2–1 s' : '0.5–4 s'} after the first request, ` +
      (thinkMaxMs > 0 ? `clients pause 0–${thinkMaxMs} ms between requests, ` : 'requests back to back, ') +
      `idleLinger ${idleLinger === undefined ? 'default (1000 ms)' : `${idleLinger} ms`}\n`,
  );

  const all: TrialResult[] = [];
  for (const protocol of chosen) {
    const results: TrialResult[] = [];
    for (let index = 0; index < trials; index++) {
      const result = await runTrial(protocol, (seed + index) >>> 0, index + 1, { quick, thinkMaxMs, idleLinger });
      results.push(result);
      const { sent, completed, refused, reset, lost } = result;
      const counts = `sent ${sent}, completed ${completed}, refused ${refused}, reset ${reset}, lost ${lost}`;
      const took = `(${(result.wallMs / 1000).toFixed(1)} s)`;
      process.stderr.write(`${protocol} trial ${index + 1}/${trials}: ${counts}${result.ok ? '' : ' FAILED'} ${took}\n`);
      for (const problem of [...result.problems, ...result.anomalies]) process.stderr.write(`  ${problem}\n`);
    }
    console.log(`## ${protocol}\n\n${trialTable(results)}\n\n${resetSummary(results)}\n`);
    all.push(...results);
  }

  console.log('## Trials as JSON\n');
  for (const result of all) console.log(JSON.stringify(result));
  console.log('\nWhat the columns mean, and why a reset is no loss: stress/README.md.\n');

  const failed = all.filter((result) => !result.ok);
  const minutes = ((Date.now() - began) / 60_000).toFixed(1);
  if (failed.length === 0) console.log(`PASS: ${all.length} trials, 0 lost (${minutes} min)`);
  else console.log(`FAIL: ${sum(all, (r) => r.lost)} lost; ${failed.length} of ${all.length} trials not ok (${minutes} min):`);
  for (const result of failed) {
    const why = [...result.problems, ...result.anomalies];
    if (result.lost > 0) why.push(`${result.lost} lost`);
    if (result.completed === 0) why.push('none completed');
    if (result.shutdown !== null && result.shutdown.killed > 0) why.push(`killed ${result.shutdown.killed}`);
    console.log(`- ${result.protocol} trial ${result.trial} (seed ${result.seed}): ${why.join('; ')}`);
    for (const request of result.lostRequests.slice(0, 10)) console.log(`  lost ${JSON.stringify(request)}`);
  }
  console.log(`stress: ${all.length - failed.length} passed, ${failed.length} failed`);
  return failed.length > 0 ? 1 : 0;
}

runMain(main, usage);
