import { IncomingMessage, ServerResponse } from 'node:http';
import { Http2ServerRequest } from 'node:http2';
import type { Socket } from 'node:net';
import type { CancelReason } from '../core/drain';
import { describeValue, RequestAbortedError, RequestAbortKind } from '../errors';
import type { Connection, ConnectionRegistry } from './connection-registry';

/** A request a handler can ask a signal for: HTTP/1's, or HTTP/2's compatibility request. */
export type SignalRequest = IncomingMessage | Http2ServerRequest;

/** Where a request's exchange is when its handler asks for a signal. */
type Exchange = 'in flight' | 'client gone' | 'over';

/**
 * The `AbortSignal`s handed out for requests, one per request, made when a handler first asks:
 * a request that never asks costs nothing (the only per-request work is a size check when its
 * response closes). A signal aborts when its client goes away before the response has finished,
 * or when the drain cancels the work in flight (`cancel`): `cancelAhead` before the deadline, or
 * as the deadline or `force()` ends the shutdown, before anything is destroyed.
 *
 * HTTP/1 finds a request's response through the connection (Node links a response to its request,
 * not the other way): the exchange is in flight while the connection has a response pending.
 * HTTP/2 follows the request's stream, which Node reports `aborted` when it closes before the
 * server has ended its side.
 */
export class RequestSignals {
  /** Every signal handed out, by its request: asking twice gives the same one. */
  private readonly signals = new WeakMap<SignalRequest, AbortSignal>();
  /** The signals that may still abort: requests in flight that asked for one. */
  private readonly live = new Map<SignalRequest, AbortController>();
  /** HTTP/1: the requests in `live` by the socket they came on, for when it closes. */
  private readonly bySocket = new Map<Socket, Set<IncomingMessage>>();
  /** The shutdown has cancelled the work in flight: a signal asked for now aborts at once. */
  private cancelled: CancelReason | undefined;

  constructor(private readonly registry: ConnectionRegistry) {}

  /**
   * The signal of `req`, made on the first call. Throws a `TypeError` for anything but a request
   * of this server.
   */
  signalFor(req: SignalRequest): AbortSignal {
    const known = this.signals.get(req);
    if (known !== undefined) return known;
    const exchange = this.exchangeOf(req);
    const controller = new AbortController();
    this.signals.set(req, controller.signal);
    if (exchange === 'client gone') controller.abort(new RequestAbortedError('client-gone'));
    else if (exchange === 'in flight' && this.cancelled !== undefined) controller.abort(new RequestAbortedError(this.cancelled));
    else if (exchange === 'in flight') this.follow(req, controller);
    return controller.signal;
  }

  /** Aborts every signal in flight for `reason`; one asked for later, until `endShutdown()`, aborts at once. */
  cancel(reason: CancelReason): void {
    this.cancelled = reason;
    if (this.live.size === 0) return;
    const controllers = [...this.live.values()]; // an abort listener may ask for another signal
    this.live.clear();
    this.bySocket.clear();
    for (const controller of controllers) controller.abort(new RequestAbortedError(reason));
  }

  /** The shutdown is over: signals asked for from now on follow their exchange again. */
  endShutdown(): void {
    this.cancelled = undefined;
  }

  /** HTTP/1: a response has closed; its request's signal aborts if it had not finished. Runs for every response. */
  responseClosed(res: ServerResponse): void {
    if (this.live.size === 0) return;
    const req = res.req;
    const controller = this.live.get(req);
    if (controller === undefined) return;
    this.unfollow(req);
    if (!res.writableFinished) controller.abort(new RequestAbortedError('client-gone'));
  }

  /** A connection is gone: the HTTP/1 requests on it that still wait for their response lost their client. */
  connectionClosed(c: Connection): void {
    if (c.protocol !== 'http1' || this.bySocket.size === 0) return;
    const requests = this.bySocket.get(c.socket);
    if (requests === undefined) return;
    for (const req of [...requests]) this.abort(req, 'client-gone');
  }

  private exchangeOf(req: SignalRequest): Exchange {
    if (req instanceof Http2ServerRequest) {
      const { stream } = req;
      if (stream.aborted) return 'client gone';
      if (stream.closed || stream.destroyed) return 'over';
      if (stream.session === undefined || this.registry.get(stream.session) === undefined) throw notOurs(req);
      return 'in flight';
    }
    if (!(req instanceof IncomingMessage)) {
      throw new TypeError(
        `rx-graceful: abortSignal(req) expects an http.IncomingMessage or an http2.Http2ServerRequest, got ${describeValue(req)}`,
      );
    }
    const c = this.registry.get(req.socket);
    if (c === undefined) {
      if (req.socket.destroyed) return 'client gone';
      throw notOurs(req);
    }
    // An upgrade has no response: its exchange lasts as long as its socket.
    if (c.state === 'hijacked') return 'in flight';
    // No response pending on the connection: this request's has closed, and as the connection
    // is still open, it finished (one that had not would have closed it).
    return c.pending > 0 ? 'in flight' : 'over';
  }

  private follow(req: SignalRequest, controller: AbortController): void {
    this.live.set(req, controller);
    if (req instanceof Http2ServerRequest) {
      const { stream } = req;
      stream.once('close', () => {
        // Node marks a stream `aborted` when it closes before the server has ended its side.
        if (stream.aborted) this.abort(req, 'client-gone');
        else this.unfollow(req);
      });
      return;
    }
    const onSocket = this.bySocket.get(req.socket);
    if (onSocket === undefined) this.bySocket.set(req.socket, new Set([req]));
    else onSocket.add(req);
  }

  private abort(req: SignalRequest, kind: RequestAbortKind): void {
    const controller = this.live.get(req);
    if (controller === undefined) return;
    this.unfollow(req);
    controller.abort(new RequestAbortedError(kind));
  }

  private unfollow(req: SignalRequest): void {
    this.live.delete(req);
    if (req instanceof Http2ServerRequest) return;
    const onSocket = this.bySocket.get(req.socket);
    if (onSocket === undefined) return;
    onSocket.delete(req);
    if (onSocket.size === 0) this.bySocket.delete(req.socket);
  }
}

function notOurs(req: SignalRequest): TypeError {
  return new TypeError(
    `rx-graceful: abortSignal(req) got ${describeValue(req)} that this GracefulServer's server did not receive`,
  );
}
