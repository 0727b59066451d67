import { BehaviorSubject, distinctUntilChanged, filter, Observable, Subject, Subscription } from 'rxjs';
import { ConnectionSlices, drain, DrainActions, DrainOptions, ShutdownResult, TrackedConnection } from './drain';
export type { DrainOptions, ProtocolCounts, ProtocolSplit, ShutdownResult } from './drain';
import { sharedFold } from './shared-fold';
import {
  ConnectionChange,
  foldState,
  initialState,
  LifecycleChange,
  ListenAddress,
  Phase,
  Protocol,
  ServerState,
  StateEvent,
} from './state';

/** A shutdown asked to end before its time: by `force()`, or as its deadline would (`expire()`). */
type EndRequest = 'force' | 'expire';

/** What the Node side provides to the lifecycle and carries out for it. */
export interface LifecycleHost<C extends ConnectionChange = ConnectionChange> extends DrainActions {
  /** Every change of every connection; hot. */
  readonly changes$: Observable<C>;
  /** The connections open now, as the drain and a late `state$` subscriber need them. */
  connections(): Iterable<TrackedConnection>;
  /**
   * The server's connections may speak different protocols (an HTTP/2 server, which speaks HTTP/1
   * too with `allowHTTP1`): the results of its shutdowns carry `byProtocol` (default false).
   */
  readonly mixedProtocols?: boolean;
  /** The protocol the open connection `id` speaks now (default: `http1`); asked when a shutdown ends. */
  protocolOf?(id: number): Protocol;
  /** A shutdown begins: from now on responses say `Connection: close`. */
  beginShutdown(): void;
  /**
   * The connections open now, for a shutdown that has just begun, in slices over turns of the
   * event loop; each connection learns of the shutdown (its response in flight says
   * `Connection: close`) as its slice is taken. Without it the drain takes `connections()` at once.
   */
  connectionsInSlices?(): ConnectionSlices;
  /**
   * `changes$` as the drain takes them, where the changes made in one go (a slice of idle closes)
   * come as one array (default: `changes$`).
   */
  drainChanges?(): Observable<ConnectionChange | readonly ConnectionChange[]>;
  /** The shutdown has ended: keep-alive works as usual again. */
  endShutdown(): void;
}

/**
 * The serve/shutdown cycle of one server, free of sockets and of real time: `stopped → serving →
 * draining → stopped`, with `state$` folded from the host's connection changes, one drain per
 * cycle, and its result on `done$`.
 *
 * @example
 * const cycle = new Lifecycle(host, { timeout: 100, drainDelay: 0, idleLinger: 0,
 *   waitForHijacked: false, scheduler });
 * cycle.serving('127.0.0.1:3000');
 * cycle.shutdown(); // true: this call started it
 */
export class Lifecycle {
  /** Replays the current state, then each real change. */
  readonly state$: Observable<ServerState>;
  /** One value per finished shutdown; hot. */
  readonly done$: Observable<ShutdownResult>;
  /** `true` while serving and accepting, `false` otherwise; replays. */
  readonly ready$: Observable<boolean>;
  /** The lifecycle alone (phase, accepting, killed, address), without connection counts; replays. */
  readonly lifecycle$: Observable<LifecycleChange>;
  /** Emits each time a serving cycle starts, once its state (phase, `ready$`) is set; hot. */
  readonly serving$: Observable<void>;

  private readonly current = new BehaviorSubject<LifecycleChange>({ phase: 'stopped', accepting: false, killed: 0 });
  private readonly readiness = new BehaviorSubject<boolean>(false);
  private readonly results = new Subject<ShutdownResult>();
  private readonly cycles = new Subject<void>();
  /**
   * How the running shutdown is asked to end before its time (`force()`, `expire()`); `undefined`
   * outside a shutdown. It replays, so that a call made while the shutdown is being set up counts.
   */
  private ending: BehaviorSubject<EndRequest | undefined> | undefined;
  /** The running drain's subscription (it leaves this one when it completes). */
  private readonly drains = new Subscription();
  private last: ShutdownResult | undefined;

