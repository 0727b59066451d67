import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Linux's tables of the TCP sockets of this network namespace, by the family of their sockets. */
const tables = { IPv4: '/proc/net/tcp', IPv6: '/proc/net/tcp6' } as const;

/** The address family of a TCP listen socket, as `server.address().family` names it: the table that lists it. */
export type ListenFamily = keyof typeof tables;
/** `st` of a listening socket in those tables (`TCP_LISTEN`). */
const listenState = '0A';
/**
 * Bytes asked of the kernel a read: the header and two or three lines. The kernel formats only what
 * a read asks for, and what it formats after this listener's line is time in which a connection
 * can complete unseen before the close, to be reset by it (README, "The window that remains").
 */
const readSize = 512;

/** The accept queue of one listening socket, read as often as needed with its table kept open. */
export interface AcceptQueue {
  /** What the queue held when it was opened. */
  readonly atOpen: number;
  /** How many connections the kernel holds for the listener now; undefined if it can no longer be read. */
  length(): number | undefined;
  /** Closes the table; `length()` is not to be called after it. */
  close(): void;
}

/**
 * Opens the accept queue of the listen socket `fd`: how many connections the kernel has completed
 * on it that the process has not accepted yet. Undefined where that cannot be read (not Linux, no
 * `/proc`, the socket not found). With `family`, only the table of that family is read (a socket
 * bound to `::`, as `listen(port)` binds it, is an IPv6 socket); without it, both.
 *
 * Closing a listen socket resets every connection still in its accept queue, and libuv accepts one
 * connection per poll phase: the adapter keeps the listener open until this reads 0 (listener.ts),
 * reading it once a turn while it serves the queue. Linux lists the listening sockets first in
 * `/proc/net/tcp` and `/proc/net/tcp6`; for those, the `rx_queue` column is the length of the
 * accept queue (what `ss -lnt` shows as Recv-Q). The socket is found by its inode, which `fstat`
 * gives for the descriptor. Only the listening part of a table is read, and the table stays open
 * between reads: each read starts again at its first byte (a positioned read, answered with the
 * table as it is then), so the last read before a close costs a `pread`, not an `open` as well.
 *
 * A read of the wrong table is not free: where a table has no line after the listening ones (no
 * connection of that family), the kernel finds its end only by walking every bucket of its hash
 * table of connections, 2.5–3.5 ms here, each read; the same walk follows a listener whose line is
 * the last of its table.
 *
 * @example
 * const queue = openAcceptQueue(fd, 'IPv4'); // queue.atOpen: 3, three connections wait to be accepted
 * queue?.length(); // 0 once the loop has accepted them
 * queue?.close();
 */
export function openAcceptQueue(fd: number, family?: ListenFamily): AcceptQueue | undefined {
  if (process.platform !== 'linux') return undefined;
  let inode: string;
  try {
    inode = String(fstatSync(fd).ino);
  } catch {
    return undefined; // the descriptor is gone
  }
  for (const table of family === undefined ? [tables.IPv4, tables.IPv6] : [tables[family]]) {
    let handle: number;
    try {
      handle = openSync(table, 'r');
    } catch {
      continue; // no /proc, or no IPv6
    }
    const queue = listenerIn(
      (chunk, position) => readSync(handle, chunk, 0, chunk.length, position),
      inode,
      () => closeSync(handle),
    );
    if (queue !== undefined) return queue;
    closeSync(handle);
  }
  return undefined;
}

/**
 * How many connections the kernel has completed on the listen socket `fd` that the process has not
 * accepted yet, read once; undefined where that cannot be read (see `openAcceptQueue`, and `family`
 * there).
 *
 * @example
 * const queued = acceptQueueLength(fd); // 3: three connections wait to be accepted
 */
export function acceptQueueLength(fd: number, family?: ListenFamily): number | undefined {
  const queue = openAcceptQueue(fd, family);
  queue?.close();
  return queue?.atOpen;
}

/**
 * Runs Node's side of the read of an accept queue once (`openSync`, `fstatSync`, `readSync`,
 * `closeSync`), on `/dev/null`; on Linux only, where a shutdown reads the queue. The adapter's
 * warm-up calls it once per process.
 *
 * Why: a fresh process ran those functions, and the table's parse, for the first time in its
 * first shutdown, between the call that stops accepting and the close of the listener (CHANGELOG).
 * Not on a real table: in a process that has just started, a read may reach a table's end, which
 * costs the kernel's walk (see `openAcceptQueue`).
 *
 * @example
 * warmUpAcceptQueue(); // when the first GracefulServer of a process is made
 */
