import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2Session } from 'node:http2';
import cluster from 'node:cluster';
import { Server as NetServer, Socket } from 'node:net';

/**
 * Every Node internal, and every Node behaviour its documentation does not promise, that the
 * adapter relies on: one small function each, with the Node version it was read on and why the
 * adapter needs it. spec/node/node-internals.spec.ts has a spec for each that fails if a Node
 * version changes it; the same file guards the behaviours that need no call of their own:
 * - a server's events all go through its own `emit` property (intercept.ts replaces it);
 * - an HTTP/2 server makes a connection's session inside the emit of its `connection` or
 *   `secureConnection` event (http2-sessions.ts binds the session to it that way);
 * - once GOAWAY is sent and no stream is open, an HTTP/2 session no longer keeps the process alive
 *   (event-loop.ts holds the loop during a shutdown), and Node no longer reads it: not a PING's
 *   answer, not a new stream, not the client's FIN (http2-sessions.ts closes such a session).
 */

/**
 * True once `res` has written a head that says `Connection: close`, whoever decided it (the
 * client's request, the application's own header, or `shouldKeepAlive = false`).
 *
 * Node has no public flag for this. `OutgoingMessage#_last` is set by `_storeHeader` when the head
 * announces the end of the connection (read on Node 20.20).
 */
export function announcedClose(res: ServerResponse): boolean {
  return res.headersSent && (res as ServerResponse & { _last?: boolean })._last === true;
}

/**
 * Makes the head of `res`, if it is not written yet and would keep the connection alive, say
 * `Connection: close`; returns whether it did. `OutgoingMessage#shouldKeepAlive` is undocumented:
 * `_storeHeader` reads it when it writes the head (Node 20.20). A client that asked for `close`
 * and an application's own `Connection` header win over it.
 */
export function disableKeepAlive(res: ServerResponse): boolean {
  if (res.headersSent || !res.shouldKeepAlive) return false;
  res.shouldKeepAlive = false;
  return true;
}

/** Undoes `disableKeepAlive(res)` while the head of `res` is not written yet. */
export function restoreKeepAlive(res: ServerResponse): void {
  if (!res.headersSent) res.shouldKeepAlive = true;
}

/**
 * Stops `server` listening and touches none of its connections. `http.Server#close()` also
 * destroys every idle keep-alive socket at once (`httpServerPreClose`, Node ≥ 19; read on 20.20),
 * and the wrapped server's own `close` is the graceful one: `net.Server.prototype.close` is the
 * listener alone.
 */
export function stopListening(server: NetServer): void {
  if (server.listening) NetServer.prototype.close.call(server);
}

/**
 * The close of the socket `server` listens on, as a function that runs no JavaScript: Node's own
 * `Server#_handle.close`, bound to the handle (`HandleWrap::Close`, native; Node 20.20), or
 * undefined when the server does not listen. A later `stopListening(server)` does Node's side of the
 * close as usual: the handle's second close does nothing, and `listening`, `address()` and the
 * `close` event follow. Where every microsecond between a check and the close counts (listener.ts),
 * this close costs no compile on its first call, as a JavaScript function's first call does.
 */
export function listenSocketCloser(server: NetServer): (() => void) | undefined {
  const handle = (server as NetServer & { _handle?: { close?: unknown } | null })._handle;
  if (!server.listening || typeof handle?.close !== 'function') return undefined;
  return (handle.close as () => void).bind(handle);
}

/**
 * The `socket` of an HTTP/2 session, to name its connection in a `ConnectionEvent`. It is a Proxy
 * over the session (Node 20.20), not the socket `connection` gave: `destroy()`, `end()`, `write()`
 * and `emit()` throw `ERR_HTTP2_NO_SOCKET_MANIPULATION`, and a listener added through it runs on the
 * real socket, with that socket as `this`, so the proxy is no key to find the connection by. Watch
 * and destroy the session instead.
 */
export function sessionSocket(session: Http2Session): Socket {
  return session.socket;
}

/**
 * True for both kinds of HTTP/2 server. Node exports no HTTP/2 server class; `updateSettings()` is
 * defined on `Http2Server` and `Http2SecureServer` and on no other server (Node ≥ 15.1; read on
 * 20.20).
 */
