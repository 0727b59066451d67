import {
  BehaviorSubject,
  concat,
  defer,
  EMPTY,
  distinctUntilChanged,
  filter,
  map,
  merge,
  NEVER,
  Observable,
  of,
  scan,
  SchedulerLike,
  Subject,
  switchMap,
  take,
  tap,
  timer,
} from 'rxjs';
import { ConnectionChange, ConnState, isTracked, Protocol } from './state';
export type { Protocol } from './state';

/** A connection as the drain first sees it: its id, its state, and since when it has been idle. */
export interface TrackedConnection {
  readonly id: number;
  readonly state: ConnState;
  /** Scheduler time (ms) at which it became `idle` (or was accepted, for `new`). */
  readonly idleSince: number;
}

/** How shutdowns behave. Every number is in milliseconds of the scheduler's clock. */
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
  /**
   * Request signals are cancelled this long before the deadline (the drain's begin at the latest);
   * 0 or absent: at the deadline itself. With no deadline (`timeout` 0), only `force()` cancels them.
   */
  readonly cancelAhead?: number;
  readonly scheduler: SchedulerLike;
}

/** Why the drain cancels the work in flight: the deadline is near (or has come), or `force()` was called. */
export type CancelReason = 'deadline' | 'forced';

/**
 * How the connections of one protocol ended in a shutdown: the parts of `ShutdownResult`'s
 * `closedIdle`, `drained` and `killed` that spoke it.
 */
export interface ProtocolCounts {
  /** Connections of this protocol closed with no work in progress. */
  readonly closedIdle: number;
  /** Connections of this protocol that finished their work, then closed. */
  readonly drained: number;
  /** Connections of this protocol destroyed with work in progress by the deadline or `force()`. */
  readonly killed: number;
}

/**
 * `ShutdownResult`'s counts split by protocol: both parts are always there, and each count of the
 * result is the sum of its two parts (`closedIdle === http1.closedIdle + http2.closedIdle`).
 */
export interface ProtocolSplit {
  /** HTTP/1.x connections: every connection of an `allowHTTP1` server that is not an HTTP/2 session. */
  readonly http1: ProtocolCounts;
  /** HTTP/2 sessions. */
  readonly http2: ProtocolCounts;
}

/** The result of one finished shutdown. Durations are in milliseconds of the scheduler's clock. */
export interface ShutdownResult {
  /** Connections destroyed with work in progress by the deadline or by `force()`. */
  readonly killed: number;
  /** The deadline (`timeout`) ended the drain. */
  readonly timedOut: boolean;
  /** `force()` ended the shutdown. */
  readonly forced: boolean;
  /** From the call that started the shutdown to its end, pre-drain delay included. */
  readonly durationMs: number;
  /** Connections closed with no work in progress. */
  readonly closedIdle: number;
  /** Connections that had work in progress during the shutdown, finished it, then closed. */
  readonly drained: number;
  /** Hijacked connections open when the drain began (after any delay). */
  readonly hijacked: number;
  /**
   * The counts split by protocol. Present on the results of an HTTP/2 server (`http2.createServer`,
   * `http2.createSecureServer`, which speaks HTTP/1 as well with `allowHTTP1`); absent for `http`
   * and `https` servers, whose connections all speak HTTP/1. A connection whose TLS handshake was
   * not done when it ended counts as HTTP/1.
   */
  readonly byProtocol?: ProtocolSplit;
  /**
   * When the last connection counted in `closedIdle` closed, in ms from the call that started the
   * shutdown (as `durationMs`); absent when `closedIdle` is 0.
   */
  readonly lastIdleCloseMs?: number;
  /**
   * When the last connection counted in `drained` closed, in ms from the call that started the
   * shutdown; absent when `drained` is 0.
   */
  readonly lastDrainedCloseMs?: number;
  /**
   * When the last graceful close (closed idle or drained) happened, in ms from the call that started
   * the shutdown: the later of `lastIdleCloseMs` and `lastDrainedCloseMs`; absent when there was
   * none. (What `killed` counts is destroyed at the end, `durationMs`.)
   */
  readonly lastGracefulCloseMs?: number;
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
  /**
   * Abort the work in flight (request signals) for `reason`: `cancelAhead` before the deadline, or
   * when the deadline or `force()` ends the shutdown, before anything is destroyed. At most once a
   * shutdown. A host that hands out no request signals leaves it out.
   */
  cancel?(reason: CancelReason): void;
}

