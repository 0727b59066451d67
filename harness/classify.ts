/** How every request of a trial ended, from the clients' side and the server's. */
import type { LoopsReport } from './protocol';

/** A lost request as its client saw it, and whether the server's response emitted `finish`. */
export type LostRequest = { id: string; reason: string; sent: boolean; fresh: boolean; finishedByServer: boolean };

/** How every request of a trial ended, from both sides. `sent = completed + refused + reset + lost`. */
export interface Classification {
  /** Every request a client began (counted as it began: a connect attempted for it, or it was written). */
  readonly sent: number;
  /** Status 200 and whatever else the loops checked (stress: the right `x-request-id`, the whole body byte for byte). */
  readonly completed: number;
  /** The connect got `ECONNREFUSED`: nothing was sent. The client stops there. */
  readonly refused: number;
  /** Failed at the client, and the server's application never saw its id: safe to retry. */
  readonly reset: number;
  /** The server's application received it, and the client got no whole, right response. */
  readonly lost: number;
  /** Resets on a connection's (HTTP/2: a session's) first request: a newcomer accepted, then closed. */
  readonly resetFresh: number;
  /** Resets on a reused keep-alive connection or session: the idle-close race. */
  readonly resetReused: number;
  /** Resets by what the client saw (`ECONNRESET`, `closed`, `RST_STREAM 7`, …). */
  readonly resetReasons: Record<string, number>;
  readonly lostRequests: LostRequest[];
  /** Things that must never happen whatever the system does: a broken harness or log. */
  readonly anomalies: string[];
}

/**
 * Classes every request of a trial from both sides: the client's view (`loops`) says whether it
 * completed, was refused or failed; the server's log (`received`, `finished`) says whether a
 * failed one was ever received.
 */
export function classify(loops: LoopsReport, log: { received: readonly string[]; finished: readonly string[] }): Classification {
  const received = new Set(log.received);
  const finished = new Set(log.finished);
  const anomalies: string[] = [];
  if (received.size !== log.received.length) anomalies.push(`${log.received.length - received.size} request ids received twice`);
  const seen = new Set<string>();
  let completed = 0;
  let refused = 0;
  let resetFresh = 0;
  let resetReused = 0;
  const resetReasons: Record<string, number> = {};
  const lostRequests: LostRequest[] = [];
  for (const { id, outcome } of loops.ended) {
    if (seen.has(id)) anomalies.push(`request id ${id} classed twice at the client`);
    seen.add(id);
    if (outcome.kind === 'completed') {
      completed++;
      if (!received.has(id)) anomalies.push(`${id} completed but the server never received it`);
    } else if (outcome.kind === 'refused') {
      refused++;
      if (received.has(id)) anomalies.push(`${id} refused but the server received it`);
    } else {
      const reason = outcome.kind === 'wrong' ? `bad response: ${outcome.reason}` : outcome.reason;
      if (received.has(id)) {
        lostRequests.push({ id, reason, sent: outcome.sent, fresh: outcome.fresh, finishedByServer: finished.has(id) });
        continue;
      }
      if (outcome.fresh) resetFresh++;
      else resetReused++;
      const shown = outcome.sent ? reason : `${reason} (before sending)`;
      resetReasons[shown] = (resetReasons[shown] ?? 0) + 1;
    }
  }
  const unknown = log.received.filter((id) => !seen.has(id));
  if (unknown.length > 0)
    anomalies.push(
      `${unknown.length} ids received by the server that no client reported (e.g. ${unknown.slice(0, 3).join(', ')})`,
    );
  const reset = resetFresh + resetReused;
  const lost = lostRequests.length;
  if (loops.began !== completed + refused + reset + lost)
    anomalies.push(`the clients began ${loops.began} requests but classed ${completed + refused + reset + lost}`);
  return { sent: loops.began, completed, refused, reset, lost, resetFresh, resetReused, resetReasons, lostRequests, anomalies };
}
