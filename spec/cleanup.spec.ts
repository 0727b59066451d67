import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lastValueFrom, Observable, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { CleanupOutcome, CleanupStep, runCleanup } from '../src/cleanup';
import { countingScheduler } from './support/fake-host';
import { withDeadline } from './support/sockets';

describe('runCleanup', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  const outcome = (name: string, status: 'done' | 'timedOut', durationMs: number): CleanupOutcome => ({
    name,
    status,
    durationMs,
  });

  /** A step whose work is `work$`: it ends when `work$` completes. */
  const stepOf = (name: string, timeout: number, work$: Observable<unknown>): CleanupStep => ({
    name,
    timeout,
    run: () => work$,
  });

  it('runs the steps one after another, each once the previous one has ended', () => {
    testScheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const pool$ = cold('--|');
      const logs$ = cold('---|');
      const steps = [stepOf('pool', 100, pool$), stepOf('logs', 100, logs$)];
      expectObservable(runCleanup(steps, { scheduler: testScheduler })).toBe('--a--(b|)', {
        a: outcome('pool', 'done', 2),
        b: outcome('logs', 'done', 3),
      });
      expectSubscriptions(pool$.subscriptions).toBe('^-!');
      expectSubscriptions(logs$.subscriptions).toBe('--^--!');
    });
  });

  it('ends a step that hangs as timedOut at its bound, unsubscribes it, and runs the next step', () => {
    testScheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const hung$ = cold('-');
      const logs$ = cold('--|');
      const steps = [stepOf('pool', 50, hung$), stepOf('logs', 100, logs$)];
      expectObservable(runCleanup(steps, { scheduler: testScheduler })).toBe('50ms a 1ms (b|)', {
        a: outcome('pool', 'timedOut', 50),
        b: outcome('logs', 'done', 2),
      });
      expectSubscriptions(hung$.subscriptions).toBe('^ 49ms !');
      expectSubscriptions(logs$.subscriptions).toBe('50ms ^-!');
    });
  });

  it('ends a step whose Promise never settles as timedOut at its bound', () => {
    testScheduler.run(({ expectObservable }) => {
      const steps: CleanupStep[] = [
        { name: 'pool', timeout: 30, run: () => new Promise<never>(() => undefined) },
        { name: 'logs', timeout: 30, run: () => 'flushed' },
      ];
      expectObservable(runCleanup(steps, { scheduler: testScheduler })).toBe('30ms (ab|)', {
        a: outcome('pool', 'timedOut', 30),
        b: outcome('logs', 'done', 0),
      });
    });
  });

  it('aborts the signal of a step that times out at its bound, with a TimeoutError, and not that of a step that ends in time', () => {
    const signals: AbortSignal[] = [];
    const abortedAt: number[] = [];
    testScheduler.run(({ cold, expectObservable }) => {
      const step = (name: string, work$: Observable<never>): CleanupStep => ({
        name,
        timeout: 40,
        run: (signal) => {
          signals.push(signal);
          signal.addEventListener('abort', () => abortedAt.push(testScheduler.now()));
          return work$;
        },
      });
      const steps = [step('pool', cold('-')), step('logs', cold('---|'))];
      expectObservable(runCleanup(steps, { scheduler: testScheduler })).toBe('40ms a 2ms (b|)', {
        a: outcome('pool', 'timedOut', 40),
        b: outcome('logs', 'done', 3),
      });
    });
    expect(abortedAt).to.deep.equal([40]);
    const [pool, logs] = signals;
    expect(pool?.reason).to.be.instanceOf(DOMException).and.include({ name: 'TimeoutError' });
    expect((pool?.reason as Error).message).to.include('"pool" took longer than 40 ms');
    expect(logs?.aborted).to.equal(false);
  });

  it('reports a step that throws or errors as failed, with its error, and runs the next step', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const thrown = new Error('pool already ended');
      const errored = new Error('log sink gone');
      const steps: CleanupStep[] = [
        {
          name: 'pool',
          timeout: 10,
          run: () => {
            throw thrown;
          },
        },
        stepOf('logs', 10, cold('--#', undefined, errored)),
        stepOf('metrics', 10, cold('-|')),
      ];
      expectObservable(runCleanup(steps, { scheduler: testScheduler })).toBe('a-b(c|)', {
        a: { name: 'pool', status: 'failed', durationMs: 0, error: thrown },
        b: { name: 'logs', status: 'failed', durationMs: 2, error: errored },
        c: outcome('metrics', 'done', 1),
      });
    });
  });

  it('cancels the timer of a step that ends before its bound', () => {
    const { scheduler, pending } = countingScheduler(testScheduler);
    const pendingAt: number[] = [];
    testScheduler.run(({ cold, expectObservable }) => {
      testScheduler.schedule(() => pendingAt.push(pending()), 1);
      testScheduler.schedule(() => pendingAt.push(pending()), 3);
      expectObservable(runCleanup([stepOf('pool', 1000, cold('--|'))], { scheduler })).toBe('--(a|)', {
        a: outcome('pool', 'done', 2),
      });
    });
    expect(pendingAt).to.deep.equal([1, 0]);
  });

  it('completes at once with no outcome when there is no step', () => {
    testScheduler.run(({ expectObservable }) => {
      expectObservable(runCleanup([], { scheduler: testScheduler })).toBe('|');
    });
  });

  it('aborts the running step and runs no further step when it is unsubscribed', () => {
    const signals: AbortSignal[] = [];
    let laterRuns = 0;
    testScheduler.run(({ cold, expectObservable }) => {
      const steps: CleanupStep[] = [
        {
          name: 'pool',
          timeout: 100,
          run: (signal) => {
            signals.push(signal);
            return cold('-');
          },
        },
        { name: 'logs', timeout: 100, run: () => laterRuns++ },
      ];
      expectObservable(runCleanup(steps, { scheduler: testScheduler }), '^--!').toBe('');
    });
    expect(signals[0]?.aborted).to.equal(true);
    expect((signals[0]?.reason as Error).name).to.equal('AbortError');
    expect(laterRuns).to.equal(0);
  });

  it('on the real clock: a resolving Promise is done, a rejecting one failed, a hanging one timedOut', async () => {
    const rejection = new Error('flush failed');
    const steps: CleanupStep[] = [
      { name: 'pool', timeout: 1000, run: () => sleep(5) },
      { name: 'logs', timeout: 1000, run: () => Promise.reject(rejection) },
      // Rejects once its signal aborts, after it has timed out: nothing is left unhandled.
      { name: 'queue', timeout: 20, run: (signal) => sleep(60_000, undefined, { signal }) },
    ];
    const outcomes = await withDeadline(
      lastValueFrom(runCleanup(steps).pipe(toArray()), { defaultValue: [] }),
      2000,
      'the cleanup to complete',
    );
    expect(outcomes.map(({ name, status }) => `${name} ${status}`)).to.deep.equal(['pool done', 'logs failed', 'queue timedOut']);
    expect(outcomes[1]).to.include({ error: rejection });
    expect(outcomes[2]?.durationMs).to.be.at.least(19);
  });

  it('throws a TypeError at the call for steps that are not { name, timeout, run }, or an unknown option', () => {
    const run = (): void => undefined;
    const bad: unknown[] = [
      undefined,
      [null],
      [{ name: '', timeout: 10, run }],
      [{ name: 'pool', timeout: 0, run }],
      [{ name: 'pool', timeout: -1, run }],
      [{ name: 'pool', timeout: Infinity, run }],
      [{ name: 'pool', timeout: '10', run }],
      [{ name: 'pool', timeout: 10 }],
    ];
    for (const steps of bad) {
      expect(() => runCleanup(steps as CleanupStep[]), JSON.stringify(steps)).to.throw(TypeError, /rx-graceful: runCleanup/);
    }
    expect(() => runCleanup([], { timout: 10 } as never)).to.throw(TypeError, /unknown option "timout"/);
    expect(() => runCleanup([], { scheduler: {} as never })).to.throw(TypeError, /SchedulerLike/);
  });
});

describe('a child process that serves, shuts down and runs a cleanup whose first step hangs', function () {
  this.timeout(30000);

  it('reports the hung step as timedOut and the next one as done, then exits by itself with code 0', async () => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register', join(__dirname, 'fixtures', 'cleanup-main.ts')], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    try {
      const [code] = (await withDeadline(once(child, 'exit'), 15000, 'the child to exit by itself')) as [number | null];
      const lines = stdout.trim().split('\n');
      expect(lines[0]).to.match(/^listening \d+$/);
      const outcomes = lines
        .filter((line) => line.startsWith('outcome '))
        .map((line) => JSON.parse(line.slice(8)) as CleanupOutcome);
      expect(outcomes.map(({ name, status }) => `${name} ${status}`)).to.deep.equal(['database pool timedOut', 'logs done']);
      expect(outcomes[0]?.durationMs).to.be.within(290, 5000);
      expect(lines.at(-1)).to.equal('left timers=0');
      expect(code).to.equal(0);
    } finally {
      child.kill();
    }
  });
});
