import type { ServerResponse } from 'node:http';
import type { Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Observable, SchedulerLike } from 'rxjs';
import { Broadcast } from '../core/broadcast';
import type { TrackedConnection } from '../core/drain';
import type { ConnState, Protocol } from '../core/state';
import { ByteCounter, byteCounter } from './node-internals';

/**
 * The rounds of `ConnectionRegistry.settleIdle` (ms): an HTTP/1 connection idle for a whole round has
 * its socket's `close` listeners rebuilt at their small size. Long against the gaps between the
 * requests of a busy connection, which then never pays for it; short against the seconds an idle
 * keep-alive connection is kept (Node's `keepAliveTimeout` is 5 s by default).
 */
const settleIdleMsDefault = 100;

/** One state change of one connection, with the socket it happened to. */
export interface ConnectionEvent {
  /** Stable for the life of the connection, unique within one `GracefulServer`. */
  readonly id: number;
  /** The state it entered. */
  readonly state: ConnState;
  /** The state it left; `undefined` for `new`. */
  readonly previous: ConnState | undefined;
  /** The socket HTTP runs on: the TCP socket, the TLS socket once its handshake is done, or an HTTP/2 session's socket. */
  readonly socket: Socket;
  /**
   * On `closed` only: the protocol the connection spoke, `'http1'` (HTTP/1.x, and a TLS connection
   * closed before its handshake was done) or `'http2'` (an HTTP/2 session).
   */
  readonly protocol?: Protocol;
}

/**
 * What every connection record holds. Records live in the registry's own `Map`, never on a socket.
 * Each field costs 8 bytes on every open connection (10,000 idle ones: 80 kB): what only some
 * connections need, for a while, lives in a map of the concern that needs it (a TLS handshake's key in
 * `TlsHandoff`, a shutdown's marks and dropped requests in `Http1Connections`).
 */
interface ConnectionRecord {
  readonly id: number;
  /** The socket named in its events. */
  socket: Socket;
  state: ConnState;
  /** HTTP/1: requests handed to the application whose response has not closed; HTTP/2: open streams. */
  pending: number;
  /**
   * When it was accepted, in ms since the registry's epoch (a small integer that V8 stores in the
   * object itself). Not renewed when it becomes idle: the drain lingers from the later of this and
   * the drain's begin, which is always the begin for a connection open when the shutdown starts,
   * and it stamps the idle changes it sees itself; a clock read per request would buy nothing.
   */
  idleAt: number;
}

/**
 * An HTTP/1 connection: a socket, active while a request is pending. HTTPS is HTTP/1 on the TLS
 * socket, after a handshake phase on the TCP socket under it. On an HTTP/2 server every connection
 * starts as one, until the session Node makes for it binds it (`Http2Connection`).
 */
export interface Http1Connection extends ConnectionRecord {
  readonly protocol: 'http1';
  /** The newest pending response: the one a shutdown marks `Connection: close`. */
  newest: ServerResponse | undefined;
  /** A response on this connection said `Connection: close`: later requests must not be processed. */
  closeAnnounced: boolean;
  /** `socket.bytesRead` when it became idle: more bytes since then mean a request head is arriving. */
  bytesAtIdle: number;
  /** Counts the bytes `socket` has read, a cheaper read than `socket.bytesRead` (see `byteCounter`). */
  bytes: ByteCounter;
  /** The round of `ConnectionRegistry.settleIdle` in which it last went idle. */
  idleRound: number;
}

/**
 * The record of an HTTP/1 connection. A class for its `protocol`, which its prototype answers: the
 * same on every one, it need not cost each record a field.
 */
class Http1Record implements Http1Connection {
  state: ConnState = 'new';
  pending = 0;
  newest: ServerResponse | undefined = undefined;
  closeAnnounced = false;
  bytesAtIdle = 0;
  bytes: ByteCounter;
  idleRound = -1;

  constructor(
    readonly id: number,
    public socket: Socket,
    public idleAt: number,
  ) {
    this.bytes = byteCounter(socket);
  }

