import { asyncScheduler, isObservable, Observable, SchedulerLike, Subject, Subscription } from 'rxjs';
import type { CancelReason, TrackedConnection } from './core/drain';
import { Lifecycle, LifecycleHost, ShutdownResult } from './core/lifecycle';
import type { ConnectionChange, ConnState, Phase, ServerState } from './core/state';
import { describeValue, NotReadyError } from './errors';
import { OptionReader } from './options';
import { readShutdownOptions, waitForShutdown, watchTrigger } from './server-cycle';
import { ShutdownSubject, ShutdownTarget } from './shutdown-on';

export type { ShutdownResult } from './core/lifecycle';
export type { ConnectionChange, ConnState, Phase, ServerState } from './core/state';
export { NotReadyError } from './errors';

// rx-graceful/testing: the marble-testing kit. It loads the core and nothing of node:net or
// node:http, so that a user's marble test of their shutdown timing stays pure and quick.

/**
 * Options of `VirtualServer`: the options of `GracefulServer` that shape a shutdown, with the same
 * defaults, limits and `TypeError`s. Every duration is in milliseconds of the scheduler's clock; in
 * `testScheduler.run` a frame is 1 ms, so `'10s'` in a marble diagram is 10 000.
 *
 * @example
 * new VirtualServer({ timeout: 30_000, drainDelay: 5000 }); // 5 s of delay, then at most 30 s of drain
 */
export interface VirtualServerOptions {
  /** How long survivors may live once the drain begins (ms); then they are destroyed and counted in `killed`. 0 = wait forever (default 0), at most 2^31 - 1. */
  timeout?: number;
  /** Keep accepting and serving this long (ms) before the drain begins: phase `draining`, `accepting` true, `ready$` false (default 0). `timeout` counts from its end. */
  drainDelay?: number;
  /**
   * During the drain, an idle connection is closed once it has been idle this long (ms), counted
   * from the start of the drain or from when it became idle, if later; at most 1000, never past the
   * deadline (default 1000, as `GracefulServer`'s).
   */
  idleLinger?: number;
  /** `requestsAborted$` emits `'deadline'` this long (ms) before the deadline; 0 = at the deadline itself (default 0); at least `timeout`: as the drain begins. */
  cancelAhead?: number;
  /** The drain also waits for hijacked connections, and destroys and counts them in `killed` at the deadline (default false). */
  waitForHijacked?: boolean;
  /** Time source of every timer (default `asyncScheduler`, which `testScheduler.run` turns into virtual time: leave it out there). */
  scheduler?: SchedulerLike;
}

/** Every option name, for the `TypeError` that names an unknown one (the compiler checks the list is whole). */
const optionNames: Readonly<Record<keyof VirtualServerOptions, true>> = {
  timeout: true,
  drainDelay: true,
  idleLinger: true,
  cancelAhead: true,
  waitForHijacked: true,
  scheduler: true,
};

const connStates: readonly ConnState[] = ['new', 'active', 'idle', 'hijacked', 'closed'];

/**
 * What happens to connection `id`: a value of the marble diagram given to `VirtualServer.connect()`.
 * - `new`: a client connects (and has sent nothing yet);
 * - `active`: a request arrives on it (a connection the server has not seen is accepted as `new` first);
 * - `idle`: its request ends, and the connection stays open (keep-alive); during a shutdown the
 *   response said `Connection: close`, so the connection closes instead, as on a real server;
 * - `hijacked`: an upgrade (WebSocket, `CONNECT`) takes it over;
 * - `closed`: the client closes it.
 *
 * @example
 * cold('a 999ms b', { a: { id: 1, state: 'active' }, b: { id: 1, state: 'idle' } }); // a 1 s request
 */
export interface VirtualConnectionEvent {
  /** Names the connection; any number, unique while it is open. */
  readonly id: number;
  /** The state the client's action puts it in. */
  readonly state: ConnState;
}