  constructor(
    private readonly host: LifecycleHost,
    private readonly options: DrainOptions,
  ) {
    this.lifecycle$ = this.current.asObservable();
    this.done$ = this.results.asObservable();
    this.serving$ = this.cycles.asObservable();
    this.ready$ = this.readiness.pipe(distinctUntilChanged());
    // One fold of the lifecycle and the connection changes, shared, from the state at the first
    // subscription: the lifecycle's replaying subject gives its current value, which the seed holds
    // already (the step returns the same state), then its changes.
    this.state$ = sharedFold<ServerState, StateEvent>([this.current, host.changes$], foldState, () => {
      let seed = foldState(initialState, this.current.value);
      for (const { id, state } of host.connections()) seed = foldState(seed, { id, state, previous: undefined });
      return seed;
    });
  }

  /**
   * Where the cycle is. `draining` from the call that starts a shutdown, even while `state$` still
   * shows `serving` (with no pre-drain delay, `state$` shows `draining` once the listener is closed).
   */
  get phase(): Phase {
    return this.ending !== undefined ? 'draining' : this.current.value.phase;
  }

  /** The current value of `ready$`. */
  get ready(): boolean {
    return this.readiness.value;
  }

  /** The result of the last finished shutdown, if any. */
  get lastResult(): ShutdownResult | undefined {
    return this.last;
  }

  /** The server listens (again): a new cycle starts with clean counts. */
  serving(address: ListenAddress | undefined): void {
    this.current.next({ phase: 'serving', accepting: true, killed: 0, address });
    this.readiness.next(true);
    this.cycles.next();
  }

  /**
   * Starts the shutdown of this cycle. Returns `true` only for the call that started it; any call
   * while not serving, or after the first one, does nothing and returns `false`.
   */
  shutdown(): boolean {
    if (this.phase !== 'serving') return false;
    const { scheduler, drainDelay } = this.options;
    const startedAt = scheduler.now();
    const ending = new BehaviorSubject<EndRequest | undefined>(undefined);
    this.ending = ending;
    this.readiness.next(false);
    this.host.beginShutdown();
    // With a delay the server keeps accepting; without one, `state$` shows the drain once the
    // listener is really closed (after the loop has accepted what the kernel had queued).
    if (drainDelay > 0) this.enter({ phase: 'draining', accepting: true });

    const later = this.host.connectionsInSlices?.();
    const drain$ = drain({
      connections: later === undefined ? this.host.connections() : [],
      ...(later === undefined ? {} : { later }),
      protocolOf: (id) => this.host.protocolOf?.(id) ?? 'http1',
      byProtocol: this.host.mixedProtocols === true,
      changes$: this.host.drainChanges?.() ?? this.host.changes$,
      force$: ending.pipe(filter((request) => request === 'force')),
      expire$: ending.pipe(filter((request) => request === 'expire')),
      options: this.options,
      startedAt,
      actions: {
        stopAccepting: (closed) =>
          this.host.stopAccepting(() => {
            if (this.ending !== ending) return; // this shutdown has already ended
            this.enter({ phase: 'draining', accepting: false });
            closed();
          }),
        closeIdle: (ids, refused) => this.host.closeIdle(ids, refused),
        closeIdleNow: (ids) => this.host.closeIdleNow(ids),
        destroy: (ids) => this.host.destroy(ids),
        cancel: (reason) => this.host.cancel?.(reason),
      },
    });
    // The drain emits one result and completes; until then its subscription is the lifecycle's.
    this.drains.add(
      drain$.subscribe({
        next: (result) => this.finish(result),
        // Only a bug fails a drain (a host action that threw): it surfaces as an uncaught
        // exception, as RxJS reports an unhandled error, never swallowed.
        error: (error: unknown) => {
          throw error;
        },
      }),
    );
    return true;
  }

  /** Ends the current shutdown now (the delay and the drain); outside a shutdown, does nothing. */
  force(): void {
    this.ending?.next('force');
  }

  /**
   * Ends the current shutdown now as its deadline would: the work in flight is cancelled, the
   * survivors are destroyed and counted, and the result says `timedOut` (not `forced`). Outside a
   * shutdown, does nothing. A group's one deadline ends its members this way.
   */
  expire(): void {
    this.ending?.next('expire');
  }

  private finish(result: ShutdownResult): void {
    this.ending = undefined;
    this.last = result;
    this.host.endShutdown();
    // Forced before the listener closed: `state$` still goes through `draining`.
    if (this.current.value.phase === 'serving') this.enter({ phase: 'draining', accepting: false });
    this.enter({ phase: 'stopped', accepting: false, killed: result.killed });
    this.results.next(result);
  }

  private enter(change: Partial<LifecycleChange>): void {
    this.current.next({ ...this.current.value, ...change });
  }
}