  get protocol(): 'http1' {
    return 'http1';
  }
}

/** An HTTP/2 connection: a session, active while a stream is open. The session, not the socket, is closed and destroyed. */
export interface Http2Connection extends ConnectionRecord {
  readonly protocol: 'http2';
  readonly session: Http2Session;
  /** One listener per session for the close of each of its streams. */
  readonly onStreamClose: () => void;
}

export type Connection = Http1Connection | Http2Connection;

/** The fewest slots of `ConnectionsById`: 2 ** 4. */
const minSlotBits = 4;

/**
 * The open connections by id, for the drain, which names them by id: an array of 2 ** n slots (open
 * addressing, linear probing), not a `Map`. A slot is 8 bytes and there are at most 4/3 slots a
 * connection above the fewest (10,000 connections: 13 bytes each), where a `Map` entry costs 46
 * bytes at that size. An id's first slot is the top n bits of the id times 2 ** 32 / φ (Fibonacci
 * hashing), not its low bits: ids are handed out in order, and in consecutive slots the open
 * connections would make one run, which every delete walks to its end (a drain of 19,500 took
 * twice as long).
 */
class ConnectionsById {
  private slots = ConnectionsById.emptySlots(2 ** minSlotBits);
  /** 32 - n: `home` keeps the top n bits of the 32-bit product. */
  private shift = 32 - minSlotBits;
  private count = 0;

  /** A packed array of `length` empty slots (`new Array(length)` would be holey, and past 100,000 slots a dictionary). */
  private static emptySlots(length: number): (Connection | undefined)[] {
    const slots: (Connection | undefined)[] = [];
    for (let i = 0; i < length; i++) slots.push(undefined);
    return slots;
  }

  /** The first slot to look for `id` in. */
  private home(id: number): number {
    return Math.imul(id, 0x9e3779b9) >>> this.shift;
  }

  get(id: number): Connection | undefined {
    const { slots } = this;
    const mask = slots.length - 1;
    for (let i = this.home(id); ; i = (i + 1) & mask) {
      const c = slots[i];
      if (c === undefined || c.id === id) return c;
    }
  }

  /** Adds `c`, or puts it in the place of the connection with its id. */
  set(c: Connection): void {
    const { slots } = this;
    const mask = slots.length - 1;
    let i = this.home(c.id);
    for (let found = slots[i]; found !== undefined; found = slots[i]) {
      if (found.id === c.id) {
        slots[i] = c;
        return;
      }
      i = (i + 1) & mask;
    }
    slots[i] = c;
    this.count++;
    if (this.count * 4 > slots.length * 3) this.resize(this.shift - 1);
  }

  /**
   * Removes the connection `id`. With `shrink` false the table keeps its size: a shutdown closes
   * connections by the thousand, each halving would move every entry left, and V8 would compile the
   * code that does it in the middle of the drain, on the core the drain runs on (a drain of 1,000
   * idle connections halved it seven times, and compiling `resize` and `emptySlots` took 6 ms of
   * V8's compiler thread: `--trace-opt`, 2026-12-03). `fit()` shrinks it once afterwards.
   */
  delete(id: number, shrink: boolean): void {
    const { slots } = this;
    const mask = slots.length - 1;
    let hole = this.home(id);
    for (let c = slots[hole]; c?.id !== id; c = slots[hole]) {
      if (c === undefined) return;
      hole = (hole + 1) & mask;
    }
    slots[hole] = undefined;
    this.count--;
    // Linear probing finds an entry only if no empty slot lies between its home slot and it: move
    // each later entry of the run whose home is not after the hole into the hole.
    for (let i = (hole + 1) & mask, c = slots[i]; c !== undefined; i = (i + 1) & mask, c = slots[i]) {
      if (((i - this.home(c.id)) & mask) >= ((i - hole) & mask)) {
        slots[hole] = c;
        slots[i] = undefined;
        hole = i;
      }
    }
    if (shrink && this.tooSparse(this.shift)) this.resize(this.shift + 1);
  }