/**
 * The connections open when a shutdown was asked for, handed over in slices: a host with thousands
 * of them would hold its event loop for as long as it takes to list them all at once.
 */
export interface ConnectionSlices {
  /**
   * Each value a slice, the first one possibly while the drain is being subscribed; completes after
   * the last. A connection may come again, or after a change of its own: the drain takes each once.
   */
  readonly slices$: Observable<readonly TrackedConnection[]>;
  /** Hands over every connection not handed over yet, now, then completes `slices$`: the shutdown is ending. */
  rest(): void;
}

/** One shutdown, as `drain()` needs it. */
export interface DrainInput {
  /** The connections open when the shutdown was asked for (with `later`: those not in its slices). */
  readonly connections: Iterable<TrackedConnection>;
  /**
   * The connections open when the shutdown was asked for, in slices (default: all of them are in
   * `connections`). Until the last slice, a change of a connection the drain has not been given yet
   * takes it in, in the state the change left. The drain ends no earlier than the last slice; the
   * deadline and `force$` ask for the rest at once (`rest()`).
   */
  readonly later?: ConnectionSlices;
  /**
   * The protocol an open connection speaks, as the Node side knows it now (default: `http1`). Asked
   * at the end of the shutdown, for what is still open then; a connection that closes earlier names
   * its protocol in its `closed` change.
   */
  readonly protocolOf?: (id: number) => Protocol;
  /** The result carries `byProtocol` (default false). */
  readonly byProtocol?: boolean;
  /**
   * Every later change of every connection; hot. An array is a batch of changes made in one go (a
   * slice of idle closes), which the drain takes in one step.
   */
  readonly changes$: Observable<ConnectionChange | readonly ConnectionChange[]>;
  /** Its first value ends the shutdown now (`force()`). */
  readonly force$: Observable<unknown>;
  /** Its first value ends the shutdown now as the deadline does (`timedOut`); default: never. */
  readonly expire$?: Observable<unknown>;
  readonly options: DrainOptions;
  /**
   * Scheduler time at which the shutdown was asked for (default: when the drain is subscribed).
   * The delay ends at `startedAt + drainDelay` and the deadline falls at that plus `timeout`, on
   * the clock, however long the set-up between the call and the subscription took.
   */
  readonly startedAt?: number;
  readonly actions: DrainActions;
}

/** Which contender ended the drain. */
export type DrainOutcome = 'drained' | 'deadline' | 'forced';

/** What happens to the books of a shutdown. */
export type DrainEvent =
  | { readonly type: 'change'; readonly change: ConnectionChange }
  /** Changes made in one go, in their order (a slice of idle closes): one step for all. */
  | { readonly type: 'changes'; readonly changes: readonly ConnectionChange[] }
  /** The pre-drain delay is over (at once without one): the drain begins. */
  | { readonly type: 'begin' }
  /** A slice of the connections open when the shutdown was asked for (`DrainInput.later`). */
  | { readonly type: 'opened'; readonly connections: readonly TrackedConnection[] }
  /** Every connection open when the shutdown was asked for has been handed over. */
  | { readonly type: 'allOpened' }
  | { readonly type: 'listenerClosed' }
  /** The Node side would not close these as idle: they have work in progress. */
  | { readonly type: 'refused'; readonly ids: readonly number[] }
  /** The linger end scheduled for scheduler time `at` has come (the clock may read a little less). */
  | { readonly type: 'lingerOver'; readonly at: number }
  /** `cancelAhead` before the deadline: the work in flight is to be cancelled. */
  | { readonly type: 'cancelDue' }
  | { readonly type: 'end'; readonly outcome: 'deadline' | 'forced' };

