import { firstValueFrom, isObservable, SchedulerLike, Subscription } from 'rxjs';
import type { DrainOptions, Lifecycle, ShutdownResult } from './core/lifecycle';
import { describeValue } from './errors';
import type { OptionReader } from './options';
import { shutdownOn, ShutdownTarget } from './shutdown-on';

// What every server built on the core's `Lifecycle` does the same way, whether it wraps a Node
// server (`GracefulServer`) or runs on marble diagrams (`VirtualServer` in rx-graceful/testing):
// the shutdown options, read and checked alike, `wait()` and `shutdownOn()`. Nothing here may load
// node:net or node:http: the testing kit imports it.

/** Default of the `idleLinger` option, in ms. */
export const DEFAULT_IDLE_LINGER = 1000;
/** The longest `idleLinger` allowed, in ms. */
export const MAX_IDLE_LINGER = 1000;

/**
 * Reads and checks the options that shape a shutdown (`timeout`, `drainDelay`, `idleLinger`,
 * `cancelAhead`, `scheduler`, `waitForHijacked`), with the same defaults and limits for every
 * server; `scheduler` is the time source used when the options name none. Throws the reader's
 * `TypeError` for a bad value.
 *
 * @example
 * const read = new OptionReader('new GracefulServer(server, options)', options, names);
 * const lifecycle = new Lifecycle(host, readShutdownOptions(read, unrefScheduler));
 */
export function readShutdownOptions(read: OptionReader, scheduler: SchedulerLike): DrainOptions {
  const timeout = read.duration('timeout', 0);
  const drainDelay = read.duration('drainDelay', 0);
  const idleLinger = read.duration('idleLinger', DEFAULT_IDLE_LINGER, MAX_IDLE_LINGER);
  const cancelAhead = read.duration('cancelAhead', 0);
  const chosen = read.scheduler('scheduler', scheduler);
  const waitForHijacked = read.flag('waitForHijacked');
  return { timeout, drainDelay, idleLinger, waitForHijacked, cancelAhead, scheduler: chosen };
}

/**
 * `wait()` of a server: the result of the current shutdown once it has finished; while stopped,
 * the last one's; while serving (or before any shutdown), the next one's.
 *
 * @example
 * wait(): Promise<ShutdownResult> { return waitForShutdown(this.lifecycle); }
 */
export function waitForShutdown(lifecycle: Lifecycle): Promise<ShutdownResult> {
  const last = lifecycle.lastResult;
  if (lifecycle.phase === 'stopped' && last !== undefined) return Promise.resolve(last);
  // eslint-disable-next-line rxjs-x/no-ignored-default-value -- done$ never completes (the lifecycle never completes its Subject): there is no empty case to default
  return firstValueFrom(lifecycle.done$);
}

/**
 * `shutdownOn(trigger$)` of a server: throws a `TypeError` if `trigger$` is not an Observable,
 * then watches it for `target` (see `shutdownOn`).
 *
 * @example
 * shutdownOn(trigger$: Observable<unknown>): Subscription { return watchTrigger(this, trigger$); }
 */
export function watchTrigger(target: ShutdownTarget, trigger$: unknown): Subscription {
  if (!isObservable(trigger$)) {
    throw new TypeError(`rx-graceful: shutdownOn(trigger$) expects an Observable, got ${describeValue(trigger$)}`);
  }
  return shutdownOn(target, trigger$);
}
