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
 */
import { performance, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

/** What `watchLoopGaps` saw, in ms rounded to 0.1. */
export interface LoopGaps {
  /** The longest gap between two turns. */
  readonly longestMs: number;
  /** The longest gap less the GC pauses inside it: the loop held by work, not by the collector. */
  readonly longestWithoutGcMs: number;
  /** Every GC pause in the window, summed. */
  readonly gcMs: number;
}

/** Gaps shorter than this are not kept: they cannot be the longest of a drain that matters. */
const keptAbove = 1;

const round = (ms: number): number => Math.round(ms * 10) / 10;

/** Starts watching; the function it returns stops and gives what it saw. */
export function watchLoopGaps(): () => LoopGaps {
  const started = performance.now();
  let last = started;
  const gaps: { from: number; to: number }[] = [];
  const note = (now: number): void => {
    if (now - last > keptAbove) gaps.push({ from: last, to: now });
    last = now;
  };
  const timer = setInterval(() => note(performance.now()), 1);
  timer.unref();
  const pauses: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => pauses.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    clearInterval(timer);
    note(performance.now());
    // Entries are delivered later; take the ones still queued now.
    pauses.push(...observer.takeRecords());
    observer.disconnect();
    const inWindow = pauses.filter((gc) => gc.startTime + gc.duration > started);
    const gcIn = (from: number, to: number): number =>
      inWindow.reduce((sum, gc) => sum + Math.max(0, Math.min(to, gc.startTime + gc.duration) - Math.max(from, gc.startTime)), 0);
    let longest = 0;
    let longestWithoutGc = 0;
    for (const { from, to } of gaps) {
      longest = Math.max(longest, to - from);
      longestWithoutGc = Math.max(longestWithoutGc, to - from - gcIn(from, to));
    }
    return {
      longestMs: round(longest),
      longestWithoutGcMs: round(longestWithoutGc),
      gcMs: round(gcIn(started, performance.now())),
    };
  };
}
