import { constants } from 'node:http2';
import type { Http2Session, Http2Stream } from 'node:http2';
import type { ConnectionRegistry, Http1Connection, Http2Connection } from './connection-registry';
import { afterPoll } from './event-loop';
import { sessionSocket } from './node-internals';

/**
 * HTTP/2: a connection is a session, active while any stream is open. A shutdown tells every
 * session GOAWAY at once (HTTP/2 has no `Connection: close`), closes idle sessions and destroys the
 * survivors through the session, never through its socket.
 *
 * Per stream: one Map lookup, a few property writes and the session's one `close` listener.
 */
export class Http2Sessions {
  /** The connection whose `connection` or `secureConnection` event is being delivered. */
  private binding: Http1Connection | undefined;
  /** The drain has begun (after any pre-drain delay): a session Node reads no more is closed. */
  private draining = false;
  /** Sessions Node stopped reading during the pre-drain delay: closed when the drain begins. */
  private readonly unreadBeforeDrain = new Set<Http2Connection>();
  /** The closes of unread sessions waiting for their poll phase: cancelled when the shutdown ends, as the adapter's own closes are. */
  private readonly pendingUnread = new Set<() => void>();

  constructor(private readonly registry: ConnectionRegistry) {}

  /**
   * The `connection` or `secureConnection` event of `c` is being delivered: Node makes the session
   * of that connection inside the emit (in its own listener), so a session made until `delivered()`
   * belongs to `c`.
   */
  delivering(c: Http1Connection): void {
    this.binding = c;
  }

  delivered(): void {
    this.binding = undefined;
  }

  /** A session: its connection is HTTP/2 from now on. */
  bind(session: Http2Session): Http2Connection {
    const seen = this.binding;
    // A session on a connection this adapter never saw (the server was listening before): its
    // `socket` is a proxy, no key to find it by, so the session tells when it is gone.
    const c = seen ?? this.registry.accept(sessionSocket(session), false);
    const bound: Http2Connection = {
      protocol: 'http2',
      id: c.id,
      socket: c.socket,
      state: c.state,
      pending: c.pending,
      idleAt: c.idleAt,
      session,
      onStreamClose: () => {
        this.streamClosed(bound);
      },
    };
    this.registry.replace(bound);
    if (seen === undefined) {
      session.once('close', () => {
        this.registry.forget(bound);
      });
    }
    return bound;
  }

  stream(stream: Http2Stream): void {
    const session = stream.session;
    if (session === undefined) return;
    const found = this.registry.get(session);
    const c = found?.protocol === 'http2' ? found : this.bind(session);
    if (this.registry.shuttingDown) this.goAway(c); // a session accepted during the shutdown
    c.pending++;
    stream.on('close', c.onStreamClose); // emitted once; `once` would wrap it per stream
    if (c.pending === 1) this.registry.change(c, 'active');
  }

  /** The shutdown begins: no new stream on this session (GOAWAY), or a busy client would keep it active for the whole drain. */
  beginShutdown(c: Http2Connection): void {
    this.goAway(c);
    if (c.pending === 0) this.closeUnread(c);
  }

  /** The drain begins (the pre-drain delay, if any, is over): the sessions Node reads no more are closed. */
  drainBegins(): void {
    this.draining = true;
    for (const c of this.unreadBeforeDrain) this.closeUnread(c);
    this.unreadBeforeDrain.clear();
  }

  endShutdown(): void {
    this.draining = false;
    this.unreadBeforeDrain.clear();
    for (const cancel of this.pendingUnread) cancel();
    this.pendingUnread.clear();
  }

  /** Closes the session of `c` if no stream is open, and returns true; false while one is. */
  closeIfIdle(c: Http2Connection): boolean {
    if (c.pending > 0) return false;
    this.registry.forget(c);
    c.session.close(); // GOAWAY with the last stream id; with no stream open it ends at once
    return true;
  }

  destroy(c: Http2Connection): void {
    this.registry.forget(c);
    // Destroying the session closes the socket under it (its `socket` is a proxy that refuses
    // `destroy()`). With CANCEL in the last GOAWAY, the client's open streams fail instead of
    // ending quietly.
    c.session.destroy(undefined, constants.NGHTTP2_CANCEL);
  }

  private streamClosed(c: Http2Connection): void {
    if (c.state === 'closed') return;
    c.pending--;
    if (c.pending > 0) return;
    if (refusing.has(c.session) && this.registry.shuttingDown) {
      this.closeRefusing(c);
      return;
    }
    if (c.state === 'active') this.registry.idle(c);
    if (wentAway.has(c.session) && this.registry.shuttingDown) this.closeUnread(c);
  }

  /**
   * `c` has been told GOAWAY and has no stream open: from now on Node reads nothing more from its
   * socket. nghttp2 stops wanting to read a session once a GOAWAY has gone either way and no stream
   * is open (`nghttp2_session_want_read`), and Node then stops reading the socket (Node 20.20:
   * spec/node/node-internals.spec.ts). So the PING of the two-step GOAWAY is never answered, a
   * stream the client opens is never read, and neither is its own close: waiting for any of them,
   * or lingering `idleLinger`, only holds the drain, until the deadline under load (the client had
   * closed its side long before). Once the drain has begun, the session is closed after one poll
   * phase (a stream whose bytes Node reads in it turns the session active again, and is served);
   * its last GOAWAY refuses what it could not read, safe to retry elsewhere. During the pre-drain
   * delay nothing is closed: it waits for the drain.
   */
  private closeUnread(c: Http2Connection): void {
    if (!this.draining) {
      this.unreadBeforeDrain.add(c);
      return;
    }
    const cancel = afterPoll(() => {
      this.pendingUnread.delete(cancel);
      if (c.state !== 'closed') this.closeIfIdle(c);
    });
    this.pendingUnread.add(cancel);
  }

  /**
   * RFC 9113 §6.8: a GOAWAY with the highest stream id first, so that streams the client is opening
   * right now are still accepted; after a PING round trip, a second GOAWAY with the real last stream
   * id (Node fills it in for 0) refuses newer streams through the protocol. The session itself is
   * closed once its streams are done, never under open streams: Node's close() with streams still
   * sending has been seen to stall a session (nodejs/node#57809 is of that family).
   */
  private goAway(c: Http2Connection): void {
    const { session } = c;
    if (session.closed || session.destroyed || wentAway.has(session)) return;
    wentAway.add(session);
    session.goaway(constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
    const finalGoAway = (): void => {
      if (session.closed || session.destroyed) return;
      session.goaway(constants.NGHTTP2_NO_ERROR, 0);
      refusing.add(session);
      if (c.pending === 0 && c.state !== 'closed' && this.registry.shuttingDown) this.closeRefusing(c);
    };
    if (!session.ping(finalGoAway)) finalGoAway();
  }

  /**
   * Closes a session that has no stream open and refuses every new one through its last GOAWAY:
   * nothing the client sends on it can be processed any more, so it need not linger as an idle
   * HTTP/1 connection does (a stream it opens now is refused, and safe to retry elsewhere).
   */
  private closeRefusing(c: Http2Connection): void {
    this.registry.forget(c);
    c.session.close();
  }
}

/** Sessions told GOAWAY by a shutdown, so that each is told once. */
const wentAway = new WeakSet<Http2Session>();
/** Sessions whose last GOAWAY (with the real last stream id) has gone out: they refuse new streams. */
const refusing = new WeakSet<Http2Session>();