/** What the books ask the edge to carry out. */
export type DrainCommand =
  | { readonly type: 'stopAccepting' }
  | { readonly type: 'closeIdle'; readonly ids: readonly number[] }
  | { readonly type: 'cancel'; readonly reason: CancelReason }
  /** The shutdown is ending before every connection was handed over: hand over the rest now. */
  | { readonly type: 'handOverRest' }
  | { readonly type: 'finish'; readonly finish: Finish };

/**
 * The last command of a shutdown: close `idle` now (counted as closed idle, or as drained if they
 * worked, unless the Node side refuses them), destroy and count `survivors`.
 */
export interface Finish {
  readonly outcome: DrainOutcome;
  readonly idle: ReadonlyArray<{ readonly id: number; readonly worked: boolean }>;
  readonly survivors: readonly number[];
  /** Forced during the delay: the listener was never told to stop. */
  readonly stopAccepting: boolean;
  /** What closed gracefully before the end, per protocol. */
  readonly closed: Readonly<Record<Protocol, Readonly<GracefulCloses>>>;
  /** When the last connection counted as closed idle closed, in ms from the shutdown's start (`undefined`: none). */
  readonly lastIdleCloseMs: number | undefined;
  /** When the last drained connection closed, in ms from the shutdown's start (`undefined`: none). */
  readonly lastDrainedCloseMs: number | undefined;
  readonly hijacked: number;
}

/** The graceful closes of one protocol. */
export interface GracefulCloses {
  closedIdle: number;
  drained: number;
}

interface Entry {
  state: ConnState;
  idleSince: number;
  /** It had work in progress at some point of the shutdown. */
  worked: boolean;
  /** The Node side refused to close it as idle: work is arriving or still being flushed. */
  busy: boolean;
  /** Asked to close as idle; the Node side has not said yet whether it closed or a request came. */
  closing: boolean;
}

/**
 * The books of one shutdown: who is still open and how each one that left is counted. Owned by
 * one drain and changed only by `step`.
 */
export interface Books {
  readonly idleLinger: number;
  readonly waitForHijacked: boolean;
  /** `cancelAhead` reaches back to the drain's begin (or before): the work in flight is cancelled as it begins. */
  readonly cancelOnBegin: boolean;
  /** The work in flight has been cancelled (once a shutdown). */
  cancelled: boolean;
  readonly entries: Map<number, Entry>;
  /** Hijacked connections still open (the drain waits for them only with `waitForHijacked`). */
  readonly hijacked: Set<number>;
  hijackedAtDrain: number;
  draining: boolean;
  /** Scheduler time at which the drain began: no idle connection lingers from earlier than this. */
  drainBeganAt: number;
  listenerClosed: boolean;
  /** The earliest time at which a lingering connection is due to close (Infinity: none). */
  lingerAt: number;
  /** Scheduler time at which the shutdown was asked for: the times of the result count from it. */
  readonly startedAt: number;
  /** What closed gracefully so far, per protocol (the totals are their sums). */
  readonly closed: Record<Protocol, GracefulCloses>;
  /** When the last connection counted as closed idle closed, in ms from `startedAt` (`undefined`: none yet). */
  lastIdleCloseMs: number | undefined;
  /** When the last drained connection closed, in ms from `startedAt` (`undefined`: none yet). */
  lastDrainedCloseMs: number | undefined;
  /** Every connection open when the shutdown was asked for is in the books (or has left them). */
  allOpened: boolean;
  /** Until then, the ones that closed: a slice that still names one must not open it again. */
  readonly gone: Set<number>;
  /** The deadline or `force()` came before the last slice: the drain ends so once the rest is in. */
  ending: 'deadline' | 'forced' | undefined;
  finished: boolean;
}

