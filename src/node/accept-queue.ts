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
 * can complete unseen before the close, to be reset by it. In shutdowns under load (2026-12-03, two
 * runs of 30 each) a read of 4 KiB took 145-160 µs and one of 1 KiB 108-121; from the start of the
 * last read to the close, 258 -> 213-228 µs. With 512 bytes, the table kept open and the close made
 * in the call that reads (listener.ts): medians of 62-88 µs in four runs of 10 to 100 shutdowns,
 * against 206-345 µs for the reads of 1 KiB and the close one step further, run alternately.
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
 * between reads: each read starts again at its first byte (a positioned read, which the kernel
 * answers with the table as it is then), so the last read before a close costs a `pread` and the
 * parse of a line or two, not an `open`, an `fstat` and a `close` as well (24 against 44 µs from
 * the start of that read to its answer, 2026-12-03).
 *
 * A read of the wrong table is not free. The search ends at the first line that is no listener, or
 * at the end of the table where it has none (no connection of that family), and the kernel finds
 * that end only by walking every bucket of its hash table of connections: 2.5–3.5 ms here, each
 * read. Before the family chose the table, opening the queue of an IPv6 listener, in a namespace
 * with no other connection, took 8.0–15.4 ms (2026-12-03, two runs); with it, 3.2–4.4. That walk
 * is also why a read costs as much when its listener's line is the last of the table: after each
 * line it writes, the kernel looks for the next one.
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
 * Why: a fresh process ran those functions for the first time in its first shutdown, between the
 * call that stops accepting and the close of the listener. In a probe with bench B's shape
 * (2026-12-03, the first shutdown of fresh processes with 100 idle connections, 15 each way,
 * alternated, twice), that step took 1.60 and 1.72 ms (medians), and 0.99 and 1.09 ms after this.
 * Not on a table itself: a read that reaches the end of `/proc/net/tcp` or `/proc/net/tcp6` has the
 * kernel walk every bucket of its hash table of connections (2.5–3.5 ms here, with 1 or 4,500
 * sockets in the table), and in a process that has just started nothing may come before that end.
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
  // The parse, and what returns the queue, run between the read that finds the queue empty and the
  // close: their first run there, with V8's compile of the regular expression and the first calls
  // of the string methods, widened that window in a fresh process (see `warmUpTable`).
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

/**
 * A line of `/proc/net/tcp` as the kernel pads it (149 characters and a newline): `sl`, the local
 * and remote address, the state, the queues, and so on to the inode in the tenth column.
 */
function tableLine(sl: number, state: string, rxQueue: number, inode: string): string {
  const columns = [`${sl}:`, '0100007F:1F90', '00000000:0000', state, `00000000:${rxQueue.toString(16).padStart(8, '0')}`];
  const line = `${columns.join(' ')} 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0`;
  return `${line.padStart(line.length + 3).padEnd(149)}\n`;
}

const warmUpInode = '4242';
/**
 * A table for the warm-up: the header, two other listeners, the one looked for (which the read of
 * 512 bytes reaches only in its second chunk, as a real read can) and a connection.
 *
 * Why: since the table is opened at the first check rather than at the call (listener.ts), that
 * check ran the parse, and what returns the queue, for the first time in a fresh process, between
 * the read that found the queue empty and the close. Measured in fresh processes with 50 idle
 * connections (2026-12-03, a probe outside the repository timing from the end of the last read of
 * the table to the close, three runs of 12-16 processes each, interleaved): medians of 0.29-0.33
 * ms without this warm-up, 0.14-0.21 with it, and 0.13-0.18 with the table opened at the call as
 * before. A connection the kernel completes in that window is reset by the close: one full
 * benchmark run that day had one reset newcomer in one of its three paced trials over HTTP.
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
