import { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import { constants as http2Constants } from 'node:http2';
import type { Http2Session, Http2Stream } from 'node:http2';
import { Server as NetServer, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { Observable, SchedulerLike, Subject } from 'rxjs';
import type { TrackedConnection } from '../core/drain';
import type { LifecycleHost } from '../core/lifecycle';
import type { ConnState } from '../core/state';
import { replaceMethod } from './intercept';
import { announcedClose } from './node-internals';

/** One state change of one connection, with the socket it happened to. */
export interface ConnectionEvent {
  /** Stable for the life of the connection, unique within one `GracefulServer`. */
  readonly id: number;
  readonly state: ConnState;
  /** The state it left; `undefined` for `new`. */
  readonly previous: ConnState | undefined;
  readonly socket: Socket;
}

/** What the adapter keeps per socket. Lives in the adapter's own `Map`, never on the socket. */
interface Connection {
  readonly id: number;
  /** The socket HTTP runs on: the TCP socket, or for HTTPS the TLS socket once the handshake is done. */
  socket: Socket;
  state: ConnState;
  /** Requests handed to the application whose response has not closed yet. */
  pending: number;
  /** The newest of those responses: the one a shutdown marks `Connection: close`. */
  newest: ServerResponse | undefined;
  /** The response whose keep-alive this adapter turned off, to move the mark when a newer one comes. */
  marked: ServerResponse | undefined;
  /** A response on this connection said `Connection: close`: later requests must not be processed. */
  closeAnnounced: boolean;
  /** A request came after such a response and was kept from the application. */
  dropped: boolean;
  /**
   * When it became idle (or was accepted), in ms since `epoch`: a small integer that V8 stores in
   * the object itself, where a full timestamp would be a heap number allocated per request.
   */
  idleAt: number;
  /** HTTP/2: the session on this connection; it, not the socket, is what is closed and destroyed. */
  session: Http2Session | undefined;
  /** HTTP/2: one listener per session for the close of each of its streams. */
  onStreamClose: (() => void) | undefined;
  /** HTTPS: its key in `handshaking` while the TLS handshake is not done. */
  handshake: string | undefined;
  /** `socket.bytesRead` when it became idle: more bytes since then mean a request head is arriving. */
  bytesAtIdle: number;
}

/**
 * Turns a server's events into connection changes, and carries out the lifecycle's decisions on
 * its sockets and sessions: HTTP/1 (a connection is a socket, active while a request is pending),
 * HTTPS (the TLS socket once the handshake is done) and HTTP/2 (a connection is a session, active
 * while a stream is open; with `allowHTTP1`, HTTP/1 connections on the same server follow the
 * HTTP/1 rules). It decides nothing about time: the scheduler only stamps when a connection became
 * idle.
 *
 * The server's `emit` is wrapped so that the adapter sees `connection`, `session`, `stream`,
 * `request`, `upgrade`, `connect` and `listening` before any listener, adds no listener that would change
 * Node's behaviour (an `upgrade` listener would), and can keep a request from the application
 * (RFC 9112 §9.6).
 */
export class HttpAdapter implements LifecycleHost<ConnectionEvent> {
  readonly changes$: Observable<ConnectionEvent>;

  private readonly changes = new Subject<ConnectionEvent>();
  private readonly sockets = new Map<Socket, Connection>();
  /** HTTPS: TCP connections still in their TLS handshake, by their address pair. */
  private readonly handshaking: Map<string, Connection> | undefined;
  /** HTTP/2: the connection of each session. */
  private readonly sessions = new Map<Http2Session, Connection>();
  /** HTTP/2: the connection whose `connection`/`secureConnection` event is being emitted. */
  private binding: Connection | undefined;
  private byId: Map<number, Connection> | undefined;
  private closing = false;
  /** Connections the drain asked to close, waiting for the loop to read what the kernel holds for them. */
  private readonly toClose = new Set<number>();
  private refuse: ((ids: readonly number[]) => void) | undefined;
  private cancelClosing: (() => void) | undefined;
  /** Closes the listener once the loop has accepted what the kernel queued; pending while set. */
  private cancelListenerClose: (() => void) | undefined;
  /** Holds the event loop open during a shutdown (Node unrefs a session's socket once GOAWAY is sent). */
  private hold: NodeJS.Timeout | undefined;
  /** Puts the server's own `emit` back. */
  readonly restore: () => void;
  private nextId = 0;
  private readonly epoch: number;

  constructor(
    private readonly server: NetServer,
    private readonly scheduler: SchedulerLike,
    private readonly onConnState: ((socket: Socket, state: ConnState) => void) | undefined,
    /** The server started listening, whoever called `listen()` (`app.listen()` in Express). */
    private readonly onListening: () => void,
  ) {
    this.changes$ = this.changes.asObservable();
    this.epoch = scheduler.now();
    const tls = server instanceof TlsServer;
    const h2 = isHttp2Server(server);
    this.handshaking = tls ? new Map() : undefined;
    const adapter = this;
    this.onResponseClose = function onResponseClose(this: ServerResponse) {
      adapter.responseClosed(this);
    };
    this.onSocketClose = function onSocketClose(this: Socket) {
      const c = adapter.sockets.get(this);
      if (c !== undefined) adapter.forget(c);
    };
    // Per-request work here is a few property writes, one Map lookup and one listener per response;
    // `arguments` is passed on as it is, so no array is made per event.
    this.restore = replaceMethod(server, 'emit', (emit) => function interceptEmit(this: NetServer, event: string | symbol, first?: unknown, second?: unknown) {
      switch (event) {
        case 'connection':
          if (h2) return adapter.binding$(adapter.accept(first as Socket), emit, this, arguments);
          adapter.accept(first as Socket);
          break;
        case 'secureConnection':
          if (h2) return adapter.binding$(adapter.secured(first as Socket), emit, this, arguments);
          if (tls) adapter.secured(first as Socket);
          break;
        case 'session':
          if (h2) adapter.bindSession(first as Http2Session);
          break;
        case 'stream':
          if (h2) adapter.stream(first as Http2Stream);
          break;
        case 'request':
          if (h2 && (first as { stream?: unknown }).stream !== undefined) break; // HTTP/2: followed as a stream
          if (!adapter.request(first as IncomingMessage, second as ServerResponse)) return true;
          break;
        case 'upgrade':
        case 'connect':
          adapter.hijack((first as IncomingMessage).socket);
          break;
        case 'listening':
          adapter.onListening();
          break;
      }
      return Reflect.apply(emit, this, arguments) as boolean;
    } as NetServer['emit']);
  }

  connections(): TrackedConnection[] {
    const list: TrackedConnection[] = [];
    for (const c of this.sockets.values()) list.push({ id: c.id, state: c.state, idleSince: this.epoch + c.idleAt });
    return list;
  }

  beginShutdown(): void {
    this.closing = true;
    this.hold = setInterval(() => undefined, 1000); // any ref'd handle would do; this one costs a wake-up a second
    // HTTP/2 has no `Connection: close`: every session is told now (GOAWAY) to open no new stream,
    // or a busy client would keep one session active for the whole drain.
    for (const c of this.sessions.values()) goAway(c.session);
    this.byId = new Map();
    for (const c of this.sockets.values()) {
      this.byId.set(c.id, c);
      if (c.newest !== undefined) this.markClosing(c, c.newest);
    }
  }

  /**
   * Refuses newcomers once the loop has accepted the connections the kernel completed before the
   * call: closing a listen socket resets what is still in its accept queue, and those clients may
   * already have sent their request.
   */
  stopAccepting(closed: () => void): void {
    this.cancelListenerClose = afterPoll(() => {
      this.cancelListenerClose = undefined;
      this.closeListener();
      closed();
    });
  }

  endShutdown(): void {
    if (this.cancelListenerClose !== undefined) {
      // Ended (forced) before the accept queue was emptied: stop accepting now.
      this.cancelListenerClose();
      this.cancelListenerClose = undefined;
      this.closeListener();
    }
    this.cancelClosing?.();
    this.cancelClosing = undefined;
    this.toClose.clear();
    this.refuse = undefined;
    clearInterval(this.hold);
    this.hold = undefined;
    this.closing = false;
    this.byId = undefined;
  }

  /**
   * Closes these idle connections once the loop has been through a poll phase, which reads every
   * socket the kernel holds bytes for: a request that was sent before this call, however late the
   * loop reads it, turns its connection active and is served (with `Connection: close`) instead of
   * being cut. What has bytes of a request but no whole head yet is refused, and waited for.
   */
  closeIdle(ids: readonly number[], refused: (ids: readonly number[]) => void): void {
    for (const id of ids) this.toClose.add(id);
    this.refuse = refused;
    this.cancelClosing ??= afterPoll(() => {
      this.cancelClosing = undefined;
      const due = [...this.toClose];
      this.toClose.clear();
      const busy = this.closeIdleNow(due);
      if (busy.length > 0) this.refuse?.(busy);
    });
  }

  /** http.Server#close() would also destroy idle sockets at once (Node 20's httpServerPreClose): stop the listener alone. */
  private closeListener(): void {
    if (this.server.listening) NetServer.prototype.close.call(this.server);
  }

  closeIdleNow(ids: readonly number[]): readonly number[] {
    const busy: number[] = [];
    for (const id of ids) {
      const c = this.byId?.get(id);
      if (c === undefined) continue;
      const { socket, session } = c;
      if (session !== undefined) {
        if (c.pending > 0) busy.push(id);
        else {
          this.forget(c);
          session.close(); // GOAWAY with the last stream id; with no stream open it ends at once
        }
      } else if (c.state === 'active' || c.state === 'hijacked' || socket.bytesRead !== c.bytesAtIdle) {
        busy.push(id); // a request head is on its way: it will be served with `Connection: close`
      } else if (socket.writableLength > 0) {
        // The last response is still being flushed: finish it, then close; nothing more is read.
        c.closeAnnounced = true;
        socket.end();
        busy.push(id);
      } else {
        // destroy(), not end(): a half-closed socket would still read and dispatch a request.
        this.forget(c);
        socket.destroy();
      }
    }
    return busy;
  }

  destroy(ids: readonly number[]): void {
    for (const id of ids) {
      const c = this.byId?.get(id);
      if (c === undefined) continue;
      this.forget(c);
      // HTTP/2: `session.socket` is a proxy; destroying the session closes the socket under it.
      // With CANCEL in the last GOAWAY, the client's open streams fail instead of ending quietly.
      if (c.session !== undefined) c.session.destroy(undefined, http2Constants.NGHTTP2_CANCEL);
      else c.socket.destroy();
    }
  }

  /** A new connection; `watch` false for an HTTP/2 proxy socket, which refuses listeners. */
  private accept(socket: Socket, watch = true): Connection {
    const c: Connection = {
      id: ++this.nextId,
      socket,
      state: 'new',
      pending: 0,
      newest: undefined,
      marked: undefined,
      closeAnnounced: false,
      dropped: false,
      session: undefined,
      onStreamClose: undefined,
      idleAt: this.scheduler.now() - this.epoch,
      handshake: this.handshaking && addressPair(socket),
      bytesAtIdle: 0,
    };
    this.sockets.set(socket, c);
    this.byId?.set(c.id, c);
    if (c.handshake !== undefined) this.handshaking?.set(c.handshake, c);
    if (watch) socket.on('close', this.onSocketClose);
    this.publish(c, undefined);
    return c;
  }

  /**
   * HTTPS: the handshake is done. From now on the TLS socket is the one tracked, ended and
   * destroyed; the TCP socket under it is never destroyed on its own under an open request.
   */
  private secured(tlsSocket: Socket): Connection {
    const c = this.handshaking?.get(addressPair(tlsSocket));
    if (c === undefined) {
      const adopted = this.accept(tlsSocket);
      this.forgetHandshake(adopted);
      return adopted;
    }
    this.forgetHandshake(c);
    this.sockets.delete(c.socket);
    c.socket.off('close', this.onSocketClose);
    c.socket = tlsSocket;
    c.bytesAtIdle = 0;
    this.sockets.set(tlsSocket, c);
    tlsSocket.on('close', this.onSocketClose);
    return c;
  }

  /** HTTP/2: emits a connection event with `c` bound, so that the `session` Node makes inside it finds it. */
  private binding$(c: Connection, emit: NetServer['emit'], server: NetServer, args: IArguments): boolean {
    this.binding = c;
    try {
      return Reflect.apply(emit, server, args) as boolean;
    } finally {
      this.binding = undefined;
    }
  }

  private bindSession(session: Http2Session): Connection {
    let c = this.binding;
    if (c === undefined) {
      // A session on a connection this adapter never saw (the server was listening before): its
      // `socket` is a proxy that throws on `on()`, so the session tells when it is gone.
      c = this.accept(session.socket as Socket, false);
      this.forgetHandshake(c);
      session.once('close', () => this.forget(c as Connection));
    }
    const bound = c;
    bound.session = session;
    bound.onStreamClose = () => this.streamClosed(bound);
    this.sessions.set(session, bound);
    return bound;
  }

  private stream(stream: Http2Stream): void {
    const session = stream.session;
    if (session === undefined) return;
    const c = this.sessions.get(session) ?? this.bindSession(session);
    if (this.closing) goAway(session); // a session accepted during the shutdown
    c.pending++;
    stream.on('close', c.onStreamClose as () => void); // emitted once; `once` would wrap it per stream
    if (c.pending === 1) this.change(c, 'active');
  }

  private streamClosed(c: Connection): void {
    if (c.state === 'closed') return;
    c.pending--;
    if (c.pending === 0 && c.state === 'active') {
      c.idleAt = this.scheduler.now() - this.epoch;
      this.change(c, 'idle');
    }
  }

  /** Returns false when the request must not reach the application. */
  private request(req: IncomingMessage, res: ServerResponse): boolean {
    const c = this.sockets.get(req.socket) ?? this.accept(req.socket);
    if (c.closeAnnounced || (c.newest !== undefined && announcedClose(c.newest))) {
      // A response on this connection already said `close` (RFC 9112 §9.6): the client sees the
      // close before any answer and may retry; processing it would lose its response.
      c.closeAnnounced = true;
      c.dropped = true;
      return false;
    }
    if (this.closing) this.markClosing(c, res);
    c.pending++;
    c.newest = res;
    res.on('close', this.onResponseClose);
    if (c.pending === 1) this.change(c, 'active');
    return true;
  }

  private hijack(socket: Socket): void {
    const c = this.sockets.get(socket) ?? this.accept(socket);
    if (c.state !== 'hijacked') this.change(c, 'hijacked');
  }

  /**
   * Pipelined requests: Node drops the responses queued behind one that says `close`, so only the
   * newest pending response of a connection is marked, and the mark moves when a newer one comes.
   */
  private markClosing(c: Connection, res: ServerResponse): void {
    if (c.marked !== undefined && c.marked !== res && !c.marked.headersSent) c.marked.shouldKeepAlive = true;
    c.marked = undefined;
    if (!res.headersSent && res.shouldKeepAlive) {
      res.shouldKeepAlive = false;
      c.marked = res;
    }
  }

  /** One listener per adapter, not a closure per request: `this` is the response. */
  private readonly onResponseClose: (this: ServerResponse) => void;
  private readonly onSocketClose: (this: Socket) => void;

  private responseClosed(res: ServerResponse): void {
    const c = this.sockets.get(res.req.socket);
    if (c === undefined) return;
    c.pending--;
    if (c.newest === res) c.newest = undefined;
    if (c.marked === res) c.marked = undefined;
    if (announcedClose(res)) c.closeAnnounced = true;
    if (c.pending === 0 && c.closeAnnounced && this.closing && this.finishedWithKernel(c, res)) {
      // Node's own end() would close the socket a few turns of the event loop from now; nothing
      // is left to send or to read, so close it now and let the drain end on the response.
      this.forget(c);
      c.socket.destroy();
      return;
    }
    // Otherwise a connection whose response said `close` is being closed by Node after the
    // flush: it stays active until it is gone, so that nothing destroys it under unsent bytes.
    if (c.pending === 0 && !c.closeAnnounced && c.state === 'active') {
      c.idleAt = this.scheduler.now() - this.epoch;
      c.bytesAtIdle = c.socket.bytesRead;
      this.change(c, 'idle');
    }
  }

  /**
   * True when closing `c` at once loses nothing: plain TCP (TLS wants its close_notify from
   * end()), the whole response handed to the kernel, the whole request read, and no request left
   * unanswered on it; with unread bytes a close would reset the connection under the response.
   */
  private finishedWithKernel(c: Connection, res: ServerResponse): boolean {
    return this.handshaking === undefined && !c.dropped && res.req.complete && c.socket.writableLength === 0;
  }

  /** The connection is gone for the books (destroyed by us, or closed): report `closed` once. */
  private forget(c: Connection): void {
    if (c.state === 'closed') return;
    this.sockets.delete(c.socket);
    if (c.session !== undefined) this.sessions.delete(c.session);
    this.forgetHandshake(c);
    this.byId?.delete(c.id);
    this.change(c, 'closed');
  }

  private forgetHandshake(c: Connection): void {
    if (c.handshake === undefined) return;
    this.handshaking?.delete(c.handshake);
    c.handshake = undefined;
  }

  private change(c: Connection, state: ConnState): void {
    const previous = c.state;
    c.state = state;
    this.publish(c, previous);
  }

  private publish(c: Connection, previous: ConnState | undefined): void {
    if (this.changes.observed) this.changes.next({ id: c.id, state: c.state, previous, socket: c.socket });
    this.onConnState?.(c.socket, c.state);
  }
}

/**
 * Runs `work` once the event loop has been through a poll phase that began after this call (two
 * check phases: the first may come right after a poll phase that was already under way). By
 * then libuv has read every socket that was readable at the call and accepted every connection
 * the kernel had queued. Returns a function that cancels it.
 */
function afterPoll(work: () => void): () => void {
  let second: NodeJS.Immediate | undefined;
  const first = setImmediate(() => {
    second = setImmediate(work);
  });
  return () => {
    clearImmediate(first);
    if (second !== undefined) clearImmediate(second);
  };
}

/** Identifies a TCP connection by its two ends; a TLS socket reports the same as its TCP socket. */
function addressPair(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}>${socket.localPort}`;
}

/** True for the servers the adapter understands: `http`, `https` and both kinds of `http2` server. */
export function isHttpServer(value: unknown): value is NetServer {
  return value instanceof HttpServer || value instanceof HttpsServer || (value instanceof NetServer && isHttp2Server(value));
}

/** Node exports no HTTP/2 server class; `updateSettings()` is documented on both of them only. */
function isHttp2Server(server: NetServer): boolean {
  return typeof (server as NetServer & { updateSettings?: unknown }).updateSettings === 'function';
}

/**
 * RFC 9113 §6.8: a GOAWAY with the highest stream id first, so that streams the client is opening
 * right now are still accepted; after a PING round trip, a second GOAWAY with the real last stream
 * id (Node fills it in for 0) refuses newer streams through the protocol. The session itself is
 * closed once it is idle (closeIdle), never under open streams: Node's close() with streams
 * still sending has been seen to stall a session (nodejs/node#57809 is of that family).
 */
const wentAway = new WeakSet<Http2Session>();

function goAway(session: Http2Session | undefined): void {
  if (session === undefined || session.closed || session.destroyed || wentAway.has(session)) return;
  wentAway.add(session);
  session.goaway(http2Constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
  const finalGoAway = (): void => {
    if (!session.closed && !session.destroyed) session.goaway(http2Constants.NGHTTP2_NO_ERROR, 0);
  };
  if (!session.ping(finalGoAway)) finalGoAway();
}
