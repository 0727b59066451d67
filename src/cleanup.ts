import {
  asyncScheduler,
  catchError,
  concatMap,
  defer,
  EMPTY,
  endWith,
  finalize,
  from,
  ignoreElements,
  isObservable,
  map,
  Observable,
  of,
  race,
  SchedulerLike,
  tap,
  timer,
} from 'rxjs';
import { describeValue } from './errors';
import { MAX_TIMER, OptionReader } from './options';

/**
 * One piece of a service's own cleanup after the drain (close a database pool, flush logs), with
 * the most time it may take.
 *
 * @example
 * const closePool: CleanupStep = { name: 'database pool', timeout: 5_000, run: () => pool.end() };
 */
export interface CleanupStep {
  /** Names the step in its outcome and in error messages. */
  readonly name: string;
  /** The most the step may take, in ms (more than 0, at most 2^31 - 1); then it counts as `timedOut`. */
  readonly timeout: number;
  /**
   * Does the work. It may return a Promise (the step ends when it settles), an Observable (the
   * step ends when it completes; unsubscribed if the time is up) or anything else (the step ended
   * when `run` returned). A throw or a rejection makes the step `failed`. `signal` aborts when the
   * time is up (its `reason` a `DOMException` named `TimeoutError`), or when the cleanup is
   * unsubscribed before the step ends: stop the work and let go of what it holds.
   */
  readonly run: (signal: AbortSignal) => unknown;
}

/**
 * How one step ended, in the order the steps ran. `durationMs` is from the start of the step to
 * its end, in ms of the scheduler's clock (for `timedOut`, the step's `timeout`).
 *
 * @example
 * runCleanup(steps).subscribe((o) => console.log(`${o.name}: ${o.status} in ${o.durationMs} ms`));
 */
export type CleanupOutcome = CleanupEnded | CleanupFailed;

/** A step that ended in time (`done`) or was cut at its bound (`timedOut`). */
export interface CleanupEnded {
  /** The step's `name`. */
  readonly name: string;
  /** `done`: it finished in time; `timedOut`: its bound came first and its signal aborted. */
  readonly status: 'done' | 'timedOut';
  /** How long it ran, in ms of the scheduler's clock. */
  readonly durationMs: number;
}

/** A step that threw, rejected or errored. */
export interface CleanupFailed {
  /** The step's `name`. */
  readonly name: string;
  /** Always `failed`. */
  readonly status: 'failed';
  /** How long it ran, in ms of the scheduler's clock. */
  readonly durationMs: number;
  /** What `run` threw, or what its Promise rejected with or its Observable errored with. */
  readonly error: unknown;
}

/**
 * Options of `runCleanup`.
 *
 * @example
 * testScheduler.run(() => expectObservable(runCleanup(steps, { scheduler: testScheduler })).toBe('50ms (ab|)', outcomes));
 */
export interface CleanupOptions {
  /**
   * Time source of the steps' bounds (default `asyncScheduler`). Its timers keep the process alive
   * while a step runs, so that a step that hangs still reaches its bound and the next step runs.
   */
  scheduler?: SchedulerLike;
}

/**
 * Runs a service's cleanup steps one after another, each bounded by its `timeout`, and emits the
 * outcome of each as it ends: `done`, `failed` (it threw or rejected; the next step runs all the
 * same) or `timedOut` (its `signal` aborts, and the next step runs). Completes after the last
 * step, with no timer left behind, so that a process whose work is over exits by itself; it never
 * errors. Cold: nothing runs until it is subscribed, and each subscription runs the steps again;
 * unsubscribing aborts the running step's `signal` and runs no further step.
 *
 * Throws a `TypeError` at the call for steps that are not an array of `{ name, timeout, run }`
 * with a string name, a timeout in ms from more than 0 to 2^31 - 1 and a function `run`, or for
 * an unknown option.
 *
 * @example
 * // After the drain, close the pool and flush the logs, each with its own bound.
 * const steps: CleanupStep[] = [
 *   { name: 'database pool', timeout: 5_000, run: () => pool.end() },
 *   { name: 'logs', timeout: 1_000, run: (signal) => logger.flush({ signal }) },
 * ];
 * graceful.done$
 *   .pipe(take(1), concatMap(() => runCleanup(steps)), toArray())
 *   .subscribe((outcomes) => console.log(outcomes));
 *
 * // Or, in an async main once the server has shut down:
 * await graceful.wait();
 * const outcomes = await lastValueFrom(runCleanup(steps).pipe(toArray()));
 */
