import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionRegistry, Http1Connection } from './connection-registry';
import { announcedClose, disableKeepAlive, restoreKeepAlive, socketOfClosedResponse } from './node-internals';
import type { RequestSignals } from './request-signals';

/**
 * HTTP/1 on its connections: a connection is active while a request handed to the application has
 * a response that has not closed. During a shutdown the newest pending response of each connection
 * says `Connection: close`, and no request that follows a `close` reaches the application.
 *
 * Per request: one Map lookup, a few property writes and one shared `close` listener on the
 * response; no closure, no array.
 */
export class Http1Connections {
  /** One listener for every response, not a closure per request: `this` is the response. */
  private readonly onResponseClose: (this: ServerResponse) => void;
  /**
   * During a shutdown, the response of each connection whose keep-alive this adapter turned off, to
   * move the mark when a newer one comes. Weak: a mark ends with its connection, and none outlives a
   * shutdown (every connection but a hijacked one, which has no response, is closed by its end).
   */
  private readonly marked = new WeakMap<Http1Connection, ServerResponse>();
  /** Connections on which a request came after a response that said `close`, and was kept from the application. */
  private readonly dropped = new WeakSet<Http1Connection>();

  constructor(
    private readonly registry: ConnectionRegistry,
    /** The connections are TLS sockets, which want their close_notify from `end()`. */
    private readonly tls: boolean,
    /** The signals handlers asked for: each learns when its response closes. */
    private readonly signals: RequestSignals,
  ) {
    const closed = (res: ServerResponse): void => {
      this.responseClosed(res);
    };
    this.onResponseClose = function onResponseClose(this: ServerResponse) {
      closed(this);
    };
  }

  /** A request; returns false when it must not reach the application. */
  request(req: IncomingMessage, res: ServerResponse): boolean {
    const c = this.registry.get(req.socket) ?? this.registry.accept(req.socket, true);
    if (c.protocol !== 'http1') return true;
    if (c.closeAnnounced || (c.newest !== undefined && announcedClose(c.newest))) {
      // A response on this connection already said `close` (RFC 9112 §9.6): the client sees the
      // close before any answer and may retry; processing it would lose its response.
      c.closeAnnounced = true;
      this.dropped.add(c);
      return false;
    }
    if (this.registry.shuttingDown) this.markClosing(c, res);
    c.pending++;
    c.newest = res;
    res.on('close', this.onResponseClose);
    if (c.pending === 1) this.registry.change(c, 'active');
    return true;
  }

  /** An upgrade or a CONNECT took the socket over: it leaves the tracked set. */
  hijack(socket: Socket): void {
    const c = this.registry.get(socket) ?? this.registry.accept(socket, true);
    if (c.state !== 'hijacked') this.registry.change(c, 'hijacked');
  }

  /** The shutdown begins: the response in flight that will be answered last says `Connection: close`. */
  beginShutdown(c: Http1Connection): void {
    if (c.newest !== undefined) this.markClosing(c, c.newest);
  }

  /**
   * Closes `c` if it is idle by its bytes, and returns true; returns false when it is busy (it
   * will be served with `Connection: close`) or still flushing its last response (then closed).
   */
  closeIfIdle(c: Http1Connection): boolean {
    const { socket } = c;
    if (c.state === 'active' || c.state === 'hijacked' || c.bytes.bytesRead !== c.bytesAtIdle) {
      return false; // a request head is on its way: it will be served with `Connection: close`
    }
    if (socket.writableLength > 0) {
      // The last response is still being flushed: finish it, then close; nothing more is read.
      c.closeAnnounced = true;
      socket.end();
      return false;
    }
    // destroy(), not end(): a half-closed socket would still read and dispatch a request.
    this.registry.forget(c);
    socket.destroy();
    return true;
  }

  destroy(c: Http1Connection): void {
    this.registry.forget(c);
    c.socket.destroy();
  }

  /**
   * Pipelined requests: Node drops the responses queued behind one that says `close`, so only the
   * newest pending response of a connection is marked, and the mark moves when a newer one comes.
   */
  private markClosing(c: Http1Connection, res: ServerResponse): void {
    const marked = this.marked.get(c);
    if (marked !== undefined && marked !== res) restoreKeepAlive(marked);
    if (disableKeepAlive(res)) this.marked.set(c, res);
    else this.marked.delete(c);
  }

  private responseClosed(res: ServerResponse): void {
    this.signals.responseClosed(res);
    const c = this.registry.get(socketOfClosedResponse(res));
    if (c?.protocol !== 'http1') return;
    c.pending--;
    if (c.newest === res) c.newest = undefined;
    if (this.registry.shuttingDown && this.marked.get(c) === res) this.marked.delete(c);
    if (announcedClose(res)) c.closeAnnounced = true;
    if (c.pending === 0 && c.closeAnnounced && this.registry.shuttingDown && this.finishedWithKernel(c, res)) {
      // Node's own end() would close the socket a few turns of the event loop from now; nothing
      // is left to send or to read, so close it now and let the drain end on the response.
      this.destroy(c);
      return;
    }
    // Otherwise a connection whose response said `close` is being closed by Node after the
    // flush: it stays active until it is gone, so that nothing destroys it under unsent bytes.
    if (c.pending === 0 && !c.closeAnnounced && c.state === 'active') {
      c.bytesAtIdle = c.bytes.bytesRead;
      this.registry.idle(c);
    }
  }

  /**
   * True when closing `c` at once loses nothing: plain TCP (TLS wants its close_notify from
   * end()), the whole response handed to the kernel, the whole request read, and no request left
   * unanswered on it; with unread bytes a close would reset the connection under the response.
   */
  private finishedWithKernel(c: Http1Connection, res: ServerResponse): boolean {
    return !this.tls && !this.dropped.has(c) && res.req.complete && c.socket.writableLength === 0;
  }
}
