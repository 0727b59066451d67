/**
 * How long the event loop of this process is held at once: a 1 ms timer notes the longest time
 * between two of its turns, and the stretch from its last turn to the call that reads it (the
 * last closes of a drain and its result may come in one long turn, which no later timer would
 * see). On a loaded machine this includes the time the process waited for a core.
 */
import { performance } from 'node:perf_hooks';

/** Starts watching; the function it returns stops and gives the longest gap (ms), rounded to 0.1 ms. */
export function watchLoopGaps(): () => number {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  timer.unref();
  return () => {
    clearInterval(timer);
    return Math.round(Math.max(longest, performance.now() - last) * 10) / 10;
  };
}
