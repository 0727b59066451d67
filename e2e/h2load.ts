/**
 * h2load (nghttp2) against an `http2.createServer` (h2c) wrapped in `GracefulServer`, SIGTERM
 * mid-run. Target: in every run the server prints its `wait()` result and exits by itself with
 * code 0. h2load's own counts are reported as they are: a benchmark tool that finds its server
 * gone counts what it could not send as failed or errored, which is no loss by itself.
 */
import { start, type Child, type ServerChild } from '../harness/child';
import * as e2e from './scenario';

const h2loadBinary = '/usr/bin/h2load';
const durationS = 3;
const sigtermAfterMs = 1_000;
const h2loadArgs = ['-c', '50', '-m', '10', '-D', String(durationS)];
const header = 'trial|drainDelay|requests|succeeded|failed|errored|timeout|h2load|old server';

/** h2load's summary line: "requests: 9 total, 9 started, 9 done, 8 succeeded, 1 failed, 1 errored, 0 timeout". */
function h2loadCounts(h2load: Child): string[] {
  const line = h2load.lines.find((candidate) => candidate.text.startsWith('requests: '))?.text;
  const match = line?.match(
    /(\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/,
  );
  if (match === undefined || match === null) return ['—', '—', '—', '—', '—'];
  return [match[1], match[4], match[5], match[6], match[7]].map(String);
}

/** One shutdown under h2load. */
async function trial(n: number, drainDelay: number | undefined): Promise<e2e.TrialReport> {
  let server: ServerChild | undefined;
  let h2load: Child | undefined;
  try {
    const started = await e2e.startE2eServer('h2c', drainDelay);
    server = started.child;
    h2load = start('h2load', h2loadBinary, { args: [...h2loadArgs, `http://127.0.0.1:${started.port}/`] });
    await h2load.waitForLine(/^starting benchmark/, 'h2load starting its benchmark', 10_000);
    await e2e.letLoadRun(sigtermAfterMs);
    const signalledAt = Date.now();
    server.signal('SIGTERM');
    const h2loadExit = await h2load.exits(durationS * 1_000 + 20_000);
    await (h2loadExit === undefined ? h2load.kill() : h2load.outputClosed(5_000));
    const waitMs = (drainDelay ?? 0) + e2e.serverTimeoutMs + 10_000;
    const old = e2e.judgeOldServer(await e2e.awaitServerExit(server, signalledAt, waitMs));
    const ended = h2loadExit === undefined ? 'still running, killed' : h2load.describeExit();
    return { rows: [[String(n), String(drainDelay ?? 'default'), ...h2loadCounts(h2load), ended, old.cell]], misses: old.misses };
  } finally {
    await Promise.all([server?.kill(), h2load?.kill()]);
  }
}

/** The h2load scenario: `trials` HTTP/2 shutdowns under h2load. */
export const h2loadScenario: e2e.Scenario = {
  name: 'h2load',
  needs: { file: h2loadBinary, install: 'apt-get install nghttp2-client' },
  async run(mode, settings) {
    const label = `h2load · ${mode} (${e2e.busyLoopsFor(mode)} busy loops)`;
    const { table, misses } = await e2e.runTrials(label, header, [settings.drainDelay], e2e.trialsFor(settings, 1, 5), trial);
    return {
      table,
      notes: [
        `h2load ${h2loadArgs.join(' ')} against h2c, SIGTERM ${sigtermAfterMs} ms after it started.`,
        'Target: the server prints its done$/wait() result and exits by itself with code 0, in every trial; h2load counts are reported, not judged.',
      ],
      misses,
    };
  },
};