/**
 * Opens the books of a shutdown on the connections open when it was asked for, at scheduler time
 * `startedAt` (default 0). With `sliced`, more of them come in `opened` events, then `allOpened`.
 */
export function openBooks(
  connections: Iterable<TrackedConnection>,
  options: Pick<DrainOptions, 'idleLinger' | 'waitForHijacked'> & Partial<Pick<DrainOptions, 'timeout' | 'cancelAhead'>>,
  startedAt = 0,
  sliced = false,
): Books {
  const { timeout = 0, cancelAhead = 0 } = options;
  const books: Books = {
    idleLinger: options.idleLinger,
    waitForHijacked: options.waitForHijacked,
    cancelOnBegin: timeout > 0 && cancelAhead >= timeout,
    cancelled: false,
    entries: new Map(),
    hijacked: new Set(),
    hijackedAtDrain: 0,
    draining: false,
    drainBeganAt: 0,
    listenerClosed: false,
    lingerAt: Infinity,
    startedAt,
    closed: { http1: { closedIdle: 0, drained: 0 }, http2: { closedIdle: 0, drained: 0 } },
    lastIdleCloseMs: undefined,
    lastDrainedCloseMs: undefined,
    allOpened: !sliced,
    gone: new Set(),
    ending: undefined,
    finished: false,
  };
  for (const connection of connections) track(books, connection);
  return books;
}

/**
 * One decision of the drain: applies `event` at scheduler time `now` to the books and says what
 * the Node side must do. It changes nothing but the books it is given, and performs no effect.
 *
 * @example
 * const books = openBooks(open, options);
 * step(books, { type: 'begin' }, 0); // [{ type: 'closeIdle', ids: [...] }, { type: 'stopAccepting' }]
 */
export function step(books: Books, event: DrainEvent, now: number): DrainCommand[] {
  if (books.finished) return [];
  const commands: DrainCommand[] = [];
  switch (event.type) {
    case 'change':
      applyChange(books, event.change, now, commands);
      break;
    case 'changes':
      for (const change of event.changes) applyChange(books, change, now, commands);
      break;
    case 'begin':
      books.draining = true;
      books.drainBeganAt = now;
      books.hijackedAtDrain = books.hijacked.size;
      if (books.cancelOnBegin) cancel(books, 'deadline', commands);
      closeLingered(books, now, commands);
      commands.push({ type: 'stopAccepting' });
      break;
    case 'opened':
      takeIn(books, event.connections, now, commands);
      break;
    case 'allOpened':
      books.allOpened = true;
      books.gone.clear();
      if (books.ending !== undefined) {
        commands.push(finish(books, books.ending));
        return commands;
      }
      break;
    case 'listenerClosed':
      books.listenerClosed = true;
      break;
    case 'refused':
      for (const id of event.ids) {
        const entry = books.entries.get(id);
        if (entry === undefined || !entry.closing) continue;
        entry.closing = false;
        entry.busy = true;
        entry.worked = true;
      }
      break;
    case 'lingerOver':
      // A timer may fire while the scheduler's clock still reads a millisecond short of it.
      closeLingered(books, Math.max(now, event.at), commands);
      break;
    case 'cancelDue':
      cancel(books, 'deadline', commands);
      break;
    case 'end':
      // The handlers hear of it before anything is destroyed under them.
      cancel(books, event.outcome, commands);
      if (!books.allOpened) {
        // The survivors not handed over yet must be counted too: the rest comes in this turn.
        books.ending ??= event.outcome;
        commands.push({ type: 'handOverRest' });
        return commands;
      }
      commands.push(finish(books, event.outcome));
      return commands;
  }
  if (books.draining && books.listenerClosed && books.allOpened && books.entries.size === 0) {
    commands.push(finish(books, 'drained'));
  }
  return commands;
}

