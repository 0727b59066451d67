/**
 * Node's global `fetch` (undici's pooled keep-alive agent) in 100 concurrent loops against one
 * server process with the library's default options (and `timeout`), SIGTERM mid-load. A connect
 * refused after the SIGTERM is no cut (nothing was sent; in a deploy it goes elsewhere) and ends
 * its loop; any other failure is a cut. Target: median cuts per shutdown at most 2, and the
 * server prints its result and exits by itself with code 0.
 */
import { busyLoopsFor, type Mode } from '../harness/busy-loops';
import { startFetchLoops, type Load } from './clients';
import { formatOldServer, formatReasons, markdownTable, median, oldServerMisses, Tally, type ScenarioReport } from './report';
import { letLoadRun, runTrials, serverTimeoutMs, trialsFor, type Scenario, type Settings } from './scenario';
import { awaitServerExit, startServer, type RunningServer } from './servers';

const clients = 100;
const sigtermAfterMs = 1_000;
const maxCutsMedian = 2;

async function trial(drainDelay: number | undefined): Promise<{ cells: string[]; cuts: number; misses: string[] }> {
  let server: RunningServer | undefined;
  let load: Load | undefined;
  try {
    const config = { protocol: 'http', timeout: serverTimeoutMs, maxDelayMs: 20, readiness: false } as const;
    server = await startServer('server', drainDelay === undefined ? config : { ...config, drainDelay });
    let signalled = false;
    load = startFetchLoops(`http://127.0.0.1:${server.port}/`, {
      clients,
      deadlineMs: sigtermAfterMs + (drainDelay ?? 0) + serverTimeoutMs + 10_000,
      requestTimeoutMs: 10_000,
      phase: () => (signalled ? 'after' : 'before'),
      stopWhenRefused: () => signalled,
    });
    const loadStarted = Date.now();
    await load.whenCompleted(clients, 10_000);
    await letLoadRun(sigtermAfterMs - (Date.now() - loadStarted));
    const signalledAt = Date.now();
    signalled = true;
    server.child.signal('SIGTERM');
    const loopsEnded = await load.ended((drainDelay ?? 0) + serverTimeoutMs + 5_000);
    const loopsEndedAfter = Date.now() - signalledAt;
    const tallies = await load.stop();
    const old = await awaitServerExit(server, signalledAt, (drainDelay ?? 0) + serverTimeoutMs + 10_000);

    const before = tallies.get('before') ?? new Tally();
    const total = new Tally().add(before).add(tallies.get('after') ?? new Tally());
    // A refusal before the SIGTERM is no deploy's doing: it counts as a cut.
    const cuts = total.failed + before.refused;
    const reasons = new Map(total.failures);
    if (before.refused > 0) reasons.set('ECONNREFUSED before the SIGTERM', before.refused);
    const misses = oldServerMisses(old);
    if (!loopsEnded)
      misses.push(`the fetch loops were still running ${loopsEndedAfter} ms after the SIGTERM (no refusal ended them)`);
    const cells = [
      drainDelay === undefined ? 'default' : String(drainDelay),
      String(total.sent),
      String(total.completed),
      String(cuts),
      String(total.refused - before.refused),
      formatReasons(reasons),
      loopsEnded ? `${loopsEndedAfter} ms` : 'no, stopped',
      formatOldServer(old),
    ];
    return { cells, cuts, misses };
  } finally {
    await load?.stop();
    await server?.child.kill();
  }
}

/** The fetch scenario: `trials` shutdowns under pooled `fetch` load. */
export const fetchScenario: Scenario = {
  name: 'fetch',
  async run(mode: Mode, settings: Settings): Promise<ScenarioReport> {
    const header = [
      'trial',
      'drainDelay',
      'sent',
      'completed',
      'cut',
      'refused after SIGTERM',
      'cuts by reason',
      'loops ended after SIGTERM',
      'old server',
    ];
    const cuts: number[] = [];
    const { rows, misses } = await runTrials(
      `fetch · ${mode} (${busyLoopsFor(mode)} busy loops)`,
      trialsFor(settings, 1, 5),
      header.length,
      async () => {
        const result = await trial(settings.drainDelay);
        cuts.push(result.cuts);
        return result;
      },
    );
    const cutMedian = median(cuts);
    if (cuts.length > 0 && cutMedian > maxCutsMedian)
      misses.push(`median ${cutMedian} cut per shutdown (${cuts.join(', ')}), at most ${maxCutsMedian} allowed`);
    return {
      table: markdownTable(header, rows),
      notes: [
        `${clients} loops of global fetch (undici keep-alive pool), SIGTERM ${sigtermAfterMs} ms into the load; a loop ends on ECONNREFUSED after the SIGTERM.`,
        `Target: median cut per shutdown ≤ ${maxCutsMedian}: median ${cutMedian} over ${cuts.length} trial(s) (${cuts.join(', ')}).`,
      ],
      misses,
    };
  },
};
