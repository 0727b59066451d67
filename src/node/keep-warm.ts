import { constants, type NodeGCPerformanceDetail, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { catchError, EMPTY, filter, ignoreElements, Observable, share, tap } from 'rxjs';
import { runShutdownPathWarmUp } from '../warm-up';
import { runAdapterWarmUp } from './warm-up';

/**
 * How many mark-compact collections of the process may pass between two warm-ups of the shutdown
 * path. V8 drops the compiled bytecode of a function that has not run through `--bytecode-old-age`
 * of them (5 in Node 20's V8); the next call compiles it again, from the source. Measured on
 * 2026-12-04 (a server on one core, its clients on the other, 3 fresh processes each): after 10
 * such collections, a shutdown of 100 idle connections took 17.7 ms (14.1–18.8) instead of 7.3 in
 * a fresh process, and of 1,000, 63 ms (40–63) instead of 36; bare Node's own grew by about 1 ms.
 * Running the warm-ups again after the collections brought them back to 10.1 and 38.7 ms.
 */
export const collectionsPerWarmUp = 3;

/** A `gc` entry: Node's types leave its `detail` off `PerformanceEntry`. */
type GcEntry = PerformanceEntry & { readonly detail?: NodeGCPerformanceDetail | null };

/** Whether `entry` is a major collection that V8 started by itself (not a forced `gc()`). */
function isOwnMajor(entry: GcEntry): boolean {
  const detail = entry.detail;
  if (detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) return false;
  return (detail.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) === 0;
}

/**
 * One value per mark-compact ("major") garbage collection that V8 starts by itself, while
 * subscribed: a `gc` PerformanceObserver, disconnected on unsubscribe. A forced one (`gc()`) is
 * left out: it does not age compiled code, and a warm-up after it would only add to the heap it
 * was called to measure. It holds nothing open: a process whose only other
 * work has ended exits with it subscribed.
 */
export const majorCollections$: Observable<void> = new Observable<void>((subscriber) => {
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (isOwnMajor(entry)) subscriber.next();
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
});

/**
 * Runs `warmUp` after every `every`-th value of `collections$`, while subscribed; emits nothing. If
 * `warmUp` throws, it completes and runs it no more: a warm-up only saves time, and a throw from a
 * collection's callback would end the user's process.
 *
 * @example
 * warmUpEvery(majorCollections$, 3, runShutdownPathWarmUp).subscribe();
 */
export function warmUpEvery(collections$: Observable<unknown>, every: number, warmUp: () => void): Observable<never> {
  return collections$.pipe(
    filter((_, index) => (index + 1) % every === 0),
    tap(() => warmUp()),
    ignoreElements(),
    catchError(() => EMPTY),
  );
}

/**
 * Keeps the shutdown path compiled while subscribed: the warm-ups that the first `GracefulServer`
 * of a process runs (warm-up.ts, node/warm-up.ts) run again every `collectionsPerWarmUp` major
 * collections. Without it, a process that has served for a while compiles the whole drain again
 * in its shutdown, with the connections waiting. One observer for the whole process, whatever the
 * number of subscribers; each `GracefulServer` subscribes while it serves, so that nothing is left
 * once none does.
 */
export const shutdownPathKeptWarm$: Observable<never> = warmUpEvery(majorCollections$, collectionsPerWarmUp, () => {
  runShutdownPathWarmUp();
  runAdapterWarmUp();
}).pipe(share());