/**
 * The result of a finished shutdown, once the Node side has said which idle ones it refused. What
 * `finished` closes now (idle) or destroys counts at `durationMs`. With `protocols` (the protocol
 * of each connection still open at the end; one missing there is `http1`), the result carries
 * `byProtocol`.
 */
export function settle(
  finished: Finish,
  refused: ReadonlySet<number>,
  durationMs: number,
  protocols?: ReadonlyMap<number, Protocol>,
): ShutdownResult {
  const split = { http1: countsOf(finished.closed.http1), http2: countsOf(finished.closed.http2) };
  const partOf = (id: number): { closedIdle: number; drained: number; killed: number } => split[protocols?.get(id) ?? 'http1'];
  let { lastIdleCloseMs, lastDrainedCloseMs } = finished;
  for (const { id, worked } of finished.idle) {
    if (refused.has(id)) continue;
    if (worked) {
      partOf(id).drained++;
      lastDrainedCloseMs = durationMs;
    } else {
      partOf(id).closedIdle++;
      lastIdleCloseMs = durationMs;
    }
  }
  for (const id of finished.survivors) partOf(id).killed++;
  for (const id of refused) partOf(id).killed++;
  const lastGracefulCloseMs = latest(lastIdleCloseMs, lastDrainedCloseMs);
  return {
    killed: split.http1.killed + split.http2.killed,
    timedOut: finished.outcome === 'deadline',
    forced: finished.outcome === 'forced',
    durationMs,
    closedIdle: split.http1.closedIdle + split.http2.closedIdle,
    drained: split.http1.drained + split.http2.drained,
    hijacked: finished.hijacked,
    ...(protocols === undefined ? {} : { byProtocol: split }),
    ...(lastIdleCloseMs === undefined ? {} : { lastIdleCloseMs }),
    ...(lastDrainedCloseMs === undefined ? {} : { lastDrainedCloseMs }),
    ...(lastGracefulCloseMs === undefined ? {} : { lastGracefulCloseMs }),
  };
}

/**
 * The later of two times, either of which may be missing (`undefined` when both are): how the
 * times of results combine.
 *
 * @example
 * latest(12, undefined); // 12
 */
export function latest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  return b === undefined || a >= b ? a : b;
}

/**
 * One shutdown: an optional pre-drain delay, then the drain, `race(allClosed, timer(timeout),
 * force$)`, after which the survivors are destroyed and counted. The work in flight is cancelled
 * (`actions.cancel`) `cancelAhead` before the deadline, or when the deadline or `force$` ends the
 * drain, before anything is destroyed. Every event (a connection change, the delay's end, the
 * listener closed, a refusal, the linger's end, the cancel moment, the deadline, force) goes
 * through `step` in one `scan`; the commands it returns are carried out in one `tap`. The
 * linger is a stream: the books' next linger end, switched to a timer. The drain ends on the last
 * close itself, never on a poll, and with no connection as soon as the listener is closed. Emits
 * one `ShutdownResult`, then completes.
 *
 * @example
 * drain({ connections, changes$, force$, actions,
 *   options: { timeout: 10_000, drainDelay: 0, idleLinger: 1000, waitForHijacked: false, scheduler: asyncScheduler } })
 *   .subscribe((result) => console.log(result.killed));
 */
