import type { ClientFailure, LoadReport, ServerLog } from './messages';

/** How many requests of a trial ended each way. `sent = completed + refused + reset + lost`. */
export interface Counts {
  /** Every request a client began (counted by the clients: a connect attempted for it, or it was written). */
  readonly sent: number;
  /** Status 200, the right `x-request-id`, and the whole body, byte for byte. */
  readonly completed: number;
  /** The connect got `ECONNREFUSED`: nothing was sent. The client stops there. */
  readonly refused: number;
  /** Failed at the client, and the server's application never saw its id: safe to retry. */
  readonly reset: number;
  /** The server's application received it, and the client got no whole, right response. */
  readonly lost: number;
}

/** A lost request, with what each side knew of it. */
export interface LostRequest extends ClientFailure {
  /** The server's response emitted `finish`: all of it was handed to the socket. */
  readonly finishedByServer: boolean;
}

/** The counts of one trial with the detail behind them. */
export interface Classification extends Counts {
  /** Resets on a connection's (HTTP/2: a session's) first request: a newcomer accepted, then closed. */
  readonly resetFresh: number;
  /** Resets on a reused keep-alive connection or session: the idle-close race. */
  readonly resetReused: number;
  /** Resets by what the client saw (`ECONNRESET`, `closed`, `RST_STREAM 7`, …). */
  readonly resetReasons: Record<string, number>;
  readonly lostRequests: LostRequest[];
  /** Things that must never happen whatever the library does: a broken test harness or log. */
  readonly anomalies: string[];
}

/**
 * Classes every request of a trial from both sides: the client's view (`load`) says whether it
 * completed, was refused or failed; the server's log says whether a failed one was ever received.
 */
export function classify(load: LoadReport, log: ServerLog): Classification {
  const received = new Set(log.received);
  const finished = new Set(log.finished);
  const anomalies: string[] = [];
  if (received.size !== log.received.length) anomalies.push(`${log.received.length - received.size} request ids received twice`);
  const seen = new Set<string>();
  const note = (id: string): void => {
    if (seen.has(id)) anomalies.push(`request id ${id} classed twice at the client`);
    seen.add(id);
  };

  for (const id of load.completed) {
    note(id);
    if (!received.has(id)) anomalies.push(`${id} completed but the server never received it`);
  }
  for (const id of load.refused) {
    note(id);
    if (received.has(id)) anomalies.push(`${id} refused but the server received it`);
  }
  let resetFresh = 0;
  let resetReused = 0;
  const resetReasons: Record<string, number> = {};
  const lostRequests: LostRequest[] = [];
  for (const failure of load.failures) {
    note(failure.id);
    if (received.has(failure.id)) {
      lostRequests.push({ ...failure, finishedByServer: finished.has(failure.id) });
      continue;
    }
    if (failure.fresh) resetFresh++;
    else resetReused++;
    const reason = failure.sent ? failure.reason : `${failure.reason} (before sending)`;
    resetReasons[reason] = (resetReasons[reason] ?? 0) + 1;
  }
  const unknown = log.received.filter((id) => !seen.has(id));
  if (unknown.length > 0)
    anomalies.push(
      `${unknown.length} ids received by the server that no client reported (e.g. ${unknown.slice(0, 3).join(', ')})`,
    );

  const completed = load.completed.length;
  const refused = load.refused.length;
  const reset = resetFresh + resetReused;
  const lost = lostRequests.length;
  if (load.sent !== completed + refused + reset + lost) {
    anomalies.push(`the clients began ${load.sent} requests but classed ${completed + refused + reset + lost}`);
  }
  return { sent: load.sent, completed, refused, reset, lost, resetFresh, resetReused, resetReasons, lostRequests, anomalies };
}
