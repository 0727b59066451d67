/** The stress run's output: a Markdown table per run, one JSON line per trial, and what the columns mean. */
import { markdownTable } from '../harness/markdown';
import type { TrialResult } from './trial';

const columns = [
  'trial',
  'protocol',
  'seed',
  'shutdown at ms',
  'open/active at shutdown',
  'sent',
  'completed',
  'refused',
  'reset',
  'lost',
  'killed',
  'drain ms',
  'trial s',
  'ok',
] as const;

function sum(results: readonly TrialResult[], pick: (result: TrialResult) => number): number {
  return results.reduce((total, result) => total + pick(result), 0);
}

/** One row per trial, then the totals. */
export function trialTable(results: readonly TrialResult[]): string {
  const drains = results.flatMap((r) => (r.shutdown === undefined ? [] : [r.shutdown.durationMs]));
  const rows = results.map((r) => [
    r.trial,
    r.protocol,
    r.seed,
    r.shutdownAfterMs,
    r.atShutdown === undefined ? '–' : `${r.atShutdown.open}/${r.atShutdown.active}`,
    r.sent,
    r.completed,
    r.refused,
    r.reset,
    r.lost,
    r.shutdown?.killed ?? '–',
    r.shutdown === undefined ? '–' : Math.round(r.shutdown.durationMs),
    (r.wallMs / 1000).toFixed(1),
    r.ok ? 'yes' : '**NO**',
  ]);
  rows.push([
    '**total**',
    [...new Set(results.map((r) => r.protocol))].join('+'),
    '',
    '',
    '',
    sum(results, (r) => r.sent),
    sum(results, (r) => r.completed),
    sum(results, (r) => r.refused),
    sum(results, (r) => r.reset),
    `**${sum(results, (r) => r.lost)}**`,
    sum(results, (r) => r.shutdown?.killed ?? 0),
    drains.length === 0 ? '–' : `max ${Math.round(Math.max(...drains))}`,
    (sum(results, (r) => r.wallMs) / 1000).toFixed(1),
    `${results.filter((r) => r.ok).length}/${results.length}`,
  ]);
  return markdownTable(columns, rows, 2);
}

/** How the resets of a run split: newcomers against reused connections, and what the clients saw. */
export function resetSummary(results: readonly TrialResult[]): string {
  const reasons: Record<string, number> = {};
  for (const r of results)
    for (const [reason, count] of Object.entries(r.resetReasons)) reasons[reason] = (reasons[reason] ?? 0) + count;
  const listed = Object.entries(reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, count]) => `${reason}: ${count}`)
    .join(', ');
  const fresh = sum(results, (r) => r.resetFresh);
  const reused = sum(results, (r) => r.resetReused);
  const trialsWithReset = results.filter((r) => r.reset > 0).length;
  return (
    `Resets: ${fresh + reused} in ${trialsWithReset} of ${results.length} trials ` +
    `(${reused} on a reused keep-alive connection or session, ${fresh} on a new one)` +
    (listed === '' ? '.' : `; as the clients saw them: ${listed}.`)
  );
}

/** One trial as one JSON line (the id lists are left out; lost requests are listed in full). */
export function jsonLine(result: TrialResult): string {
  return JSON.stringify({
    trial: result.trial,
    protocol: result.protocol,
    seed: result.seed,
    shutdownAfterMs: result.shutdownAfterMs,
    atShutdown: result.atShutdown ?? null,
    sent: result.sent,
    completed: result.completed,
    refused: result.refused,
    reset: result.reset,
    lost: result.lost,
    resetReused: result.resetReused,
    resetFresh: result.resetFresh,
    resetReasons: result.resetReasons,
    lostRequests: result.lostRequests,
    shutdown: result.shutdown ?? null,
    connections: result.connections,
    wallMs: result.wallMs,
    anomalies: result.anomalies,
    problems: result.problems,
    ok: result.ok,
  });
}

/** What the columns mean, and why resets are not losses. */
export const legend = `Columns:
- shutdown at ms: the server called shutdown() this long after its first request (drawn from the trial's seed).
- open/active at shutdown: connections (HTTP/2: sessions) open, and of those with a request in flight, at that call.
- sent: requests the clients began, one id each (header x-request-id).
- completed: status 200, the right x-request-id, and the whole body, checked byte for byte against its length and content.
- refused: the connect got ECONNREFUSED: no byte was sent. The client stops there (a real one would go to another instance).
- reset: the client got no whole response, and the server's application never received that id: the connection
  was closed or reset by the server before the request reached it (HTTP/2: the stream was refused after GOAWAY).
  Nothing the server accepted is lost, and the request is safe to retry.
- lost: the server's application received the id, and the client got no whole, right response. Must be 0.
- killed, drain ms: from the server's wait(): connections destroyed at the 5 s deadline, and the shutdown's duration.
- sent = completed + refused + reset + lost in every trial (checked).

Why resets exist (the idle-close race, RFC 9112 §9.3 and §9.6): a keep-alive connection between two requests is
idle, and a server that shuts down has to close it. A client may write its next request at the very instant the
server closes the connection; that request crosses the close on the wire, the server never reads it, and the
client sees the connection end (ECONNRESET, EPIPE or a bare close) with no response. RFC 9112 §9.3.1 lets the
client retry such a request, since the server never processed it. rx-graceful narrows the window as far as the
protocol allows: an idle connection lingers for idleLinger (1000 ms by default) from the drain's start, and is
closed only once the process has read what the kernel holds for it; a request that arrived is served with
Connection: close instead; a request
sent after a response that announced close is never processed (RFC 9112 §9.6), so it is a reset, never a loss.
Over HTTP/2, GOAWAY tells the client which streams were not processed (RFC 9113 §6.8): those count as resets.`;
