import { Server as HttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { Http2ServerRequest, Http2Session, Http2Stream } from 'node:http2';
import { Server as NetServer, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { merge, Observable, SchedulerLike, Subject } from 'rxjs';
import type { CancelReason, ConnectionSlices, TrackedConnection } from '../core/drain';
import type { LifecycleHost } from '../core/lifecycle';
import type { ConnState, Protocol } from '../core/state';
import { Connection, ConnectionEvent, ConnectionRegistry, Http1Connection } from './connection-registry';
import { holdEventLoop, inSlices } from './event-loop';
import { Http1Connections } from './http1';
import { Http2Sessions } from './http2-sessions';
import { Delivery, EmitInterceptor, interceptEmit } from './intercept';
import { closeListenerAfterQueue } from './listener';
import { isHttp2Request, isHttp2Server } from './node-internals';
import { RequestSignals, SignalRequest } from './request-signals';
import { TlsHandoff } from './tls-handoff';

export type { ConnectionEvent } from './connection-registry';

/**
 * At most this many idle connections are closed in one turn of the event loop. Closing one costs
 * the kernel's close of its socket and the books' step: 20–30 µs on an idle 2-core machine, and
 * up to 100–250 µs when the machine is busy (profiled, 2026-12-02: the `close` system call, not
 * JavaScript). A slice then holds the loop for 1–8 ms, and a response in flight waits no longer
 * than that while thousands close; 128 held it for up to 14 ms. More turns cost B a few ms at
 * 10,000 connections (a turn of the loop is about 30 µs).
 */
const closesPerTurn = 32;

/**
 * At most this many open connections are handed to the drain in one turn when a shutdown begins
 * (the first slice within the call): each costs the books' entry (and GOAWAY for an HTTP/2 session),
 * so that the call returns within a few ms however many connections are open. As many as
 * `closesPerTurn`: the idle ones of a slice are closed in one slice of closes, two turns later,
 * so that a turn carries at most one slice of each.
 */
const opensPerTurn = closesPerTurn;

/**
 * Turns a server's events into connection changes, and carries out the lifecycle's decisions on
 * its sockets and sessions: HTTP/1 (a connection is a socket, active while a request is pending),
 * HTTPS (the TLS socket once the handshake is done) and HTTP/2 (a connection is a session, active
 * while a stream is open; with `allowHTTP1`, HTTP/1 connections on the same server follow the
 * HTTP/1 rules). It decides nothing about time: the scheduler only stamps when a connection became
 * idle.
 *
 * The server's `emit` is replaced (intercept.ts) so that the adapter sees `connection`,
 * `secureConnection`, `session`, `stream`, `request`, `upgrade`, `connect` and `listening` before
 * any listener, adds no listener that would change Node's behaviour (an `upgrade` listener would),
 * and can keep a request from the application (RFC 9112 §9.6).
 */
export class HttpAdapter implements LifecycleHost<ConnectionEvent>, EmitInterceptor {
  readonly changes$: Observable<ConnectionEvent>;
  /** An HTTP/2 server: its connections are sessions, or HTTP/1 with `allowHTTP1`; results split their counts. */
  readonly mixedProtocols: boolean;
  /** Puts the server's own `emit` back. */
  readonly restore: () => void;

  private readonly registry: ConnectionRegistry;
  private readonly http1: Http1Connections;
  private readonly handoff: TlsHandoff;
  private readonly http2: Http2Sessions;
  private readonly signals: RequestSignals;
  /** HTTPS, or HTTP/2 over TLS: a connection begins with a TLS handshake. */
  private readonly tls: boolean;
  private readonly h2: boolean;
  /** Closes the drain asked for, each waiting for a poll phase that began after its own decision. */
  private readonly pendingCloses = new Set<() => void>();
  /** Closes the listener at once if it is still open (it closes by itself once the loop has accepted what the kernel queued). */
  private closeListenerNow: (() => void) | undefined;
  /** TCP connections accepted so far: the listener closes once the loop has accepted what the kernel queued. */
  private accepted = 0;
  /** The changes made by the closes under way, held back to go to the drain as one batch (`inOneBatch`). */
  private batch: ConnectionEvent[] | undefined;
  /** The batches of `inOneBatch`, for `drainChanges`. */
  private readonly batches = new Subject<readonly ConnectionEvent[]>();
  /** Ends the hold on the event loop that a shutdown keeps (Node unrefs a session's socket once GOAWAY is sent). */
  private releaseHold: (() => void) | undefined;

  constructor(
    private readonly server: NetServer,
    scheduler: SchedulerLike,
    onConnState: ((socket: Socket, state: ConnState) => void) | undefined,
    /** The server started listening, whoever called `listen()` (`app.listen()` in Express). */
    private readonly onListening: () => void,
  ) {
    this.tls = server instanceof TlsServer;
    this.h2 = isHttp2Server(server);
    this.mixedProtocols = this.h2;
    this.registry = new ConnectionRegistry(scheduler, onConnState, (c) => {
      this.handoff.forget(c);
      this.signals.connectionClosed(c);
    });
    this.changes$ = this.registry.changes$;
    this.signals = new RequestSignals(this.registry);
    this.http1 = new Http1Connections(this.registry, this.tls, this.signals);
    this.handoff = new TlsHandoff(this.registry);
    this.http2 = new Http2Sessions(this.registry);
    this.restore = interceptEmit(server, this);
  }

  /** Sees each event of the server before any listener (the `emit` interception calls it). */
  intercept(event: string | symbol, first: unknown, second: unknown): Delivery {
    switch (event) {
      case 'connection':
        this.accepted++;
        return this.deliverBinding(this.tls ? this.handoff.accept(first as Socket) : this.registry.accept(first as Socket, true));
      case 'secureConnection':
        return this.tls ? this.deliverBinding(this.handoff.secured(first as Socket)) : 'deliver';
      case 'session':
        if (this.h2) this.http2.bind(first as Http2Session);
        return 'deliver';
      case 'stream':
        if (this.h2) this.http2.stream(first as Http2Stream);
        return 'deliver';
      case 'request':
      case 'checkContinue': // a request with `Expect: 100-continue`, when the application listens for it
      case 'checkExpectation':
        if (this.h2 && isHttp2Request(first as Http2ServerRequest)) return 'deliver'; // HTTP/2: followed as a stream
        return this.http1.request(first as IncomingMessage, second as ServerResponse) ? 'deliver' : 'withhold';
      case 'connect':
        if (this.h2 && isHttp2Request(first as Http2ServerRequest)) return 'deliver'; // an HTTP/2 CONNECT is a stream
        this.http1.hijack((first as IncomingMessage).socket);
        return 'deliver';
      case 'upgrade':
        this.http1.hijack((first as IncomingMessage).socket);
        return 'deliver';
      case 'listening':
        this.onListening();
        return 'deliver';
      default:
        return 'deliver';
    }
  }

  /** The listeners of a `deliver-and-notify` event have run. */
  delivered(): void {
    this.http2.delivered();
  }

  connections(): TrackedConnection[] {
    return this.registry.tracked();
  }

  /** The protocol the open connection `id` speaks now: `http2` once a session is bound to it. */
  protocolOf(id: number): Protocol {
    return this.registry.byId(id)?.protocol ?? 'http1';
  }

  /** The response in flight that will be answered last on each HTTP/1 connection says `Connection: close`, from now on. */
  beginShutdown(): void {
    this.releaseHold = holdEventLoop();
    this.registry.beginShutdown((c) => this.http1.beginShutdown(c));
  }

  /**
   * The open connections in slices of `opensPerTurn`, one a turn, the first within the call that
   * subscribes; an HTTP/2 session is told GOAWAY as its slice is taken (until then it may open
   * streams, which are served). Requests that arrive meanwhile are marked as they come
   * (`registry.shuttingDown`).
   */
  connectionsInSlices(): ConnectionSlices {
    const open = this.registry.all();
    let restAsked = false;
    let takeRest: (() => void) | undefined;
    const slices$ = new Observable<readonly TrackedConnection[]>((subscriber) => {
      let next: NodeJS.Immediate | undefined;
      /** Hands over one slice (all that is left once the rest is asked); false when none is left. */
      const take = (): boolean => {
        const most = restAsked ? Infinity : opensPerTurn;
        const batch: Connection[] = [];
        let left = true;
        while (batch.length < most) {
          const entry = open.next();
          if (entry.done === true) {
            left = false;
            break;
          }
          const c = entry.value;
          if (c.protocol === 'http2') this.http2.beginShutdown(c);
          batch.push(c);
        }
        if (batch.length > 0) subscriber.next(this.registry.tracked(batch));
        return left;
      };
      const turn = (): void => {
        next = undefined;
        if (!take()) subscriber.complete();
        else if (!subscriber.closed) next = setImmediate(turn);
      };
      takeRest = () => {
        if (next !== undefined) clearImmediate(next);
        next = undefined;
        while (take());
        subscriber.complete();
      };
      if (restAsked) takeRest();
      else turn();
      return () => {
        if (next !== undefined) clearImmediate(next);
        takeRest = undefined;
      };
    });
    return {
      slices$,
      rest: () => {
        restAsked = true;
        takeRest?.();
      },
    };
  }

  /**
   * Refuses newcomers once the loop has accepted the connections the kernel completed (listener.ts):
   * closing a listen socket resets what is still in its accept queue, and those clients may already
   * have sent their request.
   */
  stopAccepting(closed: () => void): void {
    this.closeListenerNow = closeListenerAfterQueue(this.server, () => this.accepted, closed);
    if (this.h2) this.http2.drainBegins();
  }

  endShutdown(): void {
    // Ended (forced) before the accept queue was emptied: stop accepting now.
    this.closeListenerNow?.();
    this.closeListenerNow = undefined;
    for (const cancel of this.pendingCloses) cancel();
    this.pendingCloses.clear();
    this.releaseHold?.();
    this.releaseHold = undefined;
    this.registry.endShutdown();
    this.signals.endShutdown();
    if (this.h2) this.http2.endShutdown();
  }

  /** The signal of `req`, made when its handler first asks (request-signals.ts). */
  abortSignal(req: SignalRequest): AbortSignal {
    return this.signals.signalFor(req);
  }

  /** Aborts the signals of the requests in flight, before anything is destroyed under them. */
  cancel(reason: CancelReason): void {
    this.signals.cancel(reason);
  }

  /**
   * Closes these idle connections once the loop has been through a poll phase, which reads every
   * socket the kernel holds bytes for: a request that was sent before this call, however late the
   * loop reads it, turns its connection active and is served (with `Connection: close`) instead of
   * being cut. What has bytes of a request but no whole head yet is refused, and waited for. They
   * close `closesPerTurn` a turn, so that the loop serves what is in flight between two slices.
   */
  closeIdle(ids: readonly number[], refused: (ids: readonly number[]) => void): void {
    const cancel = inSlices(ids.length, closesPerTurn, (from, to) => {
      if (to === ids.length) this.pendingCloses.delete(cancel);
      const busy = this.closeIdleNow(from === 0 && to === ids.length ? ids : ids.slice(from, to));
      if (busy.length > 0) refused(busy);
    });
    this.pendingCloses.add(cancel);
  }

  /**
   * `changes$` for the drain: the changes made by one call of `closeIdleNow` or `destroy` (a slice of
   * closes: 128 `closed`) come as one array, after it, so that the drain takes them in one step; any
   * other change comes alone, as it happens.
   */
  drainChanges(): Observable<ConnectionEvent | readonly ConnectionEvent[]> {
    const alone$ = new Observable<ConnectionEvent>((subscriber) =>
      this.registry.changes$.subscribe({
        next: (change) => {
          if (this.batch !== undefined) this.batch.push(change);
          else subscriber.next(change);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
    return merge(alone$, this.batches);
  }

  /** Runs `work`, holding back the changes it makes for the drain, which gets them as one batch after it. */
  private inOneBatch<T>(work: () => T): T {
    if (this.batch !== undefined) return work(); // within a batch already: it goes out with that one
    const batch: ConnectionEvent[] = [];
    this.batch = batch;
    try {
      return work();
    } finally {
      this.batch = undefined;
      if (batch.length > 0) this.batches.next(batch);
    }
  }

  /** Closes these connections if they are idle by their bytes; returns the busy ones. Their closes reach the drain as one batch. */
  closeIdleNow(ids: readonly number[]): readonly number[] {
    return this.inOneBatch(() => {
      const busy: number[] = [];
      for (const id of ids) {
        const c = this.registry.byId(id);
        if (c === undefined) continue;
        const closed = c.protocol === 'http2' ? this.http2.closeIfIdle(c) : this.http1.closeIfIdle(c);
        if (!closed) busy.push(id);
      }
      return busy;
    });
  }

  /** Destroys these connections; their closes reach the drain as one batch. */
  destroy(ids: readonly number[]): void {
    this.inOneBatch(() => {
      for (const id of ids) {
        const c = this.registry.byId(id);
        if (c === undefined) continue;
        if (c.protocol === 'http2') this.http2.destroy(c);
        else this.http1.destroy(c);
      }
    });
  }

  /** HTTP/2: a session Node makes while this connection's event is delivered belongs to it. */
  private deliverBinding(c: Http1Connection): Delivery {
    if (!this.h2) return 'deliver';
    this.http2.delivering(c);
    return 'deliver-and-notify';
  }
}

/** True for the servers the adapter understands: `http`, `https` and both kinds of `http2` server. */
export function isHttpServer(value: unknown): value is NetServer {
  return value instanceof HttpServer || value instanceof HttpsServer || (value instanceof NetServer && isHttp2Server(value));
}