export function runCleanup(steps: readonly CleanupStep[], options: CleanupOptions = {}): Observable<CleanupOutcome> {
  const checked = checkSteps(steps);
  const scheduler = new OptionReader('runCleanup(steps, options)', options, ['scheduler']).scheduler('scheduler', asyncScheduler);
  return from(checked).pipe(concatMap((step) => runStep(step, scheduler)));
}

/** What ended a step, before it is stamped with its name and duration. */
type Ending = { readonly status: 'done' | 'timedOut' } | { readonly status: 'failed'; readonly error: unknown };

const done: Ending = { status: 'done' };
const timedOut: Ending = { status: 'timedOut' };

/** One step raced with its bound; the bound's win aborts the step's signal. */
function runStep(step: CleanupStep, scheduler: SchedulerLike): Observable<CleanupOutcome> {
  return defer(() => {
    const controller = new AbortController();
    const startedAt = scheduler.now();
    let ended = false;
    const finished$ = defer(() => completionOf(step.run(controller.signal))).pipe(
      endWith(done),
      catchError((error: unknown) => of<Ending>({ status: 'failed', error })),
    );
    const expired$ = timer(step.timeout, scheduler).pipe(map(() => timedOut));
    // `finished$` is subscribed first: a step that ends within `run` wins before its timer is scheduled.
    return race(finished$, expired$).pipe(
      map((ending): CleanupOutcome => ({ name: step.name, durationMs: scheduler.now() - startedAt, ...ending })),
      tap((outcome) => {
        ended = true;
        if (outcome.status === 'timedOut') {
          controller.abort(new DOMException(`cleanup step "${step.name}" took longer than ${step.timeout} ms`, 'TimeoutError'));
        }
      }),
      finalize(() => {
        if (!ended) controller.abort();
      }),
    );
  });
}

/** The work of a step as an Observable that completes (or errors) when the work has ended. */
function completionOf(result: unknown): Observable<never> {
  if (isObservable(result)) return result.pipe(ignoreElements());
  if (isThenable(result)) return from(result).pipe(ignoreElements());
  return EMPTY;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof Reflect.get(value, 'then') === 'function'
  );
}

function checkSteps(steps: unknown): CleanupStep[] {
  if (!Array.isArray(steps)) {
    throw new TypeError(`rx-graceful: runCleanup(steps) expects an array of { name, timeout, run }, got ${describeValue(steps)}`);
  }
  return steps.map((step: unknown, index) => {
    const where = `runCleanup(steps): steps[${index}]`;
    if (typeof step !== 'object' || step === null) {
      throw new TypeError(`rx-graceful: ${where} must be an object { name, timeout, run }, got ${describeValue(step)}`);
    }
    const { name, timeout, run } = step as Record<string, unknown>;
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`rx-graceful: ${where}.name must be a non-empty string, got ${describeValue(name)}`);
    }
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0 || timeout > MAX_TIMER) {
      throw new TypeError(
        `rx-graceful: ${where}.timeout (step "${name}") must be a number of milliseconds more than 0 and at most ${MAX_TIMER}, got ${describeValue(timeout)}`,
      );
    }
    if (typeof run !== 'function') {
      throw new TypeError(`rx-graceful: ${where}.run (step "${name}") must be a function, got ${describeValue(run)}`);
    }
    return step as CleanupStep;
  });
}