  /** Shrinks the table as far as deletes that shrink would have shrunk it one by one. */
  fit(): void {
    let shift = this.shift;
    while (this.tooSparse(shift)) shift++;
    if (shift !== this.shift) this.resize(shift);
  }

  /** A table of 2 ** (32 - `shift`) slots is above the fewest and holds less than one connection for 8 of them. */
  private tooSparse(shift: number): boolean {
    return shift < 32 - minSlotBits && this.count * 8 < 2 ** (32 - shift);
  }

  /** Moves every connection to a new array of 2 ** (32 - `shift`) slots. */
  private resize(shift: number): void {
    const old = this.slots;
    const length = 2 ** (32 - shift);
    const slots = ConnectionsById.emptySlots(length);
    const mask = length - 1;
    this.shift = shift;
    for (const c of old) {
      if (c === undefined) continue;
      let i = this.home(c.id);
      while (slots[i] !== undefined) i = (i + 1) & mask;
      slots[i] = c;
    }
    this.slots = slots;
  }
}

/**
 * The connections of one server: their ids, the one map from socket (and HTTP/2 session) to record,
 * and the publishing of their state changes on `changes$` and `onConnState`.
 */
export class ConnectionRegistry {
  /** Every change of every connection; hot. */
  readonly changes$: Observable<ConnectionEvent>;
  /** True from the start of a shutdown to its end. */
  shuttingDown = false;
  /** One listener for the close of every watched socket, not a closure per socket: `this` is the socket. */
  private readonly onSocketClose: (this: Socket) => void;

  /** Two changes a request: a `Broadcast`, not a `Subject`. */
  private readonly changes = new Broadcast<ConnectionEvent>();
  /** Each connection under its socket; an HTTP/2 connection also under its session. */
  private readonly records = new Map<Socket | Http2Session, Connection>();
  /**
   * The connections by id, for the drain, which names them by id. Kept all along (a set and a
   * delete per connection), so that a shutdown never builds it under a loop it must not hold.
   */
  private readonly ids = new ConnectionsById();
  private nextId = 0;
  /**
   * How many connections are `active` now, kept where every state change passes (`change`): with
   * none, a shutdown has no response in flight to mark and skips its look at every connection.
   * The drain's own `active` is folded from the same changes in the core, which may not be
   * running (no subscriber) and which the Node side does not read.
   */
  private active = 0;
  private readonly epoch: number;
  /**
   * The open HTTP/1 connections that went idle in this round of `settleIdle`, and in the round before.
   * Sets, so that a connection leaves them when it closes: a closed socket is not kept for a round.
   */
  private wentIdle = new Set<Http1Connection>();
  private wentIdleBefore = new Set<Http1Connection>();
  private idleRound = 0;
  /** The unref'd timer of the next round of `settleIdle`, while a connection waits for one. */
  private settleTimer: NodeJS.Timeout | undefined;
  /** ms to the next round: `settleIdleMs`, doubled after each round that found every connection it looked at busy again. */
  private settleDelay: number;

  constructor(
    private readonly scheduler: SchedulerLike,
    private readonly onConnState: ((socket: Socket, state: ConnState) => void) | undefined,
    /** A connection is gone for the books: what other concerns keep for it can go too. */
    private readonly forgotten: (c: Connection) => void,
    /** See `settleIdle`. */
    private readonly settleIdleMs = settleIdleMsDefault,
  ) {
    this.changes$ = this.changes.values$;
    this.epoch = scheduler.now();
    this.settleDelay = settleIdleMs;
    const closed = (socket: Socket): void => {
      const c = this.records.get(socket);
      if (c !== undefined) this.forget(c);
    };
    this.onSocketClose = function onSocketClose(this: Socket) {
      closed(this);
    };
  }

  get(key: Socket | Http2Session): Connection | undefined {
    return this.records.get(key);
  }

  /** The open connection with this id. */
  byId(id: number): Connection | undefined {
    return this.ids.get(id);
  }