export function drain({
  connections,
  later,
  protocolOf,
  byProtocol = false,
  changes$,
  force$,
  expire$ = NEVER,
  options,
  startedAt,
  actions,
}: DrainInput): Observable<ShutdownResult> {
  return defer(() => {
    const { scheduler, timeout, cancelAhead = 0 } = options;
    const startAt = startedAt ?? scheduler.now();
    const delayEndsAt = startAt + options.drainDelay;
    const deadlineAt = delayEndsAt + timeout;
    const at = (time: number): Observable<0> => defer(() => timer(Math.max(0, time - scheduler.now()), scheduler));
    const books = openBooks(connections, options, startAt, later !== undefined);
    /** What the Node side reports back: the listener closed, connections it refused to close. */
    const reports = new Subject<DrainEvent>();
    const lingerAt = new BehaviorSubject(Infinity);

    const deadline$: Observable<DrainEvent> = merge(timeout > 0 ? at(deadlineAt) : NEVER, expire$.pipe(take(1))).pipe(
      map(() => ({ type: 'end', outcome: 'deadline' })),
    );
    // Only a moment strictly between the drain's begin and the deadline needs a timer of its own:
    // the books cancel at the begin, or at the end, themselves.
    const cancelDue$: Observable<DrainEvent> =
      timeout > 0 && cancelAhead > 0 && cancelAhead < timeout
        ? at(deadlineAt - cancelAhead).pipe(map(() => ({ type: 'cancelDue' })))
        : NEVER;
    const forced$: Observable<DrainEvent> = force$.pipe(
      take(1),
      map(() => ({ type: 'end', outcome: 'forced' })),
    );
    const begin$: Observable<DrainEvent> = (options.drainDelay > 0 ? at(delayEndsAt) : of(0)).pipe(
      map(() => ({ type: 'begin' })),
    );
    const lingerOver$: Observable<DrainEvent> = lingerAt.pipe(
      distinctUntilChanged(),
      switchMap((time) => (time === Infinity ? NEVER : at(time).pipe(map((): DrainEvent => ({ type: 'lingerOver', at: time }))))),
    );
    const connectionChanges$: Observable<DrainEvent> = changes$.pipe(
      map((change): DrainEvent => (isBatch(change) ? { type: 'changes', changes: change } : { type: 'change', change })),
    );
    const opened$: Observable<DrainEvent> =
      later === undefined
        ? EMPTY
        : concat(
            later.slices$.pipe(map((slice): DrainEvent => ({ type: 'opened', connections: slice }))),
            of<DrainEvent>({ type: 'allOpened' }),
          );

    let finished: ShutdownResult | undefined;
    const carryOut = (command: DrainCommand): void => {
      switch (command.type) {
        case 'stopAccepting':
          actions.stopAccepting(() => reports.next({ type: 'listenerClosed' }));
          break;
        case 'closeIdle':
          actions.closeIdle(command.ids, (ids) => reports.next({ type: 'refused', ids }));
          break;
        case 'cancel':
          actions.cancel?.(command.reason);
          break;
        case 'handOverRest':
          later?.rest();
          break;
        case 'finish': {
          const { finish: last } = command;
          if (last.stopAccepting) actions.stopAccepting(() => undefined);
          // Asked before anything is closed: the Node side forgets a connection as it closes it.
          const protocols = byProtocol ? protocolsAtEnd(last, protocolOf) : undefined;
          const refused = new Set(last.idle.length > 0 ? actions.closeIdleNow(last.idle.map(({ id }) => id)) : []);
          const doomed = [...last.survivors, ...refused];
          if (doomed.length > 0) actions.destroy(doomed);
          finished = settle(last, refused, scheduler.now() - startAt, protocols);
          break;
        }
      }
    };

    // The books open first (changes, then the first slice), the deadline's timer is set before
    // anything is closed, and the drain begins last; the Node side's reports and the linger come
    // back through subjects.
    return merge(connectionChanges$, reports, lingerOver$, deadline$, cancelDue$, forced$, opened$, begin$).pipe(
      scan(
        (state: Decision, event: DrainEvent): Decision => ({
          books: state.books,
          commands: step(state.books, event, scheduler.now()),
        }),
        {
          books,
          commands: [],
        },
      ),
      tap(({ books: after, commands }) => {
        for (const command of commands) carryOut(command);
        // Most events (every close of a drain) leave the next linger end as it was: no emission.
        if (after.lingerAt !== lingerAt.value) lingerAt.next(after.lingerAt);
      }),
      map(() => finished),
      filter((result): result is ShutdownResult => result !== undefined),
      take(1),
    );
  });
}

