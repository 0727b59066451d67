/**
 * Node's global `fetch` (undici's pooled keep-alive agent) in 100 concurrent loops against one
 * server process with the library's default options (and `timeout`), SIGTERM mid-load. A connect
 * refused after the SIGTERM is no cut (nothing was sent; in a deploy it goes elsewhere) and ends
 * its loop; any other failure is a cut. Target: median cuts per shutdown at most 2, and the
 * server prints its result and exits by itself with code 0.
 */
import type { ServerChild } from '../harness/child';
import { startLoops, type Loops } from '../harness/loops';
import { summarize } from '../harness/markdown';
import * as e2e from './scenario';

const clients = 100;
const sigtermAfterMs = 1_000;
const maxCutsMedian = 2;
const header = 'trial|drainDelay|sent|completed|cut|refused after SIGTERM|cuts by reason|loops ended after SIGTERM|old server';

/** One shutdown under fetch load; its cuts go to `cuts`. */
async function trial(n: number, drainDelay: number | undefined, cuts: number[]): Promise<e2e.TrialReport> {
  let server: ServerChild | undefined;
  let loops: Loops | undefined;
  const drainMs = (drainDelay ?? 0) + e2e.serverTimeoutMs;
  try {
    const started = await e2e.startE2eServer('http', drainDelay);
    server = started.child;
    const deadlineMs = sigtermAfterMs + drainMs + 10_000;
    loops = startLoops({ protocol: 'fetch', port: started.port, clients, deadlineMs, requestTimeoutMs: 10_000 });
    const loadStarted = Date.now();
    await loops.whenCompleted(clients, 10_000);
    await e2e.letLoadRun(sigtermAfterMs - (Date.now() - loadStarted));
    const signalledAt = Date.now();
    server.signal('SIGTERM');
    const loopsEnded = await loops.endedWithin(drainMs + 5_000);
    const endedAfter = Date.now() - signalledAt;
    loops.stop();
    const { ended } = await loops.report;
    const old = e2e.judgeOldServer(await e2e.awaitServerExit(server, signalledAt, drainMs + 10_000));

    const before = e2e.tally(ended, { to: signalledAt, connections: false });
    const total = e2e.tally(ended, { connections: false });
    // A refusal before the SIGTERM is no deploy's doing: it counts as a cut.
    const cut = total.failed + before.refused;
    cuts.push(cut);
    const reasons = new Map(total.failures);
    if (before.refused > 0) reasons.set('ECONNREFUSED before the SIGTERM', before.refused);
    if (!loopsEnded)
      old.misses.push(`the fetch loops were still running ${endedAfter} ms after the SIGTERM (no refusal ended them)`);
    const counts = [total.sent, total.completed, cut, total.refused - before.refused].map(String);
    const loopsCell = loopsEnded ? `${endedAfter} ms` : 'no, stopped';
    const row = [String(n), String(drainDelay ?? 'default'), ...counts, e2e.formatReasons(reasons), loopsCell, old.cell];
    return { rows: [row], misses: old.misses };
  } finally {
    loops?.stop();
    await loops?.report;
    await server?.kill();
  }
}

/** The fetch scenario: `trials` shutdowns under pooled `fetch` load. */
export const fetchScenario: e2e.Scenario = {
  name: 'fetch',
  async run(mode, settings) {
    const cuts: number[] = [];
    const label = `fetch · ${mode} (${e2e.busyLoopsFor(mode)} busy loops)`;
    const trials = e2e.trialsFor(settings, 3, 5); // the target is a median: --short takes 3 trials
    const { table, misses } = await e2e.runTrials(label, header, [settings.drainDelay], trials, (n, delay) =>
      trial(n, delay, cuts),
    );
    const median = summarize(cuts)?.median ?? 0;
    if (median > maxCutsMedian)
      misses.push(`median ${median} cut per shutdown (${cuts.join(', ')}), at most ${maxCutsMedian} allowed`);
    return {
      table,
      notes: [
        `${clients} loops of global fetch (undici keep-alive pool), SIGTERM ${sigtermAfterMs} ms into the load; a loop ends on ECONNREFUSED (one before the SIGTERM counts as a cut).`,
        `Target: median cut per shutdown ≤ ${maxCutsMedian}: median ${median} over ${cuts.length} trial(s) (${cuts.join(', ')}).`,
      ],
      misses,
    };
  },
};