export function warmUpAcceptQueue(): void {
  if (process.platform !== 'linux') return;
  let fd: number;
  try {
    fd = openSync('/dev/null', 'r');
  } catch {
    return;
  }
  try {
    fstatSync(fd);
    readSync(fd, Buffer.alloc(readSize), 0, readSize, 0);
  } catch {
    // Nothing to warm up: a warm-up never fails the constructor that runs it.
  } finally {
    closeSync(fd);
  }
  // The parse runs between the read that finds the queue empty and the close (see `warmUpTable`).
  try {
    const table = Buffer.from(warmUpTable(), 'latin1');
    const queue = listenerIn(
      (chunk, position) => table.copy(chunk, 0, position),
      warmUpInode,
      () => undefined,
    );
    queue?.length();
    queue?.close();
  } catch {
    // As above.
  }
}

/** A line of `/proc/net/tcp` as the kernel pads it (149 characters and a newline), its inode in the tenth column. */
function tableLine(sl: number, state: string, rxQueue: number, inode: string): string {
  const columns = [`${sl}:`, '0100007F:1F90', '00000000:0000', state, `00000000:${rxQueue.toString(16).padStart(8, '0')}`];
  const line = `${columns.join(' ')} 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0`;
  return `${line.padStart(line.length + 3).padEnd(149)}\n`;
}

const warmUpInode = '4242';
/**
 * A table for the warm-up: the header, two other listeners, the one looked for (in the second
 * chunk of 512 bytes, as a real read can find it) and a connection. The first check after a
 * shutdown opens the real table and closes the listener right after the read that finds its queue
 * empty; parsing for the first time there widened that window (medians 0.27 ms from the read to
 * the close in fresh processes, 0.05 with this; 2026-12-03, README "The window that remains").
 */
function warmUpTable(): string {
  return [
    `${'  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'.padEnd(149)}\n`,
    tableLine(0, listenState, 0, '1001'),
    tableLine(1, listenState, 0, '1002'),
    tableLine(2, listenState, 3, warmUpInode),
    tableLine(3, '01', 0, '1003'),
  ].join('');
}

/** The accept queue of the listening socket `inode` in the table `readAt` reads, if the table lists it; `close` closes the table. */
function listenerIn(readAt: ReadAt, inode: string, close: () => void): AcceptQueue | undefined {
  const chunk = Buffer.alloc(readSize);
  const read = (): number | undefined => {
    try {
      return listenerQueue(readAt, inode, chunk);
    } catch {
      return undefined;
    }
  };
  const atOpen = read();
  if (atOpen === undefined) return undefined;
  return { atOpen, length: read, close };
}

/** Reads a table into `chunk` from byte `position` on; the number of bytes read, 0 at its end. */
export type ReadAt = (chunk: Buffer, position: number) => number;

/**
 * The accept queue of the listening socket `inode` in a TCP table that `readAt` reads from its
 * first byte, a chunk at a time and only as far as its listening sockets go: the `rx_queue` of its
 * line, or undefined when the listening sockets end without it.
 *
 * @example
 * listenerQueue((chunk, position) => readSync(fd, chunk, 0, chunk.length, position), '81234', Buffer.alloc(512)); // 0
 */
export function listenerQueue(readAt: ReadAt, inode: string, chunk: Buffer): number | undefined {
  let position = 0;
  let rest = '';
  let header = true;
  for (;;) {
    const read = readAt(chunk, position);
    if (read <= 0) return undefined;
    position += read;
    const text = rest + chunk.toString('latin1', 0, read);
    let from = 0;
    for (let end = text.indexOf('\n'); end >= 0; from = end + 1, end = text.indexOf('\n', from)) {
      if (header) {
        header = false;
        continue;
      }
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
      const columns = text.slice(from, end).trim().split(/\s+/);
      if (columns[3] !== listenState) return undefined;
      if (columns[9] === inode) return parseInt(columns[4]?.split(':')[1] ?? '', 16);
    }
    rest = text.slice(from);
  }
}