/** The books after an event, and what they ask of the Node side. */
interface Decision {
  readonly books: Books;
  readonly commands: readonly DrainCommand[];
}

function isBatch(changes: ConnectionChange | readonly ConnectionChange[]): changes is readonly ConnectionChange[] {
  return Array.isArray(changes);
}

/** Takes a connection into the books (hijacked ones only with `waitForHijacked`). */
function track(books: Books, { id, state, idleSince }: TrackedConnection): void {
  if (state === 'hijacked') {
    books.hijacked.add(id);
    if (!books.waitForHijacked) return;
  } else if (!isTracked(state)) {
    return;
  }
  books.entries.set(id, { state, idleSince, worked: state === 'active', busy: false, closing: false });
}

function applyChange(books: Books, change: ConnectionChange, now: number, commands: DrainCommand[]): void {
  const { id, state } = change;
  if (!books.allOpened && change.previous !== undefined && !known(books, id)) {
    // Open at the start and not handed over yet: it was in the state this change left.
    track(books, { id, state: change.previous, idleSince: books.startedAt });
    if (change.previous === 'hijacked' && books.draining) books.hijackedAtDrain++;
  }
  if (state === 'new') {
    track(books, { id, state, idleSince: now });
    becameIdle(books, id, now, commands);
    return;
  }
  if (state === 'closed') {
    if (!books.allOpened) books.gone.add(id);
    books.hijacked.delete(id);
    const entry = books.entries.get(id);
    if (entry === undefined) return;
    books.entries.delete(id);
    countClosed(books, entry, change.protocol ?? 'http1', now);
    return;
  }
  if (state === 'hijacked') {
    books.hijacked.add(id);
    const entry = books.entries.get(id);
    if (entry === undefined) return;
    if (books.waitForHijacked) entry.state = state;
    else books.entries.delete(id);
    return;
  }
  const entry = books.entries.get(id);
  if (entry === undefined) return;
  entry.state = state;
  entry.busy = false;
  entry.closing = false;
  if (state === 'active') {
    entry.worked = true;
  } else {
    entry.idleSince = now;
    becameIdle(books, id, now, commands);
  }
}

/**
 * A slice of the connections open at the start: each one the books do not know yet is taken in
 * (one known has come before, or has changed since: the books already follow it). During the drain
 * the idle ones among them are closed at once with no linger, or linger.
 */
function takeIn(books: Books, connections: readonly TrackedConnection[], now: number, commands: DrainCommand[]): void {
  const idle: number[] = [];
  for (const connection of connections) {
    if (known(books, connection.id)) continue;
    track(books, connection);
    if (!books.draining) continue;
    if (connection.state === 'hijacked') books.hijackedAtDrain++;
    if (books.ending !== undefined) continue; // the finish closes or destroys it
    const entry = books.entries.get(connection.id);
    if (entry === undefined || !closable(entry)) continue;
    if (books.idleLinger === 0) idle.push(connection.id);
    else books.lingerAt = Math.min(books.lingerAt, lingerEnds(books, entry.idleSince));
  }
  if (idle.length > 0) closeIdle(books, idle, commands);
}

/** The books follow this connection (a hijacked one even when the drain does not wait for it), or saw it close. */
function known(books: Books, id: number): boolean {
  return books.entries.has(id) || books.hijacked.has(id) || books.gone.has(id);
}

/** During the drain, an idle connection is closed at once with no linger, or lingers. */
function becameIdle(books: Books, id: number, now: number, commands: DrainCommand[]): void {
  if (!books.draining) return; // during the delay nothing is closed
  if (books.idleLinger === 0) closeIdle(books, [id], commands);
  else books.lingerAt = Math.min(books.lingerAt, lingerEnds(books, now));
}