/**
 * A server with no sockets, for marble tests of shutdown timing: connections are marble diagrams
 * of `VirtualConnectionEvent`s, time is the scheduler's (`testScheduler.run`), and the shutdown runs
 * on the very core of `GracefulServer`, with its options, its `state$`, `done$`, `shutdown$`,
 * `ready$`, `phase`, `shutdown()`, `shutdownOK()`, `force()`, `wait()`, `shutdownOn()` and its
 * `ShutdownResult`: what a marble test shows here holds for the real server.
 *
 * Where the core needs the sockets, the virtual server answers as the Node adapter does for an
 * HTTP/1 server: an idle connection it closes, or a connection it destroys, is reported `closed`;
 * a request that ends during a shutdown closes its connection (`Connection: close`); the events of
 * a connection after it has closed are ignored (a client writing to a closed socket; `new` brings
 * the id back as a new connection). The real listener closes only after the connections the kernel
 * had queued, and idle connections are closed only once their bytes have been read: here the
 * listener closes, and idle connections are closed, at the end of the frame in which the drain
 * decides it, after the connection events already due in that frame. A connection that comes in
 * that frame is accepted; from the next frame on, one that comes is refused, and leaves no trace.
 *
 * Throws a `TypeError` for an unknown option name or a bad option value, as `GracefulServer` does.
 *
 * @example
 * import { map } from 'rxjs';
 * import { TestScheduler } from 'rxjs/testing';
 * import { VirtualServer } from 'rx-graceful/testing';
 *
 * const testScheduler = new TestScheduler((actual, expected) => expect(actual).to.deep.equal(expected));
 * testScheduler.run(({ cold, hot, expectObservable }) => {
 *   const server = new VirtualServer({ timeout: 30_000 });
 *   // one request, from 0 to 15 s; SIGTERM at 10 s
 *   server.connect(cold('a 14999ms b', { a: { id: 1, state: 'active' }, b: { id: 1, state: 'idle' } }));
 *   server.shutdownOn(hot('10s s'));
 *   server.serve();
 *   expectObservable(server.done$.pipe(map(({ killed }) => killed))).toBe('15s k', { k: 0 });
 * });
 */
export class VirtualServer implements ShutdownTarget {
  /** Every change of every connection as the server sees it, its own closes included; hot. */
  readonly connections$: Observable<ConnectionChange>;
  /** Replays the current state, then each change: phase, `accepting`, `open`, `active`, `idle`, `killed`. */
  readonly state$: Observable<ServerState>;
  /**
   * `next(anything)` starts a shutdown, like `shutdown()`. A piped source that completes or errors
   * does not close it, as `GracefulServer`'s.
   */
  // eslint-disable-next-line rxjs-x/no-exposed-subjects -- the contract makes shutdown$ a public Subject; ShutdownSubject ignores complete() and error()
  readonly shutdown$: Subject<unknown>;
  /** One `ShutdownResult` per finished shutdown; hot. */
  readonly done$: Observable<ShutdownResult>;
  /** `false` before `serve()`, `true` while serving, `false` from the start of a shutdown; replays. */
  readonly ready$: Observable<boolean>;
  /** Emits each time `serve()` starts a serving cycle; hot. */
  readonly serving$: Observable<void>;
  /**
   * Emits when the work in flight is told to stop, as `GracefulServer.abortSignal(req)`'s signals
   * abort: `'deadline'` `cancelAhead` ms before the deadline (at the deadline with 0), `'forced'` on
   * `force()`; at most once a shutdown; hot.
   */
  readonly requestsAborted$: Observable<'deadline' | 'forced'>;

  private readonly host: VirtualHost;
  private readonly lifecycle: Lifecycle;

  constructor(options: VirtualServerOptions = {}) {
    const read = new OptionReader('new VirtualServer(options)', options, Object.keys(optionNames));
    const shutdownOptions = readShutdownOptions(read, asyncScheduler);
    this.host = new VirtualHost(shutdownOptions.scheduler);
    this.lifecycle = new Lifecycle(this.host, shutdownOptions);
    this.connections$ = this.host.changes$;
    this.requestsAborted$ = this.host.aborts$;
    this.state$ = this.lifecycle.state$;
    this.done$ = this.lifecycle.done$;
    this.ready$ = this.lifecycle.ready$;
    this.serving$ = this.lifecycle.serving$;
    this.shutdown$ = new ShutdownSubject(() => this.lifecycle.shutdown());
  }

  /** Where the serve/shutdown cycle is: `draining` from the very call that starts a shutdown. */
  get phase(): Phase {
    return this.lifecycle.phase;
  }

  /** Connections destroyed with work in progress by the last finished shutdown (Go's `ConnectionsKilled`). */
  get connectionsKilled(): number {
    return this.lifecycle.lastResult?.killed ?? 0;
  }

