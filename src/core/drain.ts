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
  /**
   * An idle connection is asked to close once it has been idle this long within the drain:
   * counted from when the drain began, or from when it became idle if that came later (0 = at once).
   */
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
  /**
   * The delay (if any) is over and the drain begins: stop accepting connections. The host calls
   * `closed` once the listener is really closed (it may first accept what the kernel had already
   * queued, which then arrives as `new` changes); the drain cannot end as drained before that.
   */
  stopAccepting(closed: () => void): void;
  /**
   * Close these connections, which the drain believes idle, once nothing is waiting to be read on
   * them. Each one is later reported `closed` (closed idle) or `active` (a request turned up: it is
   * served, then closed), or handed to `refused` (work in progress without a whole request yet: a
   * head arriving, a response still being flushed), now or later: the drain then waits for it.
   */
  closeIdle(ids: readonly number[], refused: (ids: readonly number[]) => void): void;
  /**
   * The shutdown is ending: close these idle connections now, with no wait. Returns the ids that
   * have work in progress after all (a request head arriving): the drain destroys and counts them.
   */
  closeIdleNow(ids: readonly number[]): readonly number[];
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
  /** Asked to close as idle; the host has not said yet whether it closed or a request came. */
  closing: boolean;
}

/**
 * One shutdown: an optional pre-drain delay (`race(timer(drainDelay), force$)`), then the drain,
 * `race(allClosed$, timer(timeout, scheduler), force$)`, after which the survivors are destroyed
 * and counted. The books open on subscription, so that every connection that closes during the
 * shutdown, delay included, is counted once. Once the drain begins, every idle connection is asked
 * to close when it has been idle for `idleLinger` within the drain; the drain ends on the last
 * close itself, never on a poll, and with no connection as soon as the listener is closed. Emits
 * one `DrainReport`, then completes.
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
  /** Scheduler time at which the drain began: no idle connection lingers from earlier than this. */
  private drainBeganAt = 0;
  private listenerClosed = false;
  private sweep: Subscription | undefined;
  private sweepAt = Infinity;
  private closedIdle = 0;
  private drained = 0;

  constructor(
    private readonly options: DrainOptions,
    private readonly actions: DrainActions,
  ) {}

  /** Nothing left to wait for: the listener is closed and no connection is in the books. */
  get empty(): boolean {
    return this.listenerClosed && this.entries.size === 0;
  }

  add({ id, state, idleSince }: TrackedConnection): void {
    if (state === 'hijacked') {
      this.hijacked.add(id);
      if (!this.options.waitForHijacked) return;
    } else if (!isTracked(state)) {
      return;
    }
    this.entries.set(id, { state, idleSince, worked: state === 'active', busy: false, closing: false });
  }

  /** The delay is over: stop accepting, and close every idle connection whose linger is over. */
  begin(): void {
    this.draining = true;
    this.drainBeganAt = this.options.scheduler.now();
    this.hijackedAtDrain = this.hijacked.size;
    this.closeLingered();
    this.actions.stopAccepting(() => {
      this.listenerClosed = true;
      this.changed$.next();
    });
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
      entry.closing = false;
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
      const at = this.lingerEnds(entry.idleSince);
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
      this.actions.stopAccepting(() => undefined);
      this.hijackedAtDrain = this.hijacked.size;
    }
    const idle: Array<[number, Entry]> = [];
    const survivors: number[] = [];
    for (const [id, entry] of this.entries) {
      if (closable(entry) || entry.closing) idle.push([id, entry]);
      else survivors.push(id);
    }
    // The books close before the last actions: the closes they cause are counted here, once.
    this.entries.clear();
    const refused = new Set(idle.length > 0 ? this.actions.closeIdleNow(idle.map(([id]) => id)) : []);
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

  /**
   * Asks the Node side to close `ids`. They stay in the books, marked `closing`, until it reports
   * them `closed` (counted then) or `active`, or refuses them as busy.
   */
  private closeIdle(ids: readonly number[]): void {
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (entry !== undefined) entry.closing = true;
    }
    this.actions.closeIdle(ids, this.refused);
  }

  /** The Node side found work in progress on these: the drain waits for them. */
  private readonly refused = (ids: readonly number[]): void => {
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (entry === undefined || !entry.closing) continue;
      entry.closing = false;
      entry.busy = true;
      entry.worked = true;
    }
  };

  /** When an idle connection's linger ends: `idleLinger` after it became idle, or after the drain began if later. */
  private lingerEnds(idleSince: number): number {
    return Math.max(idleSince, this.drainBeganAt) + this.options.idleLinger;
  }

  private becameIdle(id: number, since: number): void {
    if (!this.draining) return; // during the delay nothing is closed
    if (this.options.idleLinger === 0) this.closeIdle([id]);
    else this.lingerUntil(this.lingerEnds(since));
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

/** Idle, and not already asked to close. */
function closable(entry: Entry): boolean {
  return (entry.state === 'idle' || entry.state === 'new') && !entry.busy && !entry.closing;
}