  /**
   * Each open connection once, read as it goes: one that closes before it is reached is skipped,
   * one accepted meanwhile is reached too (a TLS connection whose handshake ends meanwhile may come
   * twice). Not a generator: resumed thousands of times in a row, a generator costs twice as much
   * before V8 has compiled it, and a shutdown runs once a process.
   */
  all(): IterableIterator<Connection> {
    const entries = this.records.entries();
    const iterator: IterableIterator<Connection> = {
      next: () => {
        for (let entry = entries.next(); entry.done !== true; entry = entries.next()) {
          const [key, c] = entry.value;
          if (key === c.socket) return { done: false, value: c };
        }
        return { done: true, value: undefined };
      },
      [Symbol.iterator]: () => iterator,
    };
    return iterator;
  }

  /** These connections (default: every open one) as the drain and a late `state$` subscriber need them. */
  tracked(of: Iterable<Connection> = this.all()): TrackedConnection[] {
    const list: TrackedConnection[] = [];
    for (const c of of) list.push({ id: c.id, state: c.state, idleSince: this.epoch + c.idleAt });
    return list;
  }

  /**
   * A shutdown begins: from now on requests are told so (`shuttingDown`), and `inFlight` is called at
   * once for each HTTP/1 connection with a response pending, whose head may go out at any moment and
   * must say `Connection: close`. One look at each connection, nothing built: the rest of what a
   * shutdown does to each one goes in slices (`HttpAdapter.connectionsInSlices`).
   */
  beginShutdown(inFlight: (c: Http1Connection) => void): void {
    this.shuttingDown = true;
    if (this.active === 0) return; // a pending response makes its connection active
    for (const c of this.records.values()) if (c.protocol === 'http1' && c.newest !== undefined) inFlight(c);
  }

  endShutdown(): void {
    this.shuttingDown = false;
    this.ids.fit();
    // What is left open (hijacked connections) never goes idle again: no round has anything to do.
    this.wentIdle.clear();
    this.wentIdleBefore.clear();
    this.stopSettling();
  }

  /**
   * A new connection, reported `new`. `watch` false for a socket whose `close` would not find it here
   * (an HTTP/2 session's proxy socket: its listeners run on the real socket).
   */
  accept(socket: Socket, watch: boolean): Http1Connection {
    const c = new Http1Record(++this.nextId, socket, this.sinceEpoch());
    this.records.set(socket, c);
    this.ids.set(c);
    if (watch) socket.on('close', this.onSocketClose);
    this.publish(c, undefined);
    return c;
  }

  /** From now on `c` is `socket` (HTTPS: the TLS socket once the handshake is done). */
  move(c: Http1Connection, socket: Socket): void {
    this.records.delete(c.socket);
    c.socket.off('close', this.onSocketClose);
    c.socket = socket;
    c.bytes = byteCounter(socket);
    this.records.set(socket, c);
    socket.on('close', this.onSocketClose);
  }

  /**
   * `next` takes the place of the connection with the same id and socket: an HTTP/2 connection once
   * its session is bound (after any TLS handshake: Node makes the session at `secureConnection`).
   */
  replace(next: Http2Connection): void {
    this.records.set(next.socket, next);
    this.records.set(next.session, next);
    this.ids.set(next);
  }

  change(c: Connection, state: ConnState): void {
    const previous = c.state;
    c.state = state;
    if (previous === 'active') this.active--;
    if (state === 'active') this.active++;
    this.publish(c, previous);
  }

  /** `c` is idle from now. */
  idle(c: Connection): void {
    if (c.protocol === 'http1' && c.idleRound !== this.idleRound) {
      c.idleRound = this.idleRound;
      this.wentIdle.add(c);
      this.settleTimer ??= setTimeout(this.settleIdle, this.settleDelay).unref();
    }
    this.change(c, 'idle');
  }