  /**
   * Feeds the connection events of `events$` to the server, from now until `events$` completes or
   * the returned `Subscription` is unsubscribed. Call it as often as there are streams (one per
   * client, say). While the server does not accept (before `serve()`, or once the listener has
   * closed), a connection that comes is refused and leaves no trace. A value that is not a
   * `VirtualConnectionEvent` is a `TypeError`, thrown where the scheduler runs it (in
   * `testScheduler.run`, out of `run()`), as is an error of `events$`.
   *
   * @example
   * server.connect(cold('a 4999ms b', { a: { id: 1, state: 'active' }, b: { id: 1, state: 'idle' } }));
   */
  connect(events$: Observable<VirtualConnectionEvent>): Subscription {
    if (!isObservable(events$)) {
      throw new TypeError(`rx-graceful/testing: connect(events$) expects an Observable, got ${describeValue(events$)}`);
    }
    return events$.subscribe({
      next: (event: unknown) => {
        this.host.receive(checkEvent(event));
      },
      // A marble `#` among connection events means nothing: it surfaces rather than vanish.
      error: (error: unknown) => {
        throw error;
      },
    });
  }

  /**
   * Starts a serving cycle now, as a `GracefulServer`'s listen: the listener accepts, `phase` is
   * `serving`, `ready$` true, and `state$` starts from clean counts. Returns nothing: there is no
   * network to wait for (watch `done$`, or `await wait()`, for the end). Throws `NotReadyError`
   * while serving (`quitting` false) or shutting down (`quitting` true).
   *
   * @example
   * testScheduler.schedule(() => server.serve(), 2000); // serves from 2 s on
   */
  serve(): void {
    const { phase } = this.lifecycle;
    if (phase !== 'stopped') throw new NotReadyError(phase === 'draining');
    this.host.listen();
    this.lifecycle.serving(undefined);
  }

  /** Starts a graceful shutdown and returns at once; only the first call of a cycle has an effect. */
  shutdown(): void {
    this.lifecycle.shutdown();
  }

  /** Like `shutdown()`, and true only for the call that started the shutdown. */
  shutdownOK(): boolean {
    return this.lifecycle.shutdown();
  }

  /** Ends the current shutdown now (its delay included): destroys and counts the survivors. Outside a shutdown, nothing. */
  force(): void {
    this.lifecycle.force();
  }

  /**
   * Settles with the result of the current shutdown once it has finished; while stopped, with the
   * last one's; while serving (or before any shutdown), with the next one's.
   */
  wait(): Promise<ShutdownResult> {
    return waitForShutdown(this.lifecycle);
  }

  /**
   * Shuts down on each value of `trigger$`, as `GracefulServer.shutdownOn`: the first while serving
   * starts the shutdown, one during the shutdown calls `force()`, one while not serving is kept until
   * `serve()`. `trigger$` is subscribed until the shutdown has finished, and again on each `serve()`.
   * Throws a `TypeError` if `trigger$` is not an Observable.
   *
   * @example
   * server.shutdownOn(hot('10s t 4999ms t')); // SIGTERM at 10 s, a second one forces at 15 s
   */
  shutdownOn(trigger$: Observable<unknown>): Subscription {
    return watchTrigger(this, trigger$);
  }
}

/** A connection of the virtual server: its state, and since when it has been idle (scheduler ms). */
interface VirtualConnection {
  state: ConnState;
  idleSince: number;
}

/**
 * The virtual server's side of the core: it keeps the open connections, turns a client's events
 * into connection changes, and carries out the drain's decisions the way the Node adapter does for
 * HTTP/1, with the end of a frame standing for the turn of the event loop the real one waits for.
 */
class VirtualHost implements LifecycleHost {
  readonly changes$: Observable<ConnectionChange>;
  readonly aborts$: Observable<CancelReason>;

  private readonly changes = new Subject<ConnectionChange>();
  private readonly aborts = new Subject<CancelReason>();
  private readonly open = new Map<number, VirtualConnection>();
  /** Closed or refused: their later events are a client writing to a dead socket; `new` brings the id back. */
  private readonly gone = new Set<number>();
  private accepting = false;
  private shuttingDown = false;
  /** The listener is to close at the end of the frame. */
  private listenerClosing = false;
  /** The shutdown's work waiting for the end of a frame; the shutdown's end cancels what is left. */
  private endOfFrame = new Subscription();

