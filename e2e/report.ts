/**
 * What the e2e prints: the tallies of the client loops, how each old server ended, the per-trial
 * Markdown table of a scenario and the checks against its targets.
 */
import { markdownTable } from '../harness/markdown';
import { summarize } from '../harness/stats';
import type { ShutdownResult } from '../src';
import type { Exit } from '../harness/child';

export { markdownTable };

/** Requests of one stretch of a run, counted by the clients. */
export class Tally {
  sent = 0;
  completed = 0;
  /** Connects refused (`ECONNREFUSED`): nothing was sent. */
  refused = 0;
  /** Every failed request, by reason (error code, status, how the connection ended). */
  readonly failures = new Map<string, number>();

  /** Failed requests: neither completed nor refused. */
  get failed(): number {
    let total = 0;
    for (const count of this.failures.values()) total += count;
    return total;
  }

  fail(reason: string): void {
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }

  /** Adds `other`'s counts to this one. */
  add(other: Tally): this {
    this.sent += other.sent;
    this.completed += other.completed;
    this.refused += other.refused;
    for (const [reason, count] of other.failures) this.failures.set(reason, (this.failures.get(reason) ?? 0) + count);
    return this;
  }
}

/** How an old server process (one sent SIGTERM, or a cluster worker told to shut down) ended. */
export interface OldServer {
  readonly pid: number;
  /** Undefined: still running when the e2e stopped waiting (it was then killed). */
  readonly exit: Exit | undefined;
  /** From the shutdown's start until the orchestrator saw the exit, ms. */
  readonly exitMs: number | undefined;
  /** Its `done$`/`wait()` result, if it printed one before it exited. */
  readonly result: ShutdownResult | undefined;
  /** How long the e2e waited for the exit, ms. */
  readonly waitedMs: number;
  /** Its last lines of output, indented, shown when something went wrong. */
  readonly lastLines?: string;
}

/** "ECONNRESET on a reused connection ×2; status 502 ×1", or "—". */
export function formatReasons(failures: ReadonlyMap<string, number>): string {
  if (failures.size === 0) return '—';
  return [...failures]
    .sort((a, b) => b[1] - a[1])
    .map(([reason, count]) => `${reason} ×${count}`)
    .join('; ');
}

/** One cell: how an old server ended and what its `wait()` said. */
export function formatOldServer(server: OldServer): string {
  const ended =
    server.exit === undefined
      ? `still running after ${server.waitedMs} ms, killed`
      : server.exit.signal !== null
        ? `killed by ${server.exit.signal}`
        : `code ${String(server.exit.code)} after ${String(server.exitMs)} ms`;
  const result = server.result;
  const printed =
    result === undefined
      ? 'no result printed'
      : `result printed (killed ${result.killed}, drained ${result.drained}, closedIdle ${result.closedIdle}, ` +
        `${Math.round(result.durationMs)} ms${result.timedOut ? ', timed out' : ''}${result.forced ? ', forced' : ''})`;
  return `pid ${server.pid}: ${ended}, ${printed}`;
}

/** What an old server did wrong (not exited by itself with code 0, no result printed), or nothing. */
export function oldServerMisses(server: OldServer): string[] {
  const misses: string[] = [];
  if (server.exit === undefined) misses.push(`server pid ${server.pid} did not exit by itself within ${server.waitedMs} ms`);
  else if (server.exit.code !== 0)
    misses.push(`server pid ${server.pid} exited with ${server.exit.signal ?? `code ${String(server.exit.code)}`}`);
  if (server.result === undefined) misses.push(`server pid ${server.pid} printed no done$/wait() result`);
  if (misses.length > 0 && server.lastLines !== undefined)
    misses.push(`server pid ${server.pid}'s last lines:\n${server.lastLines}`);
  return misses;
}

/** The median of `values` (0 for none). */
export function median(values: readonly number[]): number {
  return summarize(values)?.median ?? 0;
}

/** What one scenario in one mode printed, and whether it met its targets. */
export interface ScenarioReport {
  /** The Markdown table, one row per trial. */
  readonly table: string;
  /** Lines printed under the table: targets, evidence. */
  readonly notes: readonly string[];
  /** Every target missed, each saying what and by how much; empty: passed. */
  readonly misses: readonly string[];
}

/** A table row for a trial that broke: its first cells, then the error's first line, padded to `width` cells. */
export function errorRow(first: readonly string[], error: unknown, width: number): string[] {
  const text = `error: ${errorMessage(error).split('\n')[0] ?? ''}`;
  return [...first, text, ...Array.from({ length: Math.max(0, width - first.length - 1) }, () => '—')];
}

/** An error's message (or the value, for a throw of a non-Error). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
