/**
 * h2load (nghttp2) against an `http2.createServer` (h2c) wrapped in `GracefulServer`, SIGTERM
 * mid-run. Target: in every run the server prints its `wait()` result and exits by itself with
 * code 0. h2load's own counts are reported as they are: a benchmark tool that finds its server
 * gone counts what it could not send as failed or errored, which is no loss by itself.
 */
import { busyLoopsFor, type Mode } from '../harness/busy-loops';
import { startBinary, type Child } from '../harness/child';
import { formatOldServer, markdownTable, oldServerMisses, type ScenarioReport } from './report';
import { letLoadRun, runTrials, serverTimeoutMs, trialsFor, type Scenario, type Settings } from './scenario';
import { awaitServerExit, startServer, type RunningServer } from './servers';

const h2loadBinary = '/usr/bin/h2load';
const durationS = 3;
const sigtermAfterMs = 1_000;
const h2loadArgs = (port: number): string[] => ['-c', '50', '-m', '10', '-D', String(durationS), `http://127.0.0.1:${port}/`];

/** h2load's summary line: "requests: 9 total, 9 started, 9 done, 8 succeeded, 1 failed, 1 errored, 0 timeout". */
function h2loadCounts(h2load: Child): string[] {
  const line = h2load.lines.map((candidate) => candidate.text).find((text) => text.startsWith('requests: '));
  const match = line?.match(
    /(\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/,
  );
  if (match === undefined || match === null) return ['—', '—', '—', '—', '—'];
  return [match[1], match[4], match[5], match[6], match[7]].map(String);
}

async function trial(drainDelay: number | undefined): Promise<{ cells: string[]; misses: string[] }> {
  let server: RunningServer | undefined;
  let h2load: Child | undefined;
  try {
    const config = { protocol: 'h2', timeout: serverTimeoutMs, maxDelayMs: 20, readiness: false } as const;
    server = await startServer('h2 server', drainDelay === undefined ? config : { ...config, drainDelay });
    h2load = startBinary('h2load', h2loadBinary, h2loadArgs(server.port));
    await h2load.waitForLine(/^starting benchmark/, 'h2load starting its benchmark', 10_000);
    await letLoadRun(sigtermAfterMs);
    const signalledAt = Date.now();
    server.child.signal('SIGTERM');
    const h2loadExit = await h2load.exits(durationS * 1_000 + 20_000);
    if (h2loadExit === undefined) await h2load.kill();
    else await h2load.outputClosed(5_000);
    const old = await awaitServerExit(server, signalledAt, (drainDelay ?? 0) + serverTimeoutMs + 10_000);
    const misses = oldServerMisses(old);
    const cells = [
      drainDelay === undefined ? 'default' : String(drainDelay),
      ...h2loadCounts(h2load),
      h2loadExit === undefined ? 'still running, killed' : h2load.describeExit(),
      formatOldServer(old),
    ];
    return { cells, misses };
  } finally {
    await Promise.all([server?.child.kill(), h2load?.kill()]);
  }
}

/** The h2load scenario: `trials` HTTP/2 shutdowns under h2load. */
export const h2loadScenario: Scenario = {
  name: 'h2load',
  needs: { file: h2loadBinary, install: 'apt-get install nghttp2-client' },
  async run(mode: Mode, settings: Settings): Promise<ScenarioReport> {
    const header = ['trial', 'drainDelay', 'requests', 'succeeded', 'failed', 'errored', 'timeout', 'h2load', 'old server'];
    const { rows, misses } = await runTrials(
      `h2load · ${mode} (${busyLoopsFor(mode)} busy loops)`,
      trialsFor(settings, 1, 5),
      header.length,
      () => trial(settings.drainDelay),
    );
    return {
      table: markdownTable(header, rows),
      notes: [
        `h2load ${h2loadArgs(0).slice(0, -1).join(' ')} against h2c, SIGTERM ${sigtermAfterMs} ms after it started.`,
        'Target: the server prints its done$/wait() result and exits by itself with code 0, in every trial; h2load counts are reported, not judged.',
      ],
      misses,
    };
  },
};
