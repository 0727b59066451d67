import type { Server as NetServer } from 'node:net';
import { AcceptQueue, acceptQueueLength, ListenFamily, openAcceptQueue } from './accept-queue';
import { afterAcceptQueue } from './event-loop';
import { listenFd, listenSocketCloser, ownsListenSocket, setBacklog, stopListening } from './node-internals';

/**
 * Closes the socket `server` listens on once the loop has accepted every connection the kernel
 * completed for it, then calls `closed()`. Returns a function that closes it at once instead (a
 * shutdown forced before that), and does nothing once it is closed.
 *
 * Closing a listen socket resets every connection still in its accept queue: those clients were
 * told they are connected and may have sent their request. libuv accepts one a turn, and clients
 * told `Connection: close` reconnect at once, so under load the queue refills as fast as the loop
 * empties it (a benchmark of 100 looping clients left 76 queued at the shutdown and reset 95 at the
 * close). On Linux, when this process owns the socket, its backlog first drops to 0: the kernel then
 * holds at most one completed connection, answers no other SYN (the client's retry, a second
 * later, finds the listener closed and is refused), and the listener closes at the first turn that
 * finds the queue empty. Elsewhere the loop accepts what was queued at the call and the newcomers
 * that keep coming, within a bound (event-loop.ts).
 *
 * @example
 * const closeNow = closeListenerAfterQueue(server, () => accepts, () => console.log('no longer accepting'));
 */
export function closeListenerAfterQueue(server: NetServer, accepted: () => number, closed: () => void): () => void {
  const fd = listenFd(server);
  const family = fd === undefined ? undefined : tcpFamily(server); // a node:cluster worker has no descriptor
  const table = fd !== undefined && family !== undefined && process.platform === 'linux' ? { fd, family } : undefined;
  const shrunk = table !== undefined && ownsListenSocket(server) && setBacklog(server, 0);
  // A queue that is not shrunk is read once now: the loop accepts at least what it held (event-loop.ts).
  const queuedAtCall = table !== undefined && !shrunk ? acceptQueueLength(table.fd, table.family) : undefined;
  // The socket closes in the same function call as the read that finds the queue empty, with no code
  // between them that runs there for the first time: a connection the kernel completes in between is
  // reset by the close, and a function's first call costs V8 its compile (README, "The window that
  // remains").
  const closeSocket = shrunk ? listenSocketCloser(server) : undefined;
  // A shrunk queue is first read at the first check, not at this call: a read can cost the kernel a
  // walk of its whole table of connections (accept-queue.ts), and one at the call would be one more.
  let queue: AcceptQueue | undefined;
  let queueLength: (() => number | undefined) | undefined;
  if (shrunk) {
    let opened = false;
    // The first read opens the table; each later one reads it again. Nothing is made between a read
    // and the close.
    queueLength = () => {
      let length: number | undefined;
      if (opened) {
        length = queue?.length();
      } else {
        opened = true;
        queue = openAcceptQueue(table.fd, table.family);
        length = queue?.atOpen;
      }
      if (length === 0) closeSocket?.();
      return length;
    };
  }
  let open = true;
  /** Node's side of the close (the socket itself may be closed already), and the table's. */
  const stop = (): void => {
    open = false;
    stopListening(server);
    queue?.close();
    queue = undefined;
  };
  const cancel = afterAcceptQueue(
    accepted,
    () => {
      stop();
      closed();
    },
    { queued: queuedAtCall, queueLength },
  );
  return () => {
    if (!open) return;
    cancel();
    stop();
  };
}

/**
 * The family of the TCP socket `server` listens on, which names the table that lists it; undefined
 * for a pipe (a Unix domain socket: no TCP table lists it, and reading both to the end cost 11 ms,
 * 2026-12-03) and for a server that does not listen.
 */
function tcpFamily(server: NetServer): ListenFamily | undefined {
  const address = server.address();
  if (address === null || typeof address === 'string') return undefined;
  return address.family === 'IPv4' || address.family === 'IPv6' ? address.family : undefined;
}
