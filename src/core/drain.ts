import { defer, merge, NEVER, Observable, of, race, SchedulerLike, Subject, Subscription, timer } from 'rxjs';
import { filter, finalize, ignoreElements, map, switchMap, take, tap } from 'rxjs/operators';
import { ConnectionChange, ConnState, isTracked } from './state';

/** A connection as the drain first sees it: its id, its state, and since when it has been idle. */
export interface TrackedConnection {
  readonly id: number;
  readonly state: ConnState;
  /** Scheduler time (ms) at which it became `idle` (or was accepted, for `new`). */
  readonly idleSince: number;
}

/** How a shutdown behaves. Every number is in milliseconds of the scheduler's clock. */
export interface DrainOptions {
  /** Survivors are destroyed this long after the drain begins; 0 means never. */
  readonly timeout: number;
  /** Before the drain, keep accepting and serving this long (0 = no delay). */
  readonly drainDelay: number;
  /** An idle connection is closed once it has been idle this long (0 = at once). */
  readonly idleLinger: number;
  /** Hijacked connections hold the drain, and are destroyed and counted at the deadline. */
  readonly waitForHijacked: boolean;
  readonly scheduler: SchedulerLike;
  /**
   * Scheduler time at which the shutdown was asked for (default: when the drain is subscribed).
   * The delay ends at `startedAt + drainDelay` and the deadline falls at that plus `timeout`, on
   * the clock, however long the set-up between the call and the subscription took.
   */
  readonly startedAt?: number;
}

/** What the drain asks the Node side to do. Ids are the ones in `TrackedConnection.id`. */
export interface DrainActions {
  /** The delay (if any) is over and the drain begins: stop accepting connections. */
  stopAccepting(): void;
  /**
   * Close these connections, which the drain believes idle. Returns the ids that turned out to
   * have work in progress (a request head arriving, a response still being flushed): those stay
   * open, and the drain waits for them like for active ones.
   */
  closeIdle(ids: readonly number[]): readonly number[];
  /** Destroy these survivors at once. */
  destroy(ids: readonly number[]): void;
}

/** Which contender of the race ended the drain. */
export type DrainOutcome = 'drained' | 'deadline' | 'forced';

/** The books of one shutdown, once it has ended. */
export interface DrainReport {
  readonly outcome: DrainOutcome;
  /** Destroyed by the deadline or by force with work in progress. */
  readonly killed: number;
  /** Closed with no work in progress. */
  readonly closedIdle: number;
  /** Had work in progress during the shutdown, finished it, then closed. */
  readonly drained: number;
  /** Hijacked connections open when the drain began (after any delay). */
  readonly hijacked: number;
}

interface Entry {
  state: ConnState;
  idleSince: number;
  /** It had work in progress at some point of the shutdown. */
  worked: boolean;
  /** The Node side refused to close it as idle: work is arriving or still being flushed. */
  busy: boolean;
}

/**
 * One shutdown: an optional pre-drain delay (`race(timer(drainDelay), force$)`), then the drain,
 * `race(allClosed$, timer(timeout, scheduler), force$)`, after which the survivors are destroyed
 * and counted. The books open on subscription, so that every connection that closes during the
 * shutdown, delay included, is counted once. Once the drain begins, every connection that has
 * been idle for `idleLinger` is closed (the others when they reach it); the drain ends on the last
 * close itself, never on a poll, and with no connection at once. Emits one `DrainReport`, then
 * completes.
 *
 * @example
 * drain(snapshot, changes$, force$, { timeout: 10_000, drainDelay: 0, idleLinger: 25,
 *   waitForHijacked: false, scheduler: asyncScheduler }, actions)
 *   .subscribe((report) => console.log(report.killed));
 */
export function drain(
  connections: Iterable<TrackedConnection>,
  changes$: Observable<ConnectionChange>,
  force$: Observable<unknown>,
  options: DrainOptions,
  actions: DrainActions,
): Observable<DrainReport> {
  return defer(() => {
    const { scheduler } = options;
    const startedAt = options.startedAt ?? scheduler.now();
    const delayEndsAt = startedAt + options.drainDelay;
    const until = (at: number): Observable<0> => defer(() => timer(Math.max(0, at - scheduler.now()), scheduler));
    const ledger = new Ledger(options, actions);
    for (const connection of connections) ledger.add(connection);
    const forced$ = force$.pipe(
      take(1),
      map((): DrainOutcome => 'forced'),
    );

    const books$ = changes$.pipe(
      tap((change) => ledger.apply(change)),
      ignoreElements(),
    );
    const delay$: Observable<DrainOutcome | undefined> =
      options.drainDelay > 0
        ? race(until(delayEndsAt).pipe(map(() => undefined)), forced$).pipe(take(1))
        : of(undefined);
    const allClosed$ = merge(
      ledger.changed$,
      defer(() => {
        ledger.begin();
        return of(undefined);
      }),
    ).pipe(
      filter(() => ledger.empty),
      take(1),
      map((): DrainOutcome => 'drained'),
    );
    const deadline$ = options.timeout > 0 ? until(delayEndsAt + options.timeout).pipe(map((): DrainOutcome => 'deadline')) : NEVER;
    const outcome$ = delay$.pipe(
      // The deadline is subscribed first, so that its timer runs before any closing work is done.
      switchMap((forcedEarly) => (forcedEarly === undefined ? race(deadline$, allClosed$, forced$) : of(forcedEarly))),
    );

    return merge(books$, outcome$).pipe(
      take(1),
      map((outcome) => ledger.end(outcome)),
      finalize(() => ledger.stopLingering()),
    );
  });
}

