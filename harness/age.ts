/**
 * Ages a process as serving for a while does: V8 drops the compiled code of a function that has
 * not run through a few of the major collections it starts itself (forced `gc()` calls age
 * nothing). Used by the bench's `--aged` servers (harness/server.ts) and by the spec that shows
 * rx-graceful keeps its shutdown path compiled (spec/node/keep-warm.spec.ts and its fixture).
 */
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';

/**
 * Allocates, a slice a turn, garbage kept long enough to reach the old generation (garbage that
 * dies young brings no major collection: a tenth of this saw none in 60 s), until `majors` major
 * collections that V8 started itself have come, or `limitMs` has passed. Resolves with the number
 * seen (it may be short of `majors` at the limit) and the ms it took; the garbage is let go.
 */
export function ageByMajorCollections(majors: number, limitMs: number): Promise<{ majors: number; ms: number }> {
  return new Promise((resolve) => {
    let seen = 0;
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const detail = (entry as { detail?: { kind?: number; flags?: number } }).detail;
        const forced = ((detail?.flags ?? 0) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0;
        if (detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR && !forced) seen++;
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    const startedAt = performance.now();
    let kept: { i: number; s: string }[] = [];
    const step = (): void => {
      for (let i = 0; i < 100_000; i++) kept.push({ i, s: `x${i}` });
      if (kept.length > 1_500_000) kept = [];
      if (seen < majors && performance.now() - startedAt < limitMs) {
        setImmediate(step);
        return;
      }
      observer.disconnect();
      kept = [];
      resolve({ majors: seen, ms: performance.now() - startedAt });
    };
    step();
  });
}
