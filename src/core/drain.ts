import { defer, merge, NEVER, Observable, of, race, SchedulerLike, Subject, Subscription, timer } from 'rxjs';
import { filter, finalize, map, take, tap } from 'rxjs/operators';
import { ConnectionChange, ConnState, isTracked } from './state';

/** A connection as the drain first sees it: its id, its state, and since when it has been idle. */
export interface TrackedConnection {
  readonly id: number;
  readonly state: ConnState;
  /** Scheduler time (ms) at which it became `idle` (or was accepted, for `new`). */
  readonly idleSince: number;
}

/** How a drain behaves. Every number is in milliseconds of the scheduler's clock. */
export interface DrainOptions {
  /** Survivors are destroyed this long after the drain begins; 0 means never. */
  readonly timeout: number;
  /** An idle connection is closed once it has been idle this long (0 = at once). */
  readonly idleLinger: number;
  /** Hijacked connections hold the drain, and are destroyed and counted at the deadline. */
  readonly waitForHijacked: boolean;
  readonly scheduler: SchedulerLike;
}

/** What the drain asks the Node side to do. Ids are the ones in `TrackedConnection.id`. */
export interface DrainActions {
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

/** The books of one drain, once it has ended. */
export interface DrainReport {
  readonly outcome: DrainOutcome;
  /** Destroyed by the deadline or by force with work in progress. */
  readonly killed: number;
  /** Closed with no work in progress. */
  readonly closedIdle: number;
  /** Had work in progress during the drain, finished it, then closed. */
  readonly drained: number;
  /** Hijacked connections open when the drain began. */
  readonly hijacked: number;
}

interface Entry {
  state: ConnState;
  idleSince: number;
  /** It had work in progress at some point of the drain. */
  worked: boolean;
  /** The Node side refused to close it as idle: work is arriving or still being flushed. */
  busy: boolean;
}

/**
 * The drain: `race(allClosed$, timer(timeout, scheduler), force$)`, then the survivors are
 * destroyed and counted. On subscription it closes every idle connection that has been idle for
 * `idleLinger` (the others when they reach it), follows `changes$` until no tracked connection is
 * left, and emits one `DrainReport`, then completes. It ends on the last close itself, never on a
 * poll; with no connection it ends synchronously.
 *
 * @example
 * drain(snapshot, changes$, force$, { timeout: 10_000, idleLinger: 25, waitForHijacked: false,
 *   scheduler: asyncScheduler }, actions).subscribe((report) => console.log(report.killed));
 */
export function drain(
  connections: Iterable<TrackedConnection>,
  changes$: Observable<ConnectionChange>,
  force$: Observable<unknown>,
  options: DrainOptions,
  actions: DrainActions,
): Observable<DrainReport> {
  return defer(() => {
    const ledger = new Ledger(options, actions);
    for (const connection of connections) ledger.add(connection);

    const allClosed$ = merge(
      changes$.pipe(tap((change) => ledger.apply(change))),
      ledger.closed$,
      defer(() => {
        ledger.closeLingered();
        return of(undefined);
      }),
    ).pipe(
      filter(() => ledger.empty),
      take(1),
      map((): DrainOutcome => 'drained'),
    );
    const deadline$ =
      options.timeout > 0 ? timer(options.timeout, options.scheduler).pipe(map((): DrainOutcome => 'deadline')) : NEVER;
    const forced$ = force$.pipe(
      take(1),
      map((): DrainOutcome => 'forced'),
    );

    return race(allClosed$, deadline$, forced$).pipe(
      map((outcome) => ledger.end(outcome)),
      finalize(() => ledger.stopLingering()),
    );
  });
}

/** Keeps the books of one drain: who is still open, and how each one that left is counted. */
class Ledger {
  /** Emits when the ledger itself let connections go (closed as idle), not on a change event. */
  readonly closed$ = new Subject<void>();
  private readonly entries = new Map<number, Entry>();
  private readonly hijackedAtStart = new Set<number>();
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
      this.hijackedAtStart.add(id);
      if (!this.options.waitForHijacked) return;
    } else if (!isTracked(state)) {
      return;
    }
    this.entries.set(id, { state, idleSince, worked: state === 'active', busy: false });
  }

  apply({ id, state }: ConnectionChange): void {
    if (state === 'new') {
      this.add({ id, state, idleSince: this.options.scheduler.now() });
      this.becameIdle(id, this.options.scheduler.now());
      return;
    }
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    if (state === 'closed' || (state === 'hijacked' && !this.options.waitForHijacked)) {
      this.entries.delete(id);
      if (state === 'closed') this.countClosed(entry);
      return;
    }
    entry.state = state;
    entry.busy = false;
    if (state === 'active' || state === 'hijacked') {
      entry.worked = true;
    } else {
      entry.idleSince = this.options.scheduler.now();
      this.becameIdle(id, entry.idleSince);
    }
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

  /** Ends the drain for `outcome`: what is left is closed if idle, else destroyed and counted. */
  end(outcome: DrainOutcome): DrainReport {
    this.stopLingering();
    const idle: number[] = [];
    const survivors: number[] = [];
    for (const [id, entry] of this.entries) (closable(entry) ? idle : survivors).push(id);
    const refused = idle.length > 0 ? this.actions.closeIdle(idle) : [];
    survivors.push(...refused);
    if (survivors.length > 0) this.actions.destroy(survivors);
    this.entries.clear();
    return {
      outcome,
      killed: survivors.length,
      closedIdle: this.closedIdle + idle.length - refused.length,
      drained: this.drained,
      hijacked: this.hijackedAtStart.size,
    };
  }

  private countClosed(entry: Entry): void {
    if (entry.state === 'hijacked') return;
    if (entry.worked) this.drained++;
    else this.closedIdle++;
  }

  /** Asks the Node side to close `ids`; what it closed leaves the books, what it refused is busy. */
  private closeIdle(ids: readonly number[]): void {
    const busy = new Set(this.actions.closeIdle(ids));
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (entry === undefined) continue;
      if (busy.has(id)) {
        entry.busy = true;
        entry.worked = true;
      } else {
        this.entries.delete(id);
        this.countClosed(entry);
      }
    }
    this.closed$.next();
  }

  private becameIdle(id: number, since: number): void {
    if (this.options.idleLinger === 0) this.closeIdle([id]);
    else this.lingerUntil(since + this.options.idleLinger);
  }

  private lingerUntil(at: number): void {
    if (at >= this.sweepAt || at === Infinity) return;
    this.sweep?.unsubscribe();
    this.sweepAt = at;
    const delay = Math.max(0, at - this.options.scheduler.now());
    this.sweep = this.options.scheduler.schedule(() => {
      this.sweep = undefined;
      this.sweepAt = Infinity;
      this.closeLingered();
    }, delay);
  }
}

function closable(entry: Entry): boolean {
  return (entry.state === 'idle' || entry.state === 'new') && !entry.busy;
}
