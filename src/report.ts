import type { ProtocolCounts, ProtocolSplit, ShutdownResult } from './core/drain';
import type { GroupShutdownResult } from './group';

/**
 * A shutdown's result as the fields of one structured log record (pino, bunyan, winston): the same
 * field names and types for every shutdown, every time in whole ms from the call that started the
 * shutdown, `null` for a time or a split that does not apply.
 *
 * @example
 * logger.info(shutdownReport(await graceful.wait()), 'shutdown');
 * // {"connections":3,"closedIdle":1,"drained":2,"killed":0,"hijacked":0,"timedOut":false,"forced":false,
 * //  "durationMs":1002,"lastIdleCloseMs":1002,"lastDrainedCloseMs":451,"lastGracefulCloseMs":1002,"byProtocol":null,...}
 */
export interface ShutdownReport {
  /** Every connection the shutdown ended: `closedIdle + drained + killed`. */
  readonly connections: number;
  /** Connections closed with no work in progress. */
  readonly closedIdle: number;
  /** Connections that finished their work, then closed. */
  readonly drained: number;
  /** Connections destroyed with work in progress by the deadline or `force()`. */
  readonly killed: number;
  /** Hijacked (upgraded) connections open when the drain began. */
  readonly hijacked: number;
  /** The deadline ended the shutdown (for a group: a member's). */
  readonly timedOut: boolean;
  /** `force()` ended the shutdown (for a group: a member's). */
  readonly forced: boolean;
  /** From the call that started the shutdown to its end, in whole ms. */
  readonly durationMs: number;
  /** When the last idle connection closed, in whole ms; `null` with none. */
  readonly lastIdleCloseMs: number | null;
  /** When the last drained connection closed, in whole ms; `null` with none. */
  readonly lastDrainedCloseMs: number | null;
  /** When the last graceful close (idle or drained) happened, in whole ms; `null` with none. */
  readonly lastGracefulCloseMs: number | null;
  /** The counts by protocol, for a server that speaks HTTP/2; `null` for `http` and `https` servers. */
  readonly byProtocol: ProtocolSplit | null;
}

/**
 * One member's part in a group's report: its position in the group's list, and its own report.
 *
 * @example
 * for (const { index, killed } of shutdownReport(await group.wait()).members) console.log(index, killed);
 */
export interface MemberReport extends ShutdownReport {
  /** Where the member stands in the array given to `new GracefulGroup(...)`, from 0. */
  readonly index: number;
}

/**
 * A group's shutdown as log fields: the totals, and `members`, one report per member that took part.
 *
 * @example
 * logger.info(shutdownReport(await group.wait()), 'group shutdown');
 */
export interface GroupShutdownReport extends ShutdownReport {
  /** One report per member that took part, in the order the members were given. */
  readonly members: readonly MemberReport[];
}

/**
 * Turns the result of a shutdown (`wait()`, `done$`) into the fields of one structured log record:
 * see `ShutdownReport`. For a `GracefulGroup`'s result, the totals with one report per member in
 * `members`. Pair it with `shutdownSummary` for the message.
 *
 * @example
 * const result = await graceful.wait();
 * logger.info(shutdownReport(result), shutdownSummary(result)); // pino: the fields, then the message
 */
export function shutdownReport(result: GroupShutdownResult): GroupShutdownReport;
export function shutdownReport(result: ShutdownResult): ShutdownReport;
export function shutdownReport(result: ShutdownResult | GroupShutdownResult): ShutdownReport | GroupShutdownReport {
  const report = reportOf(result);
  if (!isGroupResult(result)) return report;
  return { ...report, members: result.results.map(({ index, result: own }) => ({ index, ...reportOf(own) })) };
}

/**
 * One line that says what a shutdown did, for a log message or a terminal. Its form, every time in
 * whole ms from the call that started the shutdown (parts with a count of 0 are left out):
 *
 * `shutdown[ of M servers]: N connections in D ms[, timed out][, forced] — I idle closed by +T ms,
 * R drained by +T ms, K killed at +D ms[; H hijacked][; HTTP/1: …; HTTP/2: …]`
 *
 * (`at` instead of `by` for a count of 1, and for what one server killed, all at its end; the split
 * by protocol is there for an HTTP/2 server, or a group with one.)
 *
 * @example
 * graceful.done$.subscribe((result) => console.log(shutdownSummary(result)));
 * // shutdown: 240 connections in 5000 ms, timed out — 180 idle closed by +1 ms, 58 drained by +412 ms, 2 killed at +5000 ms
 */
export function shutdownSummary(result: ShutdownResult | GroupShutdownResult): string {
  const group = isGroupResult(result);
  const report = reportOf(result);
  const { connections, closedIdle, drained, killed, hijacked, durationMs, byProtocol } = report;
  let line = `shutdown${group ? ` of ${counted(result.results.length, 'server')}` : ''}: `;
  line += `${counted(connections, 'connection')} in ${durationMs} ms`;
  if (report.timedOut) line += ', timed out';
  if (report.forced) line += ', forced';
  const parts: string[] = [];
  if (closedIdle > 0) parts.push(`${closedIdle} idle closed${when(closedIdle === 1, report.lastIdleCloseMs)}`);
  if (drained > 0) parts.push(`${drained} drained${when(drained === 1, report.lastDrainedCloseMs)}`);
  // A server destroys its survivors at its end; a group's members may end at different times.
  if (killed > 0) parts.push(`${killed} killed${when(!group, durationMs)}`);
  if (parts.length > 0) line += ` — ${parts.join(', ')}`;
  if (hijacked > 0) line += `; ${hijacked} hijacked`;
  if (byProtocol !== null) line += `; HTTP/1: ${countsLine(byProtocol.http1)}; HTTP/2: ${countsLine(byProtocol.http2)}`;
  return line;
}

function reportOf(result: ShutdownResult): ShutdownReport {
  return {
    connections: result.closedIdle + result.drained + result.killed,
    closedIdle: result.closedIdle,
    drained: result.drained,
    killed: result.killed,
    hijacked: result.hijacked,
    timedOut: result.timedOut,
    forced: result.forced,
    durationMs: Math.round(result.durationMs),
    lastIdleCloseMs: wholeMs(result.lastIdleCloseMs),
    lastDrainedCloseMs: wholeMs(result.lastDrainedCloseMs),
    lastGracefulCloseMs: wholeMs(result.lastGracefulCloseMs),
    byProtocol:
      result.byProtocol === undefined ? null : { http1: { ...result.byProtocol.http1 }, http2: { ...result.byProtocol.http2 } },
  };
}

function isGroupResult(result: ShutdownResult | GroupShutdownResult): result is GroupShutdownResult {
  return Array.isArray((result as Partial<GroupShutdownResult>).results);
}

function wholeMs(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.round(ms);
}

/** ` at +T ms` when it all happened then, ` by +T ms` when that was the last of it; nothing when the time is not known. */
function when(exact: boolean, ms: number | null): string {
  return ms === null ? '' : ` ${exact ? 'at' : 'by'} +${ms} ms`;
}

function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function countsLine({ closedIdle, drained, killed }: ProtocolCounts): string {
  const parts: string[] = [];
  if (closedIdle > 0) parts.push(`${closedIdle} idle closed`);
  if (drained > 0) parts.push(`${drained} drained`);
  if (killed > 0) parts.push(`${killed} killed`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}