/** Keeps the books of one shutdown: who is still open, and how each one that left is counted. */
class Ledger {
  /** Emits after every change to the books, so that the drain can see when they are empty. */
  readonly changed$ = new Subject<void>();
  private readonly entries = new Map<number, Entry>();
  /** Hijacked connections still open (the drain only waits for them with `waitForHijacked`). */
  private readonly hijacked = new Set<number>();
  private hijackedAtDrain = 0;
  private draining = false;
  private sweep: Subscription | undefined;
  private sweepAt = Infinity;
  private closedIdle = 0;
  private drained = 0;

  constructor(
    private readonly options: DrainOptions,
    private readonly actions: DrainActions,
  ) {}

  get empty(): boolean {
    return this.entries.size === 0;
  }

  add({ id, state, idleSince }: TrackedConnection): void {
    if (state === 'hijacked') {
      this.hijacked.add(id);
      if (!this.options.waitForHijacked) return;
    } else if (!isTracked(state)) {
      return;
    }
    this.entries.set(id, { state, idleSince, worked: state === 'active', busy: false });
  }

  /** The delay is over: stop accepting, and close every idle connection whose linger is over. */
  begin(): void {
    this.actions.stopAccepting();
    this.draining = true;
    this.hijackedAtDrain = this.hijacked.size;
    this.closeLingered();
  }

  apply({ id, state }: ConnectionChange): void {
    if (state === 'new') {
      this.add({ id, state, idleSince: this.options.scheduler.now() });
      this.becameIdle(id, this.options.scheduler.now());
    } else if (state === 'closed') {
      this.hijacked.delete(id);
      const entry = this.entries.get(id);
      if (entry === undefined) return;
      this.entries.delete(id);
      this.countClosed(entry);
    } else if (state === 'hijacked') {
      this.hijacked.add(id);
      const entry = this.entries.get(id);
      if (entry === undefined) return;
      if (this.options.waitForHijacked) entry.state = state;
      else this.entries.delete(id);
    } else {
      const entry = this.entries.get(id);
      if (entry === undefined) return;
      entry.state = state;
      entry.busy = false;
      if (state === 'active') {
        entry.worked = true;
      } else {
        entry.idleSince = this.options.scheduler.now();
        this.becameIdle(id, entry.idleSince);
      }
    }
    this.changed$.next();
  }

  /** Closes every idle connection whose linger is over, and schedules the next such close. */
  closeLingered(): void {
    const now = this.options.scheduler.now();
    const due: number[] = [];
    let next = Infinity;
    for (const [id, entry] of this.entries) {
      if (!closable(entry)) continue;
      const at = entry.idleSince + this.options.idleLinger;
      if (at <= now) due.push(id);
      else if (at < next) next = at;
    }
    this.stopLingering();
    this.lingerUntil(next);
    if (due.length > 0) this.closeIdle(due);
  }

  stopLingering(): void {
    this.sweep?.unsubscribe();
    this.sweep = undefined;
    this.sweepAt = Infinity;
  }

  /** Ends the shutdown for `outcome`: what is left is closed if idle, else destroyed and counted. */
  end(outcome: DrainOutcome): DrainReport {
    this.stopLingering();
    if (!this.draining) {
      // Forced during the delay: the drain begins and ends now.
      this.actions.stopAccepting();
      this.hijackedAtDrain = this.hijacked.size;
    }
    const idle: Array<[number, Entry]> = [];
    const survivors: number[] = [];
    for (const [id, entry] of this.entries) {
      if (closable(entry)) idle.push([id, entry]);
      else survivors.push(id);
    }
    // The books close before the last actions: the closes they cause are counted here, once.
    this.entries.clear();
    const refused = new Set(idle.length > 0 ? this.actions.closeIdle(idle.map(([id]) => id)) : []);
    for (const [id, entry] of idle) {
      if (refused.has(id)) survivors.push(id);
      else this.countClosed(entry);
    }
    if (survivors.length > 0) this.actions.destroy(survivors);
    return {
      outcome,
      killed: survivors.length,
      closedIdle: this.closedIdle,
      drained: this.drained,
      hijacked: this.hijackedAtDrain,
    };
  }

  private countClosed(entry: Entry): void {
    if (entry.state === 'hijacked') return;
    if (entry.worked) this.drained++;
    else this.closedIdle++;
  }

  /** Asks the Node side to close `ids`; what it closed leaves the books, what it refused is busy. */
  private closeIdle(ids: readonly number[]): void {
    // Out of the books first: the `closed` changes the Node side reports while it closes them
    // find nothing to do, instead of recounting one by one.
    const closing: Array<[number, Entry]> = [];
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (entry === undefined) continue;
      this.entries.delete(id);
      closing.push([id, entry]);
    }
    const busy = new Set(this.actions.closeIdle(ids));
    for (const [id, entry] of closing) {
      if (busy.has(id)) {
        entry.busy = true;
        entry.worked = true;
        this.entries.set(id, entry);
      } else {
        this.countClosed(entry);
      }
    }
    this.changed$.next();
  }

  private becameIdle(id: number, since: number): void {
    if (!this.draining) return; // during the delay nothing is closed
    if (this.options.idleLinger === 0) this.closeIdle([id]);
    else this.lingerUntil(since + this.options.idleLinger);
  }

  private lingerUntil(at: number): void {
    if (at >= this.sweepAt || at === Infinity) return;
    this.sweep?.unsubscribe();
    this.sweepAt = at;
    const delay = Math.max(0, at - this.options.scheduler.now());
    // closeLingered() unsubscribes this very action before it schedules the next one.
    this.sweep = this.options.scheduler.schedule(() => this.closeLingered(), delay);
  }
}

function closable(entry: Entry): boolean {
  return (entry.state === 'idle' || entry.state === 'new') && !entry.busy;
}
