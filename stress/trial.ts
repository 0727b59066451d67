/**
 * One stress trial: a fresh server process (rx-graceful with a `state$` subscriber, the stress
 * workload) and a fresh load process (100 request loops, back to back or with think times), both
 * of the harness; the server shuts down at a moment drawn from the trial's seed; every request is
 * then classed from both sides, and the trial passes only if nothing went wrong.
 */
import type { ShutdownResult } from '../src';
import { killLeftovers, startLoad, startServer } from '../harness/child';
import { classify, type Classification } from '../harness/classify';
import { errorMessage } from '../harness/cli';
import type { AtShutdown, DoneEvent, LoopsReport } from '../harness/protocol';
import { seeded } from '../harness/workload';

export const protocols = ['http', 'https', 'h2'] as const;
export type Protocol = (typeof protocols)[number];

/** The run's flags: shutdown 0.2–1 s into the load (`quick`) or 0.5–4 s, clients' pause after a request, `idleLinger`. */
export type RunFlags = { readonly quick: boolean; readonly thinkMaxMs: number; readonly idleLinger: number | undefined };

/** What a trial gave: its requests classed, the shutdown, and what went wrong with the trial itself. */
export interface TrialResult extends Classification {
  readonly trial: number;
  readonly protocol: Protocol;
  /** Draws the moment of the shutdown and the think times: the same seed, the same trial. */
  readonly seed: number;
  /** ms from the server's first request to its `shutdown()` call. */
  readonly shutdownAfterMs: number;
  /** The server's state when it called `shutdown()`: connections (HTTP/2: sessions) open, active; requests so far. */
  readonly atShutdown: AtShutdown | null;
  /** What `wait()` gave. */
  readonly shutdown: ShutdownResult | null;
  /** Connections (HTTP/2: sessions) the clients opened. */
  readonly connections: number;
  /** Wall time of the whole trial, process start-up included, ms. */
  readonly wallMs: number;
  /** What went wrong with the trial itself: a process that failed, did not answer or did not exit by itself. */
  readonly problems: string[];
  /** No problem, no anomaly, 0 lost, some completed, `sent = completed + refused + reset + lost`, 0 killed. */
  readonly ok: boolean;
}

const timeoutMs = 5_000;
/** After its last message, a child has this long to exit by itself (its IPC channel is closed). */
const exitMs = 3_000;

/** Runs trial `trial` in a fresh server and load process, and classes every request. */
export async function runTrial(protocol: Protocol, seed: number, trial: number, flags: RunFlags): Promise<TrialResult> {
  const began = Date.now();
  const shutdownAfterMs = flags.quick ? seeded(seed)(200, 1_000) : seeded(seed)(500, 4_000);
  const trigger = { kind: 'afterFirstRequest', delayMs: shutdownAfterMs } as const;
  const options = flags.idleLinger === undefined ? {} : { idleLinger: flags.idleLinger };
  // Every loop should stop on ECONNREFUSED well before: this only bounds a trial that goes wrong.
  const deadlineMs = shutdownAfterMs + timeoutMs + 3_000;
  const problems: string[] = [];
  let loops: LoopsReport = { began: 0, ended: [], connections: 0, atDeadline: 0 };
  let done: DoneEvent | undefined;
  try {
    const config = { system: 'rx-graceful-state', protocol, handler: { kind: 'workload' }, trigger, timeoutMs, options } as const;
    const inherit = { output: 'inherit' } as const;
    const [server, load] = await Promise.all([startServer(config, inherit), startLoad('load', inherit)]);
    // 100 loops (HTTP/2: on 10 sessions), each response checked byte for byte.
    const args = { protocol, port: server.port, clients: 100, deadlineMs, seed, workload: true };
    const loading = load.call('loops', { ...args, thinkMaxMs: flags.thinkMaxMs }, deadlineMs + 10_000);
    const [loaded, finished] = await Promise.allSettled([loading, server.child.next('done', deadlineMs + 10_000)]);
    if (finished.status === 'rejected')
      problems.push(`the server reported no finished shutdown: ${errorMessage(finished.reason)}`);
    else if (finished.value.stateAfter?.open !== 0 || finished.value.stateAfter.phase !== 'stopped')
      problems.push(`after wait(): ${JSON.stringify(finished.value.stateAfter)}`);
    done = finished.status === 'fulfilled' ? finished.value : undefined;
    if (loaded.status === 'fulfilled') loops = loaded.value;
    else problems.push(`the load process reported nothing: ${errorMessage(loaded.reason)}`);
    if (loops.atDeadline > 0) problems.push(`${loops.atDeadline} client loops were still running at the load deadline`);

    load.disconnect();
    const [serverExit, loadExit] = await Promise.all([server.child.exits(exitMs), load.exits(exitMs)]);
    if (serverExit === undefined)
      problems.push(`the server process did not exit by itself within ${exitMs} ms of its drain (a handle left open)`);
    if (loadExit === undefined) problems.push(`the load process did not exit by itself within ${exitMs} ms`);
  } catch (error) {
    problems.push(errorMessage(error));
  } finally {
    await killLeftovers();
  }

  const classified = classify(loops, done ?? { received: [], finished: [] });
  const { sent, completed, refused, reset, lost, anomalies } = classified;
  const shutdown = done?.result ?? null;
  const counted = completed > 0 && sent === completed + refused + reset + lost;
  const ok = problems.length + anomalies.length + lost === 0 && counted && shutdown?.killed === 0;
  const measured = { shutdownAfterMs, atShutdown: done?.atShutdown ?? null, shutdown, connections: loops.connections };
  return { trial, protocol, seed, ...measured, wallMs: Date.now() - began, ...classified, problems, ok };
}
