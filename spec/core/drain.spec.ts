import { expect } from 'chai';
import { NEVER, Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { drain, DrainOptions, DrainReport, TrackedConnection } from '../../src/core/drain';
import type { ConnectionChange } from '../../src/core/state';
import { change, countingScheduler, fakeHost } from '../support/fake-host';

const report = (r: Partial<DrainReport> = {}): DrainReport => ({
  outcome: 'drained',
  killed: 0,
  closedIdle: 0,
  drained: 0,
  hijacked: 0,
  ...r,
});

describe('drain', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  function options(o: Partial<DrainOptions> = {}): DrainOptions {
    return { timeout: 100, drainDelay: 0, idleLinger: 0, waitForHijacked: false, scheduler: testScheduler, ...o };
  }

  function run(
    open: TrackedConnection[],
    changes$: Observable<ConnectionChange>,
    o: Partial<DrainOptions> = {},
    force$: Observable<unknown> = NEVER,
  ): { result$: Observable<DrainReport>; calls: string[] } {
    const host = fakeHost(changes$, open);
    const calls = host.calls;
    const actions = { ...host, stopAccepting: (closed: () => void) => closed() }; // the lifecycle specs cover it
    return { result$: drain(open, host.changes$, force$, options(o), actions), calls };
  }

  const active = (id: number): TrackedConnection => ({ id, state: 'active', idleSince: 0 });
  const idle = (id: number, idleSince = 0): TrackedConnection => ({ id, state: 'idle', idleSince });

  it('ends at once with killed 0 when there is no connection', () => {
    testScheduler.run(({ expectObservable }) => {
      expectObservable(run([], NEVER).result$).toBe('(r|)', { r: report() });
    });
  });

  it('ends at frame 30 when the last connection closes at frame 30, and unsubscribes the timer', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const { scheduler, pending } = countingScheduler(testScheduler);
      const changes$ = hot('10ms a 19ms b', { a: change(1, 'closed', 'active'), b: change(2, 'closed', 'active') });
      const host = fakeHost(changes$);
      const result$ = drain([active(1), active(2)], changes$, NEVER, options({ scheduler }), host);
      expectObservable(result$).toBe('30ms (r|)', { r: report({ drained: 2 }) });
      flush();
      expect(testScheduler.now()).to.equal(30);
      expect(pending()).to.equal(0);
    });
  });

  it('destroys three survivors at frame 100 when the timeout wins the race, and kills 3', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const { result$, calls } = run([active(1), active(2), active(3)], NEVER);
      expectObservable(result$).toBe('100ms (r|)', { r: report({ outcome: 'deadline', killed: 3 }) });
      flush();
      expect(calls).to.deep.equal(['destroy 1,2,3']);
    });
  });

  it('never times out with timeout 0', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot('10s a', { a: change(1, 'closed', 'active') });
      expectObservable(run([active(1)], changes$, { timeout: 0 }).result$).toBe('10s (r|)', { r: report({ drained: 1 }) });
    });
  });

  it('closes idle connections at once with idleLinger 0, and counts them as closed idle', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const { result$, calls } = run([idle(1)], NEVER);
      expectObservable(result$).toBe('(r|)', { r: report({ closedIdle: 1 }) });
      flush();
      expect(calls).to.deep.equal(['closeIdle 1']);
    });
  });

  it('closes a connection that goes idle during the drain once its linger is over', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const changes$ = hot('20ms a', { a: change(1, 'idle', 'active') });
      const { result$, calls } = run([active(1)], changes$, { idleLinger: 30 });
      expectObservable(result$).toBe('50ms (r|)', { r: report({ drained: 1 }) });
      flush();
      expect(calls).to.deep.equal(['closeIdle 1']);
    });
  });

  it("lets every idle connection linger from the drain's beginning, or from when it became idle if later", () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const start = testScheduler.now();
      const { result$, calls } = run([idle(1, start - 100), idle(2, start + 5)], NEVER, { idleLinger: 25 });
      const seen: string[][] = [];
      testScheduler.schedule(() => seen.push([...calls]), 24);
      testScheduler.schedule(() => seen.push([...calls]), 29);
      testScheduler.schedule(() => seen.push([...calls]), 31);
      expectObservable(result$).toBe('30ms (r|)', { r: report({ closedIdle: 2 }) });
      flush();
      expect(seen).to.deep.equal([[], ['closeIdle 1'], ['closeIdle 1', 'closeIdle 2']]);
    });
  });

  it('serves a request that arrives during the linger instead of closing its connection', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const changes$ = hot('5ms a 9ms b', { a: change(1, 'active', 'idle'), b: change(1, 'closed', 'active') });
      const { result$, calls } = run([idle(1)], changes$, { idleLinger: 25 });
      expectObservable(result$).toBe('15ms (r|)', { r: report({ drained: 1 }) });
      flush();
      expect(calls).to.deep.equal([]);
    });
  });

  it('kills a connection whose request head is still arriving at the deadline', () => {
    testScheduler.run(({ expectObservable }) => {
      const changes$: Observable<ConnectionChange> = NEVER;
      const host = fakeHost(changes$, [{ id: 7, state: 'new', idleSince: 0 }]);
      host.busy.add(7);
      const result$ = drain(host.open, changes$, NEVER, options(), host);
      expectObservable(result$).toBe('100ms (r|)', { r: report({ outcome: 'deadline', killed: 1 }) });
    });
  });

  it('closes an idle survivor at the deadline as idle, not as killed', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const { result$, calls } = run([idle(1), active(2)], NEVER, { idleLinger: 500 });
      expectObservable(result$).toBe('100ms (r|)', { r: report({ outcome: 'deadline', killed: 1, closedIdle: 1 }) });
      flush();
      expect(calls).to.deep.equal(['closeIdle 1', 'destroy 2']);
    });
  });

  it('ends at once when forced, destroying and counting the survivors', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const force$ = hot('40ms f');
      expectObservable(run([active(1), active(2)], NEVER, {}, force$).result$).toBe('40ms (r|)', {
        r: report({ outcome: 'forced', killed: 2 }),
      });
    });
  });

  it('does not wait for hijacked connections by default, but counts those open at the start', () => {
    testScheduler.run(({ expectObservable }) => {
      const result$ = run([{ id: 1, state: 'hijacked', idleSince: 0 }], NEVER).result$;
      expectObservable(result$).toBe('(r|)', { r: report({ hijacked: 1 }) });
    });
  });

  it('waits for hijacked connections with waitForHijacked, and kills them at the deadline', () => {
    testScheduler.run(({ expectObservable }) => {
      const result$ = run([{ id: 1, state: 'hijacked', idleSince: 0 }], NEVER, { waitForHijacked: true }).result$;
      expectObservable(result$).toBe('100ms (r|)', { r: report({ outcome: 'deadline', killed: 1, hijacked: 1 }) });
    });
  });

  it('does not end as drained before the listener is really closed, and counts what it accepted meanwhile', () => {
    testScheduler.run(({ hot, cold, expectObservable, flush }) => {
      const changes$ = hot<ConnectionChange>('3ms a 1ms x 3ms b', {
        a: change(9, 'new'),
        x: change(9, 'active', 'new'),
        b: change(9, 'closed', 'active'),
      });
      const host = fakeHost(changes$);
      const listenerClosed$ = cold('5ms c');
      const calls: string[] = [];
      const actions = {
        ...host,
        stopAccepting: (closed: () => void) => {
          calls.push('stopAccepting');
          listenerClosed$.subscribe(() => {
            calls.push('listener closed');
            closed();
          });
        },
      };
      expectObservable(drain([], host.changes$, NEVER, options({ idleLinger: 1000 }), actions)).toBe('9ms (r|)', {
        r: report({ drained: 1 }),
      });
      flush();
      expect(calls).to.deep.equal(['stopAccepting', 'listener closed']);
    });
  });

  it('serves a connection asked to close that turns out to have a request (it reports active), and counts it drained', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      // The Node side answers closeIdle later: here a request was read before it could close.
      const changes$ = hot<ConnectionChange>('2ms a 7ms b', { a: change(1, 'active', 'idle'), b: change(1, 'closed', 'active') });
      const host = fakeHost(changes$, [idle(1)]);
      const actions = { ...host, closeIdle: (ids: readonly number[]) => host.calls.push(`closeIdle ${ids.join(',')}`) };
      expectObservable(drain(host.open, host.changes$, NEVER, options(), actions)).toBe('10ms (r|)', { r: report({ drained: 1 }) });
      flush();
      expect(host.calls).to.deep.equal(['closeIdle 1', 'stopAccepting']);
    });
  });

  it('waits for a connection the Node side refuses to close (a head arriving), and kills it at the deadline', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const host = fakeHost(NEVER, [{ id: 3, state: 'new', idleSince: 0 }]);
      host.busy.add(3);
      expectObservable(drain(host.open, host.changes$, NEVER, options(), host)).toBe('100ms (r|)', {
        r: report({ outcome: 'deadline', killed: 1 }),
      });
      flush();
      expect(host.calls).to.deep.equal(['closeIdle 3', 'stopAccepting', 'destroy 3']);
    });
  });
});