  /**
   * The connection is gone for the books (destroyed by us, or closed): report `closed` once, with
   * its protocol. An HTTP/2 server learns a connection's protocol after its `new` (h2c binds the
   * session just after it, TLS once the handshake is done): `closed` is the first change that
   * always knows it, and it comes once a connection, so requests pay nothing for it.
   */
  forget(c: Connection): void {
    if (c.state === 'closed') return;
    this.records.delete(c.socket);
    if (c.protocol === 'http2') this.records.delete(c.session);
    this.forgotten(c);
    // A shutdown's closes leave the table's size alone; `endShutdown` fits it once.
    this.ids.delete(c.id, !this.shuttingDown);
    if (c.protocol === 'http1' && c.idleRound >= this.idleRound - 1) {
      this.wentIdle.delete(c);
      this.wentIdleBefore.delete(c);
      if (this.wentIdle.size === 0 && this.wentIdleBefore.size === 0) this.stopSettling();
    }
    this.change(c, 'closed');
  }

  /**
   * Rebuilds the `close` listeners of the HTTP/1 sockets that have stayed idle for a whole round
   * (`settleIdleMs` to twice that), by taking this registry's listener off and putting it back first,
   * where `accept` put it.
   *
   * Why: Node keeps one `close` listener of its own on a server socket, and this registry adds one,
   * so the socket's listeners for `close` are an array. Each response adds Node's
   * `onServerResponseClose` to it while it is on the socket: the push grows the array's store from 2
   * to 19 slots (V8's growth: n + n/2 + 16), and removing the listener again never shrinks it, so a
   * connection that has served a request keeps 200 bytes of listener array where bare Node keeps a
   * function (Node 20.20). Taken off and added again, it is a two-slot array (64 bytes). Doing it at
   * each idle change would cost every request (~1,500 instructions, 2.6 % of one, and the next request
   * grows it again); once a round it costs only connections that stay idle, at most once each per
   * round. A round whose connections were all busy again found nothing to do: the next one comes
   * twice as late (up to 16 times `settleIdleMs`), so that a server whose connections are all busy
   * wakes for it less than once a second, not ten times (under callgrind, bench A counted the rounds
   * at ~300 instructions a request).
   */
  private readonly settleIdle = (): void => {
    const settled = this.wentIdleBefore;
    const round = this.idleRound - 1;
    this.wentIdleBefore = this.wentIdle;
    this.wentIdle = new Set();
    this.idleRound++;
    this.settleTimer = undefined;
    // A shutdown closes the idle connections itself, and a round must not hold its loop.
    if (this.shuttingDown) settled.clear();
    let rebuilt = 0;
    for (const c of settled) {
      // Idle since the round before this one, and not since: a connection that went idle again is in the newer list.
      if (c.state !== 'idle' || c.idleRound !== round) continue;
      c.socket.off('close', this.onSocketClose);
      c.socket.prependListener('close', this.onSocketClose);
      rebuilt++;
    }
    if (settled.size > 0) {
      this.settleDelay = rebuilt > 0 ? this.settleIdleMs : Math.min(this.settleDelay * 2, this.settleIdleMs * 16);
    }
    if (this.wentIdleBefore.size > 0) this.settleTimer = setTimeout(this.settleIdle, this.settleDelay).unref();
  };

  /** No round of `settleIdle` is due: nothing waits for one, and no timer is left for nothing. */
  private stopSettling(): void {
    clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
  }

  /**
   * Whole ms, rounded up (never earlier than the clock): the difference of two clock readings is a
   * heap number of 16 bytes per connection, where an integer from `Math.ceil` is a small integer
   * that V8 keeps in the record itself (for 24 days after the registry was made).
   */
  private sinceEpoch(): number {
    return Math.ceil(this.scheduler.now() - this.epoch);
  }

  /** Publishes the change `c` has just made; `closed` names the protocol it spoke (see `forget`). */
  private publish(c: Connection, previous: ConnState | undefined): void {
    if (this.changes.observed) {
      const { id, state, socket } = c;
      // One object per event: a drain publishes thousands of `closed` at once.
      this.changes.next(
        state === 'closed' ? { id, state, previous, socket, protocol: c.protocol } : { id, state, previous, socket },
      );
    }
    this.onConnState?.(c.socket, c.state);
  }
}
