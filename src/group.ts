import {
  combineLatest,
  distinctUntilChanged,
  EMPTY,
  firstValueFrom,
  forkJoin,
  ignoreElements,
  map,
  merge,
  Observable,
  SchedulerLike,
  share,
  shareReplay,
  Subject,
  Subscription,
  take,
  takeUntil,
  tap,
  timer,
} from 'rxjs';
import { latest } from './core/drain';
import type { ProtocolCounts, ShutdownResult } from './core/lifecycle';
import type { Phase, ServerState } from './core/state';
import { describeValue } from './errors';
import { expireShutdown, GracefulServer } from './graceful-server';
import { unrefScheduler } from './node/unref-scheduler';
import { OptionReader } from './options';
import { shutdownOn, ShutdownSubject, ShutdownTarget } from './shutdown-on';

/**
 * Options of `GracefulGroup`. Every duration is in milliseconds.
 *
 * @example
 * new GracefulGroup([api, admin], { timeout: 25_000 }); // every member ends within 25 s of the group's shutdown
 */
export interface GroupOptions {
  /**
   * One deadline for every member, counted from the group's shutdown; 0 = none, each member's own
   * `timeout` alone bounds it (default 0), at most 2^31 - 1. A member's own shorter `timeout`
   * still ends it first.
   */
  timeout?: number;
  /** Time source of the group's deadline (default: `asyncScheduler`'s clock, its timer unref'd, as `GracefulServer`'s). */
  scheduler?: SchedulerLike;
}

/**
 * The state of a group, as `GracefulGroup.state$` emits it: the members' states combined. `phase`
 * is `draining` if any member drains, `serving` if any serves and none drains, else `stopped`;
 * `accepting` if any member accepts; `open`, `active`, `idle` and `killed` are the members' sums.
 *
 * @example
 * group.state$.subscribe(({ phase, open }) => gauge.set({ phase }, open));
 */
export type GroupState = Omit<ServerState, 'address'>;

/**
 * One member's part in a group's shutdown: its position in the list given to the group, the member
 * itself, and its own result. `server` is not enumerable, so that `JSON.stringify` of a group's
 * result prints the counts rather than the whole Node server.
 *
 * @example
 * const api = done.results.find((r) => r.server === apiServer)?.result;
 */
export interface MemberResult {
  /** Where the member stands in the array given to `new GracefulGroup(...)`, from 0. */
  readonly index: number;
  /** The member (not enumerable). */
  readonly server: GracefulServer;
  /** The member's own result: what its `done$` emitted for this shutdown. */
  readonly result: ShutdownResult;
}

/**
 * The result of a group's shutdown: the members' totals (`killed`, `closedIdle`, `drained`,
 * `hijacked` summed; `timedOut` and `forced` if any member's were), `durationMs` from the group's
 * shutdown to the end of the last member's (on the group's scheduler), and `results`, one per member
 * that was serving or draining when the group shut down, in the order the members were given.
 * `byProtocol` is there when a member's result has it: the members' splits summed, a member without
 * one (an `http` or `https` server) counted as HTTP/1. `lastIdleCloseMs`, `lastDrainedCloseMs` and
 * `lastGracefulCloseMs` are the latest of the members' (each counted from that member's shutdown,
 * which is the group's for every member the group started), absent when no member has one.
 *
 * @example
 * const { killed, results } = await group.wait();
 * for (const { index, result } of results) console.log(`member ${index}: killed ${result.killed}`);
 */
export interface GroupShutdownResult extends ShutdownResult {
  /** One entry per member that took part in this shutdown, in the order the members were given. */
  readonly results: readonly MemberResult[];
}

