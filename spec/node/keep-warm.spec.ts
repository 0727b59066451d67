import { expect } from 'chai';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TestScheduler } from 'rxjs/testing';
import { ageByMajorCollections } from '../../harness/age';
import { majorCollections$, warmUpEvery } from '../../src/node/keep-warm';
import { Programs } from '../support/program';
import { until } from '../support/sockets';

describe('warmUpEvery', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  it('runs the warm-up after every third collection, and emits nothing', () => {
    const calls: number[] = [];
    testScheduler.run(({ cold, expectObservable }) => {
      const collections$ = cold('a-b-c-d-e-f-g-|');
      expectObservable(warmUpEvery(collections$, 3, () => calls.push(testScheduler.now()))).toBe('--------------|');
    });
    expect(calls).to.deep.equal([4, 10]);
  });

  it('stops, without an error, at the first warm-up that throws', () => {
    const calls: number[] = [];
    testScheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const collections$ = cold('a-b-c-d-e-f-|');
      const warmUp = (): void => {
        calls.push(testScheduler.now());
        throw new Error('a warm-up that fails');
      };
      expectObservable(warmUpEvery(collections$, 3, warmUp)).toBe('----|');
      expectSubscriptions(collections$.subscriptions).toBe('^---!');
    });
    expect(calls).to.deep.equal([4]);
  });
});

describe('majorCollections$', () => {
  // A collection on demand: Node's `gc`, exposed for this process from here on.
  setFlagsFromString('--expose-gc');
  // (`gc()` is a full collection; `{ type: 'major' }` gave a minor one on Node 20.20.)
  const gc = runInNewContext('gc') as (options?: { type: 'minor' }) => void;

  it('emits once per major collection V8 starts itself, none for a minor or a forced one, and nothing once unsubscribed', async function () {
    this.timeout(60000);
    // Every collection Node reports, to compare with.
    const entries: { kind: number; forced: boolean }[] = [];
    const all = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const detail = (entry as { detail?: { kind: number; flags: number } }).detail;
        entries.push({
          kind: detail?.kind ?? -1,
          forced: ((detail?.flags ?? 0) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0,
        });
      }
    });
    all.observe({ entryTypes: ['gc'] });
    let emitted = 0;
    const subscription = majorCollections$.subscribe(() => emitted++);
    try {
      const majors = (forced: boolean): number =>
        entries.filter((entry) => entry.kind === constants.NODE_PERFORMANCE_GC_MAJOR && entry.forced === forced).length;
      gc({ type: 'minor' });
      gc();
      await until(() => majors(true) > 0, 2000, 'the forced collection reported');
      // Both observers are called in the same turn: by the next one, each has seen the same entries.
      await new Promise((resolve) => setImmediate(resolve));
      expect(entries.some((entry) => entry.kind === constants.NODE_PERFORMANCE_GC_MINOR)).to.equal(true);
      expect(emitted).to.equal(majors(false));
      await ageByMajorCollections(2, 20_000);
      await new Promise((resolve) => setImmediate(resolve));
      expect(majors(false), 'major collections V8 started itself').to.be.at.least(2);
      expect(emitted).to.equal(majors(false));
      subscription.unsubscribe();
      const before = majors(false);
      await ageByMajorCollections(1, 20_000);
      await new Promise((resolve) => setImmediate(resolve));
      expect(majors(false)).to.be.greaterThan(before);
      expect(emitted).to.equal(before);
    } finally {
      subscription.unsubscribe();
      all.disconnect();
    }
  });
});

describe('shutdownPathKeptWarm$ (through GracefulServer)', function () {
  this.timeout(90000);
  const programs = new Programs();

  it("keeps the shutdown path's compiled code while the server serves, which V8 drops otherwise; and the process exits by itself after the shutdown", async function () {
    // V8 keeps every function's bytecode while it collects coverage (c8, `npm run coverage`): there
    // is nothing to see there. `npm test` runs this without it.
    if (process.env['NODE_V8_COVERAGE'] !== undefined) {
      console.log('      (skipped: V8 drops no bytecode while it collects coverage)');
      this.skip();
    }
    const program = programs.start('spec/fixtures/keep-warm.ts');
    // [Lifecycle#shutdown, HttpAdapter#closeIdleNow] is each dropped (lazy)?
    expect(await program.line('constructed ', 20000)).to.equal('constructed [false,false]');
    expect(await program.line('aged ', 35000)).to.equal('aged 8');
    // Not serving: nothing keeps them, and eight major collections drop them. This shows that the
    // test sees what it looks for.
    expect(await program.line('stopped ', 1000)).to.equal('stopped [true,true]');
    await program.count('aged ', 2, 35000);
    expect(program.lines.filter((line) => line.startsWith('aged '))).to.deep.equal(['aged 8', 'aged 8']);
    expect(await program.line('serving ', 1000)).to.equal('serving [false,false]');
    expect(await program.line('done ', 5000)).to.equal('done killed 0');
    expect(await program.exit(5000)).to.deep.equal({ code: 0, signal: null });
  });
});
