import {
  catchError,
  EMPTY,
  exhaustMap,
  filter,
  map,
  merge,
  Observable,
  of,
  scan,
  Subject,
  Subscription,
  takeUntil,
  tap,
} from 'rxjs';
import type { Phase } from './core/state';

/**
 * What `shutdownOn` drives: a server, a group of servers, or anything with the same cycle of
 * `stopped → serving → draining → stopped`.
 *
 * @example
 * const target: ShutdownTarget = { phase: 'serving', serving$, done$, shutdown: () => stop(), force: () => kill() };
 */
export interface ShutdownTarget {
  /** Where the target is now. */
  readonly phase: Phase;
  /** Emits each time the target starts serving (a new cycle); hot. */
  readonly serving$: Observable<unknown>;
  /** Emits when a shutdown has finished; hot. */
  readonly done$: Observable<unknown>;
  /** Starts a graceful shutdown; does nothing unless serving. */
  shutdown(): void;
  /** Ends the shutdown in progress now; does nothing outside one. */
  force(): void;
}

/** What one value of the trigger, or the start of a serving cycle, asks of the target. */
type Ask = 'shutdown' | 'force';

/** The books of one watch: the values kept while the target was not serving, and what to do now. */
interface Watch {
  readonly kept: number;
  readonly asks: readonly Ask[];
}

/** What a watch sees: a trigger's value, or the target starting to serve, with the phase at that moment. */
interface Sighting {
  readonly kind: 'trigger' | 'serving';
  readonly phase: Phase;
}

/**
 * Shuts `target` down on each value of `trigger$`: a value while serving starts the shutdown; a
 * value while a shutdown is in progress (however it was started, a pre-drain delay included)
 * calls `force()`; a value while not serving (before the first listen, or between cycles) is kept,
 * and the shutdown starts as soon as the target serves (with two or more kept values, `force()`
 * follows at once: a second signal means "now").
 *
 * `trigger$` is subscribed only while it matters: from the call until the shutdown has finished,
 * and again each time the target starts serving, until that cycle's shutdown has finished. With
 * `fromSignals`, no process listener is left between cycles, and Node's default action for a
 * signal (exiting) is back. `trigger$` completing or erroring changes nothing; unsubscribing the
 * returned `Subscription` ends all of it.
 *
 * @example
 * const watching = shutdownOn(target, fromSignals('SIGTERM', 'SIGINT'));
 * // later, to stop listening for signals altogether:
 * watching.unsubscribe();
 */
export function shutdownOn(target: ShutdownTarget, trigger$: Observable<unknown>): Subscription {
  // One watch from the call, then one per serving cycle; a cycle that starts during a watch
  // belongs to it (exhaustMap), so that the values it kept are not lost. A cycle whose shutdown
  // has already finished by the time this hears of it starts none.
  const cycle$ = target.serving$.pipe(filter(() => target.phase !== 'stopped'));
  const watch$ = merge(of(undefined), cycle$).pipe(
    exhaustMap(() =>
      merge(
        trigger$.pipe(
          catchError(() => EMPTY),
          map((): Sighting => ({ kind: 'trigger', phase: target.phase })),
        ),
        target.serving$.pipe(map((): Sighting => ({ kind: 'serving', phase: target.phase }))),
      ).pipe(
        scan(decide, { kept: 0, asks: [] }),
        tap(({ asks }) => {
          for (const ask of asks) target[ask]();
        }),
        takeUntil(target.done$),
      ),
    ),
  );
  return watch$.subscribe({
    // Only a target that throws fails the watch: it surfaces as an uncaught exception.
    error: (error: unknown) => {
      throw error;
    },
  });
}

/** One decision of a watch: what a trigger's value or the start of serving asks of the target. */
function decide({ kept }: Watch, { kind, phase }: Sighting): Watch {
  if (kind === 'serving') {
    if (kept === 0) return { kept, asks: [] };
    return { kept: 0, asks: kept === 1 ? ['shutdown'] : ['shutdown', 'force'] };
  }
  if (phase === 'serving') return { kept, asks: ['shutdown'] };
  if (phase === 'draining') return { kept, asks: ['force'] };
  return { kept: kept + 1, asks: [] };
}

/**
 * The contract's `shutdown$`: every `next` starts a shutdown through `start`; `complete` and
 * `error` leave it open, so that `signal$.pipe(take(1)).subscribe(server.shutdown$)` works in
 * every serving cycle.
 *
 * @example
 * readonly shutdown$ = new ShutdownSubject(() => this.shutdown());
 */
// eslint-disable-next-line rxjs-x/no-subclass -- the contract's shutdown$ is a Subject that complete() and error() must not close: only a subclass is both
export class ShutdownSubject extends Subject<unknown> {
  constructor(private readonly start: () => void) {
    super();
  }

  override next(value: unknown): void {
    this.start();
    super.next(value);
  }

  override error(): void {
    // A failing source (a signal stream that errors) must not disable shutdowns for good.
  }

  override complete(): void {
    // `take(1)` completes its subscriber: the next serve cycle must still be able to shut down.
  }
}