/**
 * Several `GracefulServer`s (an API, an admin port, metrics) as one, with the shape of one server:
 * `shutdown$`, `shutdown()`, `shutdownOK()`, `force()`, `wait()`, `shutdownOn()`, `ready$`,
 * `state$` and `done$`, all built from the members' own streams. A shutdown of the group shuts down
 * every member that serves, joins those already draining, and ends with one result; its `timeout`
 * is one deadline for all of them, at which the members still draining end as their own deadline
 * would end them (`timedOut: true`). Members that are stopped when the group shuts down take no
 * part in it. The members stay usable on their own.
 *
 * Throws a `TypeError` for an empty list, a member that is not a `GracefulServer`, the same member
 * twice, a negative, non-finite or non-number `timeout`, a scheduler that is not one, or an option
 * name that does not exist.
 *
 * @example
 * const api = new GracefulServer(http.createServer(app), { timeout: 20_000 });
 * const admin = new GracefulServer(http.createServer(adminApp));
 * const group = new GracefulGroup([api, admin], { timeout: 25_000 });
 * group.shutdownOn(fromSignals('SIGTERM', 'SIGINT'));
 * await Promise.all([api.listen(8080), admin.listen(9090)]);
 * const { killed, results } = await group.wait();
 */
export class GracefulGroup implements ShutdownTarget {
  /** The members, in the order given. */
  readonly members: readonly GracefulServer[];
  /** The members' states combined (see `GroupState`); replays the current state, then each change. */
  readonly state$: Observable<GroupState>;
  /** `true` while every member is ready, `false` otherwise; replays. */
  readonly ready$: Observable<boolean>;
  /** One value per finished shutdown of the group; hot. */
  readonly done$: Observable<GroupShutdownResult>;
  /**
   * Emits each time a member starts serving, and when the group's shutdown has finished while a
   * member serves (one that started serving during it): a new cycle for `shutdownOn`; hot.
   */
  readonly serving$: Observable<unknown>;
  /**
   * `next(anything)` starts the group's shutdown, like `shutdown()`. A piped source that completes
   * or errors does not close it: `signal$.pipe(take(1)).subscribe(group.shutdown$)` works every cycle.
   */
  // eslint-disable-next-line rxjs-x/no-exposed-subjects -- the contract makes shutdown$ a public Subject, as GracefulServer's; ShutdownSubject ignores complete() and error()
  readonly shutdown$: Subject<unknown>;

  private readonly results = new Subject<GroupShutdownResult>();
  /** The group's shutdown has finished and a member serves: the group serves on. */
  private readonly servingOn = new Subject<void>();
  /** The group's shutdown while it runs (it ends itself when the last member has finished). */
  private running: Subscription | undefined;
  private last: GroupShutdownResult | undefined;

  /** The one deadline for all members, in ms from the group's shutdown (0: none). */
  private readonly timeout: number;
  private readonly scheduler: SchedulerLike;

  constructor(members: readonly GracefulServer[], options: GroupOptions = {}) {
    this.members = checkMembers(members);
    const read = new OptionReader('new GracefulGroup(members, options)', options, ['timeout', 'scheduler']);
    this.timeout = read.duration('timeout', 0);
    this.scheduler = read.scheduler('scheduler', unrefScheduler);
    this.state$ = combineLatest(this.members.map((member) => member.state$)).pipe(
      map(combineStates),
      distinctUntilChanged(sameState),
      shareReplay({ bufferSize: 1, refCount: true }),
    );
    this.ready$ = combineLatest(this.members.map((member) => member.ready$)).pipe(
      map((ready) => ready.every(Boolean)),
      distinctUntilChanged(),
    );
    this.done$ = this.results.asObservable();
    this.serving$ = merge(this.servingOn, ...this.members.map((member) => member.serving$));
    this.shutdown$ = new ShutdownSubject(() => this.start());
  }

  /**
   * Where the group is, for a trigger to act on: `draining` while the group's shutdown runs,
   * `serving` while any member serves (a shutdown then has something to start), `draining` while
   * members drain on their own and none serves, else `stopped`.
   */
  get phase(): Phase {
    if (this.running !== undefined) return 'draining';
    const phases = this.members.map((member) => member.phase);
    if (phases.includes('serving')) return 'serving';
    return phases.includes('draining') ? 'draining' : 'stopped';
  }