export function isHttp2Server(server: NetServer): boolean {
  return typeof (server as NetServer & { updateSettings?: unknown }).updateSettings === 'function';
}

/**
 * True for the compatibility `request` of an HTTP/2 stream, false for an HTTP/1 request (which an
 * `allowHTTP1` server also emits as `request`). Node emits `stream` for the same stream first,
 * and the request carries it (Node 20.20); the adapter follows HTTP/2 through `stream` alone.
 */
export function isHttp2Request(req: IncomingMessage | Http2ServerRequest): boolean {
  return (req as { stream?: unknown }).stream !== undefined;
}

/**
 * The socket of the connection a response was on, at the response's `close`. `res.socket` is
 * already `null` then: Node detaches it at `finish` and emits `close` a tick later, once it has
 * moved the socket on to the next queued response (Node 20.20); `res.req.socket` stays.
 */
export function socketOfClosedResponse(res: ServerResponse): Socket {
  return res.req.socket;
}

/** What counts the bytes a socket has read: `byteCounter(socket).bytesRead` is `socket.bytesRead`. */
export interface ByteCounter {
  readonly bytesRead: number;
}

/**
 * The libuv stream under `socket` (its TCP wrap, or a TLS socket's TLS wrap), which counts the bytes
 * the socket has read, or the socket itself when it has none (destroyed, or a stream that is no
 * `net.Socket`). Read once a connection: `socket.bytesRead` reads `this._handle` twice, and
 * `Socket#_handle` is a private getter over `this[kHandle]` whose keyed load every kind of socket
 * shares, megamorphic at ~240 instructions each (Node 20.20). While the socket is open, the
 * stream's `bytesRead` is what `socket.bytesRead` returns.
 */
export function byteCounter(socket: Socket): ByteCounter {
  return (socket as Socket & { _handle?: ByteCounter | null })._handle ?? socket;
}

/**
 * Identifies a TCP connection by its two ends. A TLS server hands the TCP socket to `connection`
 * and the TLS socket that HTTP runs on to `secureConnection`, with no public link between the two
 * (`TLSSocket#_parent` is private); the TLS socket reports its TCP socket's addresses (Node 20.20).
 */
export function addressPair(socket: Socket): string {
  return `${String(socket.remoteAddress)}:${String(socket.remotePort)}>${String(socket.localPort)}`;
}

/**
 * The file descriptor of the socket `server` listens on, or undefined where there is none to read
 * (not listening, Windows, a node:cluster worker, whose listener lives in the primary).
 * `Server#_handle` is private; its `fd` is the libuv handle's descriptor on Unix, -1 elsewhere
 * (Node 20.20).
 */
export function listenFd(server: NetServer): number | undefined {
  const fd = (server as NetServer & { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * True when `server` listens on a TCP socket that this process bound itself and holds alone, so
 * that changing its backlog concerns no other process. `Server#_connectionKey` is `4:address:port`
 * or `6:…` for a socket bound by `listen(port)` and starts with `null` for one passed in as a
 * descriptor or a handle (Node 20.20); a node:cluster worker's listening socket is the primary's,
 * shared between workers with `SCHED_NONE`.
 */
export function ownsListenSocket(server: NetServer): boolean {
  const key = (server as NetServer & { _connectionKey?: unknown })._connectionKey;
  return !cluster.isWorker && typeof key === 'string' && (key.startsWith('4:') || key.startsWith('6:'));
}

/**
 * Sets the backlog of the socket `server` listens on, which Linux applies to a listening socket at
 * once; returns whether it did. `Server#_handle.listen(backlog)` calls libuv's `uv_listen` again,
 * which calls `listen()` on the same descriptor and keeps the handle's callback (Node 20.20).
 */
export function setBacklog(server: NetServer, backlog: number): boolean {
  const handle = (server as NetServer & { _handle?: { listen?: unknown } | null })._handle;
  if (!server.listening || typeof handle?.listen !== 'function') return false;
  return (handle.listen as (backlog: number) => number).call(handle, backlog) === 0;
}
