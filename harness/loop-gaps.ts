/**
 * How long the event loop of this process is held at once: a 1 ms timer notes the time between two
 * of its turns, and the stretch from its last turn to the call that reads it (the last closes of a
 * drain and its result may come in one long turn, which no later timer would see). On a loaded
 * machine this includes the time the process waited for a core.
 *
 * V8's garbage collection pauses the loop too, and a heap that holds tens of thousands of sockets
 * pauses it for several ms at a scavenge whether or not a drain is running. So each gap is also
 * read without the GC pauses inside it (from `gc` performance entries): what the drain's own work
 * held, beside what the collector held.
 *
 * A process pinned to one core shares it with its own other threads (V8's compiler and GC helpers,
 * libuv's pool): while one of them runs, the loop waits although its own work is not what holds
 * it. On Linux the main thread's `schedstat` (`/proc/thread-self/schedstat`: ns on a core, ns
 * waiting for one) is read at every turn, so the longest gap also says how long of it the main
 * thread was ready to run and waited for the core. A read costs about 7 µs (a `pread` on a
 * descriptor kept open), once a turn of the 1 ms timer.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { performance, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

/** What `watchLoopGaps` saw, in ms rounded to 0.1. */
export interface LoopGaps {
  /** The longest gap between two turns. */
  readonly longestMs: number;
  /** The longest gap less the GC pauses inside it: the loop held by work, not by the collector. */
  readonly longestWithoutGcMs: number;
  /** Every GC pause in the window, summed. */
  readonly gcMs: number;
  /**
   * Within the gap that gave `longestWithoutGcMs`, how long the main thread was ready to run and
   * waited for a core; null where the scheduler's statistics cannot be read.
   */
  readonly waitedForCoreMs: number | null;
}

/** Gaps shorter than this are not kept: they cannot be the longest of a drain that matters. */
const keptAbove = 1;

const round = (ms: number): number => Math.round(ms * 10) / 10;

/**
 * Reads how long, in ms, the calling thread has waited for a core since it started (the second
 * field of its `schedstat`), or undefined where Linux's scheduler statistics are not there.
 */
function coreWaitReader(): { read: () => number | undefined; close: () => void } {
  const fd = openIfThere('/proc/thread-self/schedstat');
  if (fd === undefined) return { read: () => undefined, close: () => undefined };
  const chunk = Buffer.alloc(64);
  return {
    read: () => {
      const length = readSync(fd, chunk, 0, chunk.length, 0);
      const waitedNs = Number(chunk.toString('latin1', 0, length).split(' ')[1]);
      return Number.isFinite(waitedNs) ? waitedNs / 1e6 : undefined;
    },
    close: () => closeSync(fd),
  };
}

function openIfThere(file: string): number | undefined {
  try {
    return openSync(file, 'r');
  } catch {
    return undefined;
  }
}

/**
 * Starts watching; the function it returns stops and gives what it saw. The watch begins once its
 * own set-up (a file opened, an observer) is done, 0.6–1.1 ms in a fresh server process: call it
 * before taking the time a measured window starts at, so that neither counts it.
 */
export function watchLoopGaps(): () => LoopGaps {
  const coreWait = coreWaitReader();
  const pauses: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => pauses.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  let lastWaited = coreWait.read();
  const started = performance.now();
  let last = started;
  const gaps: { from: number; to: number; waited: number | undefined }[] = [];
  const note = (now: number): void => {
    const waited = coreWait.read();
    if (now - last > keptAbove) {
      gaps.push({
        from: last,
        to: now,
        waited: waited === undefined || lastWaited === undefined ? undefined : waited - lastWaited,
      });
    }
    last = now;
    lastWaited = waited;
  };
  const timer = setInterval(() => note(performance.now()), 1);
  timer.unref();
  return () => {
    clearInterval(timer);
    note(performance.now());
    // Entries are delivered later; take the ones still queued now.
    pauses.push(...observer.takeRecords());
    observer.disconnect();
    const inWindow = pauses.filter((gc) => gc.startTime + gc.duration > started);
    const gcIn = (from: number, to: number): number =>
      inWindow.reduce((sum, gc) => sum + Math.max(0, Math.min(to, gc.startTime + gc.duration) - Math.max(from, gc.startTime)), 0);
    coreWait.close();
    let longest = 0;
    let longestWithoutGc = 0;
    let waitedInIt: number | undefined;
    for (const { from, to, waited } of gaps) {
      longest = Math.max(longest, to - from);
      const withoutGc = to - from - gcIn(from, to);
      if (withoutGc > longestWithoutGc) {
        longestWithoutGc = withoutGc;
        waitedInIt = waited;
      }
    }
    return {
      longestMs: round(longest),
      longestWithoutGcMs: round(longestWithoutGc),
      gcMs: round(gcIn(started, performance.now())),
      waitedForCoreMs: lastWaited === undefined ? null : round(waitedInIt ?? 0),
    };
  };
}