  /** Starts the group's shutdown and returns at once; only the first call while a member serves has an effect. */
  shutdown(): void {
    this.start();
  }

  /** Like `shutdown()`, and true only for the call that started the group's shutdown. */
  shutdownOK(): boolean {
    return this.start();
  }

  /** Ends every member's current shutdown now: each destroys and counts its survivors. Outside a shutdown, nothing. */
  force(): void {
    for (const member of this.members) member.force();
  }

  /**
   * Settles with the result of the group's current shutdown once every member has finished; while
   * no member serves or drains, with the last one's; otherwise with the next one's.
   */
  wait(): Promise<GroupShutdownResult> {
    if (this.last !== undefined && this.phase === 'stopped') return Promise.resolve(this.last);
    // eslint-disable-next-line rxjs-x/no-ignored-default-value -- done$ never completes: there is no empty case to default
    return firstValueFrom(this.done$);
  }

  /**
   * Shuts the group down on `trigger$`, as `GracefulServer.shutdownOn` does for one server: a value
   * while a member serves starts the group's shutdown, a value during it calls `force()`, a value
   * while no member serves is kept until one does. Unsubscribe the result to end it all.
   *
   * @example
   * const signals = group.shutdownOn(fromSignals('SIGTERM', 'SIGINT'));
   */
  shutdownOn(trigger$: Observable<unknown>): Subscription {
    return shutdownOn(this, trigger$);
  }

  /** The group's shutdown; `false` if one runs already or no member serves. */
  private start(): boolean {
    if (this.running !== undefined) return false;
    // Members draining on their own are joined; stopped ones take no part.
    const taking = this.members.filter((member) => member.phase !== 'stopped');
    if (!taking.some((member) => member.phase === 'serving')) return false;
    const { timeout, scheduler } = this;
    const startedAt = scheduler.now();

    const finished$ = forkJoin(
      taking.map((member) =>
        member.done$.pipe(
          take(1),
          map((result) => memberResult(this.members.indexOf(member), member, result)),
        ),
      ),
    ).pipe(share());
    // The deadline ends the members still draining as their own would; their results then finish the group's.
    const deadline$ = timeout > 0 ? timer(timeout, scheduler).pipe(takeUntil(finished$)) : EMPTY;
    const expired$ = deadline$.pipe(
      tap(() => {
        for (const member of taking) if (member.phase === 'draining') expireShutdown(member);
      }),
      ignoreElements(),
    );
    // Subscribed before any member starts: a member's done$ is hot.
    this.running = merge(expired$, finished$)
      .pipe(map((results) => totalOf(results, scheduler.now() - startedAt)))
      .subscribe({
        next: (result) => this.finish(result),
        // Only a bug fails it (a member method that threw): it surfaces as an uncaught exception.
        error: (error: unknown) => {
          throw error;
        },
      });
    for (const member of taking) member.shutdown();
    return true;
  }

  private finish(result: GroupShutdownResult): void {
    this.running = undefined;
    this.last = result;
    this.results.next(result);
    // A member that started serving during the shutdown took no part in it: announced after
    // `done$`, so that a `shutdownOn` watch of the finished shutdown has ended and a new one starts.
    if (this.phase === 'serving') this.servingOn.next();
  }
}

function combineStates(states: readonly ServerState[]): GroupState {
  let open = 0;
  let active = 0;
  let killed = 0;
  for (const state of states) {
    open += state.open;
    active += state.active;
    killed += state.killed;
  }
  const phase: Phase = states.some((s) => s.phase === 'draining')
    ? 'draining'
    : states.some((s) => s.phase === 'serving')
      ? 'serving'
      : 'stopped';
  return { phase, accepting: states.some((s) => s.accepting), open, active, idle: open - active, killed };
}

