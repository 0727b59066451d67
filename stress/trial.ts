/**
 * One stress trial: a server process and a load process, forked fresh; the server shuts down at
 * a moment drawn from the trial's seed; each request is then classed from both sides.
 */
import { join } from 'node:path';
import { startTs } from '../harness/child';
import { classify, type Classification } from './classify';
import type {
  LoadCommand,
  LoadConfig,
  LoadMessage,
  LoadReport,
  Protocol,
  ServerConfig,
  ServerLog,
  ServerMessage,
  ShutdownFigures,
} from './messages';
import { Prng } from './prng';

/** What a trial runs: its protocol, seed and load. */
export interface TrialOptions {
  readonly protocol: Protocol;
  /** Decides the moment of the shutdown; the same seed, the same moment. */
  readonly seed: number;
  /** Shut down 0.2–1 s into the load instead of 0.5–4 s. */
  readonly quick?: boolean;
  /** Its number in the run, for the report (default 1). */
  readonly trial?: number;
  /** Request loops (default 100). */
  readonly clients?: number;
  /** HTTP/2: loops per session (default 10: 100 loops on 10 sessions). */
  readonly streamsPerSession?: number;
  /** `GracefulServer`'s `timeout`, ms (default 5000). */
  readonly timeoutMs?: number;
  /** Each client pauses 0 to this many ms after a response (default 0: back to back). */
  readonly thinkMaxMs?: number;
  /** `GracefulServer`'s `idleLinger`, ms (default: the library's). */
  readonly idleLinger?: number;
}

/** What a trial gave: its requests classed, the shutdown, and what went wrong with the trial itself. */
export interface TrialResult extends Classification {
  readonly trial: number;
  readonly protocol: Protocol;
  readonly seed: number;
  /** ms from the server's first request to its `shutdown()` call. */
  readonly shutdownAfterMs: number;
  /** The server's state when it called `shutdown()`: connections (HTTP/2: sessions) open, active; requests so far. */
  readonly atShutdown: { readonly open: number; readonly active: number; readonly received: number } | undefined;
  /** What `wait()` gave. */
  readonly shutdown: ShutdownFigures | undefined;
  /** Connections (HTTP/2: sessions) the clients opened. */
  readonly connections: number;
  /** Loops still running at the load's deadline (they should all have stopped on `ECONNREFUSED`). */
  readonly atDeadline: number;
  /** Wall time of the whole trial, process start-up included, ms. */
  readonly wallMs: number;
  /** What went wrong with the trial itself: a process that failed, did not answer or did not exit by itself. */
  readonly problems: string[];
  /** No request lost, no anomaly, no problem. */
  readonly ok: boolean;
}

const startupMs = 30_000;
/** After its last message, a child has this long to exit by itself (its IPC channel is closed). */
const exitMs = 3_000;

const nothingLoaded: LoadReport = { sent: 0, completed: [], refused: [], failures: [], connections: 0, atDeadline: 0 };
const nothingLogged: ServerLog = { received: [], finished: [] };

/** The moment of the shutdown, ms after the server's first request. */
export function shutdownMoment(seed: number, quick: boolean): number {
  const prng = new Prng(seed);
  return quick ? prng.between(200, 1_000) : prng.between(500, 4_000);
}

/** Runs one trial in a fresh server and load process, and classes every request. */
export async function runTrial(options: TrialOptions): Promise<TrialResult> {
  const began = Date.now();
  const quick = options.quick ?? false;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const shutdownAfterMs = shutdownMoment(options.seed, quick);
  const serverConfig: ServerConfig =
    options.idleLinger === undefined
      ? { protocol: options.protocol, timeoutMs, shutdownAfterMs }
      : { protocol: options.protocol, timeoutMs, shutdownAfterMs, idleLinger: options.idleLinger };
  const loadConfig: LoadConfig = {
    protocol: options.protocol,
    clients: options.clients ?? 100,
    streamsPerSession: options.streamsPerSession ?? 10,
    // Every loop should stop on ECONNREFUSED well before: this only bounds a trial that goes wrong.
    deadlineMs: shutdownAfterMs + timeoutMs + 3_000,
    thinkMaxMs: options.thinkMaxMs ?? 0,
    seed: options.seed,
  };
  const problems: string[] = [];
  let loadReport = nothingLoaded;
  let serverLog = nothingLogged;
  let atShutdown: TrialResult['atShutdown'];
  let shutdown: ShutdownFigures | undefined;

  const server = startTs<ServerMessage>('server', join(__dirname, 'server.ts'), {
    args: [JSON.stringify(serverConfig)],
    output: 'inherit',
  });
  const load = startTs<LoadMessage>('load', join(__dirname, 'load.ts'), {
    args: [JSON.stringify(loadConfig)],
    output: 'inherit',
  });
  try {
    const [listening] = await Promise.all([server.next('listening', startupMs), load.next('ready', startupMs)]);
    load.send({ type: 'go', port: listening.port } satisfies LoadCommand);

    const bound = loadConfig.deadlineMs + 10_000;
    const [started, done, loaded] = await Promise.allSettled([
      server.next('shutdown', bound),
      server.next('done', bound),
      load.next('done', bound),
    ]);
    if (started.status === 'fulfilled')
      atShutdown = { open: started.value.open, active: started.value.active, received: started.value.receivedBefore };
    if (done.status === 'fulfilled') {
      shutdown = done.value.result;
      serverLog = done.value.log;
      if (done.value.stateAfter.open !== 0 || done.value.stateAfter.phase !== 'stopped')
        problems.push(`after wait(): ${JSON.stringify(done.value.stateAfter)}`);
    } else {
      problems.push(`the server reported no finished shutdown: ${errorMessage(done.reason)}`);
    }
    if (loaded.status === 'fulfilled') loadReport = loaded.value.report;
    else problems.push(`the load process reported nothing: ${errorMessage(loaded.reason)}`);
    if (loadReport.atDeadline > 0) problems.push(`${loadReport.atDeadline} client loops were still running at the load deadline`);

    const [serverExit, loadExit] = await Promise.all([server.exits(exitMs), load.exits(exitMs)]);
    if (serverExit === undefined)
      problems.push(`the server process did not exit by itself within ${exitMs} ms of its drain (a handle left open)`);
    if (loadExit === undefined) problems.push(`the load process did not exit by itself within ${exitMs} ms`);
  } catch (error) {
    problems.push(errorMessage(error));
  } finally {
    await Promise.all([server.kill(), load.kill()]);
  }

  const classification = classify(loadReport, serverLog);
  return {
    trial: options.trial ?? 1,
    protocol: options.protocol,
    seed: options.seed,
    shutdownAfterMs,
    atShutdown,
    shutdown,
    connections: loadReport.connections,
    atDeadline: loadReport.atDeadline,
    wallMs: Date.now() - began,
    ...classification,
    problems,
    ok: classification.lost === 0 && classification.anomalies.length === 0 && problems.length === 0,
  };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