/** Asks to close every idle connection whose linger is over; the next linger end is the earliest left. */
function closeLingered(books: Books, now: number, commands: DrainCommand[]): void {
  const due: number[] = [];
  let next = Infinity;
  for (const [id, entry] of books.entries) {
    if (!closable(entry)) continue;
    const end = lingerEnds(books, entry.idleSince);
    if (end <= now) due.push(id);
    else if (end < next) next = end;
  }
  books.lingerAt = next;
  if (due.length > 0) closeIdle(books, due, commands);
}

/** They stay in the books, marked `closing`, until the Node side reports them closed, active, or refused. */
function closeIdle(books: Books, ids: readonly number[], commands: DrainCommand[]): void {
  for (const id of ids) {
    const entry = books.entries.get(id);
    if (entry !== undefined) entry.closing = true;
  }
  commands.push({ type: 'closeIdle', ids });
}

/** The books close: what is idle is closed now, the rest destroyed and counted. */
function finish(books: Books, outcome: DrainOutcome): DrainCommand {
  const idle: Array<{ id: number; worked: boolean }> = [];
  const survivors: number[] = [];
  for (const [id, entry] of books.entries) {
    if (closable(entry) || entry.closing) idle.push({ id, worked: entry.worked });
    else survivors.push(id);
  }
  const stopAccepting = !books.draining;
  if (stopAccepting) books.hijackedAtDrain = books.hijacked.size; // forced during the delay
  books.entries.clear();
  books.finished = true;
  books.lingerAt = Infinity;
  return {
    type: 'finish',
    finish: {
      outcome,
      idle,
      survivors,
      stopAccepting,
      closed: { http1: { ...books.closed.http1 }, http2: { ...books.closed.http2 } },
      lastIdleCloseMs: books.lastIdleCloseMs,
      lastDrainedCloseMs: books.lastDrainedCloseMs,
      hijacked: books.hijackedAtDrain,
    },
  };
}

/** Asks the Node side to cancel the work in flight, once a shutdown. */
function cancel(books: Books, reason: CancelReason, commands: DrainCommand[]): void {
  if (books.cancelled) return;
  books.cancelled = true;
  commands.push({ type: 'cancel', reason });
}

/** A connection closed by itself, or as the drain asked: counted under its protocol, at `now`. */
function countClosed(books: Books, entry: Entry, protocol: Protocol, now: number): void {
  if (entry.state === 'hijacked') return;
  const since = now - books.startedAt;
  if (entry.worked) {
    books.closed[protocol].drained++;
    books.lastDrainedCloseMs = since;
  } else {
    books.closed[protocol].closedIdle++;
    books.lastIdleCloseMs = since;
  }
}

/** The protocol of each connection the finish closes or destroys, asked of the Node side before it does. */
function protocolsAtEnd(last: Finish, protocolOf: ((id: number) => Protocol) | undefined): Map<number, Protocol> {
  const protocols = new Map<number, Protocol>();
  if (protocolOf === undefined) return protocols;
  for (const { id } of last.idle) protocols.set(id, protocolOf(id));
  for (const id of last.survivors) protocols.set(id, protocolOf(id));
  return protocols;
}

function countsOf({ closedIdle, drained }: Readonly<GracefulCloses>): { closedIdle: number; drained: number; killed: number } {
  return { closedIdle, drained, killed: 0 };
}

/** When an idle connection's linger ends: `idleLinger` after it became idle, or after the drain began if later. */
function lingerEnds(books: Books, idleSince: number): number {
  return Math.max(idleSince, books.drainBeganAt) + books.idleLinger;
}

/** Idle, and not already asked to close. */
function closable(entry: Entry): boolean {
  return (entry.state === 'idle' || entry.state === 'new') && !entry.busy && !entry.closing;
}