function sameState(a: GroupState, b: GroupState): boolean {
  return (
    a.phase === b.phase && a.accepting === b.accepting && a.open === b.open && a.active === b.active && a.killed === b.killed
  );
}

function memberResult(index: number, server: GracefulServer, result: ShutdownResult): MemberResult {
  return Object.defineProperty({ index, result }, 'server', { value: server, enumerable: false }) as MemberResult;
}

/**
 * The result of a group's shutdown from its members' results (see `GroupShutdownResult`): counts
 * summed, flags or'ed, times the latest; `durationMs` is the group's own.
 *
 * @example
 * totalOf([{ index: 0, server: api, result: apiResult }], 120).killed; // apiResult.killed
 */
export function totalOf(results: readonly MemberResult[], durationMs: number): GroupShutdownResult {
  const total = { killed: 0, timedOut: false, forced: false, durationMs, closedIdle: 0, drained: 0, hijacked: 0 };
  const http1 = { closedIdle: 0, drained: 0, killed: 0 };
  const http2 = { closedIdle: 0, drained: 0, killed: 0 };
  let split = false;
  let lastIdleCloseMs: number | undefined;
  let lastDrainedCloseMs: number | undefined;
  for (const { result } of results) {
    total.killed += result.killed;
    total.timedOut ||= result.timedOut;
    total.forced ||= result.forced;
    total.closedIdle += result.closedIdle;
    total.drained += result.drained;
    total.hijacked += result.hijacked;
    // A member with no split (an http or https server) speaks HTTP/1 alone.
    addCounts(http1, result.byProtocol?.http1 ?? result);
    if (result.byProtocol !== undefined) addCounts(http2, result.byProtocol.http2);
    split ||= result.byProtocol !== undefined;
    lastIdleCloseMs = latest(lastIdleCloseMs, result.lastIdleCloseMs);
    lastDrainedCloseMs = latest(lastDrainedCloseMs, result.lastDrainedCloseMs);
  }
  const lastGracefulCloseMs = latest(lastIdleCloseMs, lastDrainedCloseMs);
  return {
    ...total,
    ...(split ? { byProtocol: { http1, http2 } } : {}),
    ...(lastIdleCloseMs === undefined ? {} : { lastIdleCloseMs }),
    ...(lastDrainedCloseMs === undefined ? {} : { lastDrainedCloseMs }),
    ...(lastGracefulCloseMs === undefined ? {} : { lastGracefulCloseMs }),
    results,
  };
}

function addCounts(sum: { closedIdle: number; drained: number; killed: number }, part: ProtocolCounts): void {
  sum.closedIdle += part.closedIdle;
  sum.drained += part.drained;
  sum.killed += part.killed;
}

/** A type guard: `instanceof` alone narrows a generic class to `GracefulServer<any>`. */
function isGracefulServer(value: unknown): value is GracefulServer {
  return value instanceof GracefulServer;
}

function checkMembers(members: unknown): GracefulServer[] {
  if (!Array.isArray(members) || members.length === 0) {
    throw new TypeError(
      `rx-graceful: new GracefulGroup(members) expects a non-empty array of GracefulServer, got ${Array.isArray(members) ? 'an empty array' : describeValue(members)}`,
    );
  }
  const seen = new Map<unknown, number>();
  return (members as unknown[]).map((member, index) => {
    if (!isGracefulServer(member)) {
      throw new TypeError(
        `rx-graceful: new GracefulGroup(members): members[${index}] must be a GracefulServer, got ${describeValue(member)}`,
      );
    }
    const first = seen.get(member);
    if (first !== undefined) {
      throw new TypeError(
        `rx-graceful: new GracefulGroup(members): members[${index}] is members[${first}] again; a member can be given once`,
      );
    }
    seen.set(member, index);
    return member;
  });
}