  constructor(private readonly scheduler: SchedulerLike) {
    this.changes$ = this.changes.asObservable();
    this.aborts$ = this.aborts.asObservable();
  }

  /** The listener accepts from now on. */
  listen(): void {
    this.accepting = true;
  }

  /** A client's event. */
  receive({ id, state }: VirtualConnectionEvent): void {
    let c = this.open.get(id);
    if (c === undefined) {
      if (state === 'closed' || (state !== 'new' && this.gone.has(id))) return;
      if (!this.accepting) {
        this.gone.add(id); // refused
        return;
      }
      // Accepted: as on a real server, a connection is `new` before anything else happens to it.
      c = { state: 'new', idleSince: this.scheduler.now() };
      this.gone.delete(id);
      this.open.set(id, c);
      this.changes.next({ id, state: 'new', previous: undefined });
    }
    if (state === c.state || state === 'new' || (c.state === 'hijacked' && state !== 'closed')) return;
    // During a shutdown a response says `Connection: close`: once it has ended, the connection closes.
    if (state === 'closed' || (state === 'idle' && c.state === 'active' && this.shuttingDown)) {
      this.close(id, c);
      return;
    }
    const previous = c.state;
    c.state = state;
    if (state === 'idle') c.idleSince = this.scheduler.now();
    this.changes.next({ id, state, previous });
  }

  connections(): TrackedConnection[] {
    return Array.from(this.open, ([id, { state, idleSince }]) => ({ id, state, idleSince }));
  }

  beginShutdown(): void {
    this.shuttingDown = true;
    this.endOfFrame = new Subscription();
  }

  stopAccepting(closed: () => void): void {
    this.listenerClosing = true;
    this.atEndOfFrame(() => {
      this.closeListener();
      closed();
    });
  }

  endShutdown(): void {
    if (this.listenerClosing) this.closeListener(); // ended (forced) before the end of the frame
    this.endOfFrame.unsubscribe();
    this.shuttingDown = false;
  }

  closeIdle(ids: readonly number[], refused: (ids: readonly number[]) => void): void {
    this.atEndOfFrame(() => {
      const busy = this.closeIdleNow(ids);
      if (busy.length > 0) refused(busy);
    });
  }

  closeIdleNow(ids: readonly number[]): readonly number[] {
    const busy: number[] = [];
    for (const id of ids) {
      const c = this.open.get(id);
      if (c === undefined) continue;
      if (c.state === 'new' || c.state === 'idle') this.close(id, c);
      else busy.push(id); // a request came in the meantime (it is served), or an upgrade took it
    }
    return busy;
  }

  destroy(ids: readonly number[]): void {
    for (const id of ids) {
      const c = this.open.get(id);
      if (c !== undefined) this.close(id, c);
    }
  }

  cancel(reason: CancelReason): void {
    this.aborts.next(reason);
  }

  private close(id: number, c: VirtualConnection): void {
    this.open.delete(id);
    this.gone.add(id);
    this.changes.next({ id, state: 'closed', previous: c.state });
  }

  private closeListener(): void {
    this.listenerClosing = false;
    this.accepting = false;
  }

  /** After the events already due in this frame: the marble twin of the real adapter's turn of the event loop. */
  private atEndOfFrame(work: () => void): void {
    this.endOfFrame.add(this.scheduler.schedule(work));
  }
}

function checkEvent(event: unknown): VirtualConnectionEvent {
  if (event !== null && typeof event === 'object') {
    const id: unknown = Reflect.get(event, 'id');
    const state: unknown = Reflect.get(event, 'state');
    if (typeof id === 'number' && connStates.includes(state as ConnState)) return { id, state: state as ConnState };
  }
  throw new TypeError(
    `rx-graceful/testing: a connection event must be { id: number, state: ${connStates.map((s) => `'${s}'`).join(' | ')} }, got ${shown(event)}`,
  );
}

/** A bad event as the user wrote it, when JSON can show it. */
function shown(value: unknown): string {
  try {
    const json = JSON.stringify(value) as string | undefined;
    if (json !== undefined) return json;
  } catch {
    // a cycle, or a BigInt
  }
  return describeValue(value);
}
