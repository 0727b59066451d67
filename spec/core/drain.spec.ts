import { expect } from 'chai';
import { merge, NEVER, Observable, Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import {
  CancelReason,
  ConnectionSlices,
  drain,
  DrainActions,
  DrainEvent,
  DrainOptions,
  Finish,
  latest,
  openBooks,
  ProtocolCounts,
  settle,
  ShutdownResult,
  step,
  TrackedConnection,
} from '../../src/core/drain';
import type { ConnectionChange, ConnState, Protocol } from '../../src/core/state';
import { change, countingScheduler, fakeHost } from '../support/fake-host';

/** The result a drain emits at `frame` (its duration), ended by `outcome`. */
const report = (
  frame: number,
  { outcome = 'drained', ...r }: Partial<ShutdownResult> & { outcome?: 'drained' | 'deadline' | 'forced' } = {},
): ShutdownResult => ({
  killed: 0,
  timedOut: outcome === 'deadline',
  forced: outcome === 'forced',
  durationMs: frame,
  closedIdle: 0,
  drained: 0,
  hijacked: 0,
  ...r,
});

/** The times of a result whose last graceful close was a connection closed idle at `ms`. */
const idleClosedBy = (ms: number): Partial<ShutdownResult> => ({ lastIdleCloseMs: ms, lastGracefulCloseMs: ms });

/** The times of a result whose last graceful close was a drained connection closing at `ms`. */
const drainedBy = (ms: number): Partial<ShutdownResult> => ({ lastDrainedCloseMs: ms, lastGracefulCloseMs: ms });

/** The options of a marble drain: timeout 100, no delay, no linger, on `scheduler`, changed by `o`. */
const marbleOptions = (scheduler: TestScheduler, o: Partial<DrainOptions> = {}): DrainOptions => ({
  timeout: 100,
  drainDelay: 0,
  idleLinger: 0,
  waitForHijacked: false,
  scheduler,
  ...o,
});
/** A connection active since frame 0. */
const active = (id: number): TrackedConnection => ({ id, state: 'active', idleSince: 0 });
/** A connection idle since frame 0. */
const idle = (id: number): TrackedConnection => ({ id, state: 'idle', idleSince: 0 });

/** The drain of `open` over `changes$`, carried out by `actions`. */
const drainOf = (
  open: Iterable<TrackedConnection>,
  changes$: Observable<ConnectionChange>,
  options: DrainOptions,
  actions: DrainActions,
  force$: Observable<unknown> = NEVER,
): Observable<ShutdownResult> => drain({ connections: open, changes$, force$, options, actions });

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
  ): { result$: Observable<ShutdownResult>; calls: string[] } {
    const host = fakeHost(changes$, open);
    const calls = host.calls;
    const actions = { ...host, stopAccepting: (closed: () => void) => closed() }; // the lifecycle specs cover it
    return { result$: drainOf(open, host.changes$, options(o), actions, force$), calls };
  }

  const active = (id: number): TrackedConnection => ({ id, state: 'active', idleSince: 0 });
  const idle = (id: number, idleSince = 0): TrackedConnection => ({ id, state: 'idle', idleSince });

  it('ends at once with killed 0 when there is no connection', () => {
    testScheduler.run(({ expectObservable }) => {
      expectObservable(run([], NEVER).result$).toBe('(r|)', { r: report(0) });
    });
  });

  it('ends at frame 30 when the last connection closes at frame 30, and unsubscribes the timer', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const { scheduler, pending } = countingScheduler(testScheduler);
      const changes$ = hot('10ms a 19ms b', { a: change(1, 'closed', 'active'), b: change(2, 'closed', 'active') });
      const host = fakeHost(changes$);
      const result$ = drainOf([active(1), active(2)], changes$, options({ scheduler }), host);
      expectObservable(result$).toBe('30ms (r|)', { r: report(30, { drained: 2, ...drainedBy(30) }) });
      flush();
      expect(testScheduler.now()).to.equal(30);
      expect(pending()).to.equal(0);
    });
  });

  it('destroys three survivors at frame 100 when the timeout wins the race, and kills 3', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const { result$, calls } = run([active(1), active(2), active(3)], NEVER);
      expectObservable(result$).toBe('100ms (r|)', { r: report(100, { outcome: 'deadline', killed: 3 }) });
      flush();
      expect(calls).to.deep.equal(['destroy 1,2,3']);
    });
  });

  it('never times out with timeout 0', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot('10s a', { a: change(1, 'closed', 'active') });
      expectObservable(run([active(1)], changes$, { timeout: 0 }).result$).toBe('10s (r|)', {
        r: report(10000, { drained: 1, ...drainedBy(10000) }),
      });
    });
  });

  it('closes idle connections at once with idleLinger 0, and counts them as closed idle', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const { result$, calls } = run([idle(1)], NEVER);
      expectObservable(result$).toBe('(r|)', { r: report(0, { closedIdle: 1, ...idleClosedBy(0) }) });
      flush();
      expect(calls).to.deep.equal(['closeIdle 1']);
    });
  });

  it('closes a connection that goes idle during the drain once its linger is over', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const changes$ = hot('20ms a', { a: change(1, 'idle', 'active') });
      const { result$, calls } = run([active(1)], changes$, { idleLinger: 30 });
      expectObservable(result$).toBe('50ms (r|)', { r: report(50, { drained: 1, ...drainedBy(50) }) });
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
      expectObservable(result$).toBe('30ms (r|)', { r: report(30, { closedIdle: 2, ...idleClosedBy(30) }) });
      flush();
      expect(seen).to.deep.equal([[], ['closeIdle 1'], ['closeIdle 1', 'closeIdle 2']]);
    });
  });

  it('serves a request that arrives during the linger instead of closing its connection', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const changes$ = hot('5ms a 9ms b', { a: change(1, 'active', 'idle'), b: change(1, 'closed', 'active') });
      const { result$, calls } = run([idle(1)], changes$, { idleLinger: 25 });
      expectObservable(result$).toBe('15ms (r|)', { r: report(15, { drained: 1, ...drainedBy(15) }) });
      flush();
      expect(calls).to.deep.equal([]);
    });
  });

  it('kills a connection whose request head is still arriving at the deadline', () => {
    testScheduler.run(({ expectObservable }) => {
      const changes$: Observable<ConnectionChange> = NEVER;
      const host = fakeHost(changes$, [{ id: 7, state: 'new', idleSince: 0 }]);
      host.busy.add(7);
      const result$ = drainOf(host.open, changes$, options(), host);
      expectObservable(result$).toBe('100ms (r|)', { r: report(100, { outcome: 'deadline', killed: 1 }) });
    });
  });

  it('closes an idle survivor at the deadline as idle, not as killed', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const { result$, calls } = run([idle(1), active(2)], NEVER, { idleLinger: 500 });
      expectObservable(result$).toBe('100ms (r|)', {
        r: report(100, { outcome: 'deadline', killed: 1, closedIdle: 1, ...idleClosedBy(100) }),
      });
      flush();
      expect(calls).to.deep.equal(['closeIdle 1', 'destroy 2']);
    });
  });

  it('ends at once when forced, destroying and counting the survivors', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const force$ = hot('40ms f');
      expectObservable(run([active(1), active(2)], NEVER, {}, force$).result$).toBe('40ms (r|)', {
        r: report(40, { outcome: 'forced', killed: 2 }),
      });
    });
  });

  it('does not wait for hijacked connections by default, but counts those open at the start', () => {
    testScheduler.run(({ expectObservable }) => {
      const result$ = run([{ id: 1, state: 'hijacked', idleSince: 0 }], NEVER).result$;
      expectObservable(result$).toBe('(r|)', { r: report(0, { hijacked: 1 }) });
    });
  });

  it('waits for hijacked connections with waitForHijacked, and kills them at the deadline', () => {
    testScheduler.run(({ expectObservable }) => {
      const result$ = run([{ id: 1, state: 'hijacked', idleSince: 0 }], NEVER, { waitForHijacked: true }).result$;
      expectObservable(result$).toBe('100ms (r|)', { r: report(100, { outcome: 'deadline', killed: 1, hijacked: 1 }) });
    });
  });

  it('does not end as drained before the listener is really closed, and counts what it accepted meanwhile', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const changes$ = hot<ConnectionChange>('3ms a 1ms x 3ms b', {
        a: change(9, 'new'),
        x: change(9, 'active', 'new'),
        b: change(9, 'closed', 'active'),
      });
      const host = fakeHost(changes$);
      const calls: string[] = [];
      const actions = {
        ...host,
        // The listener closes 5 ms after it is asked to.
        stopAccepting: (closed: () => void) => {
          calls.push('stopAccepting');
          testScheduler.schedule(() => {
            calls.push('listener closed');
            closed();
          }, 5);
        },
      };
      expectObservable(drainOf([], host.changes$, options({ idleLinger: 1000 }), actions)).toBe('9ms (r|)', {
        r: report(9, { drained: 1, ...drainedBy(9) }),
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
      expectObservable(drainOf(host.open, host.changes$, options(), actions)).toBe('10ms (r|)', {
        r: report(10, { drained: 1, ...drainedBy(10) }),
      });
      flush();
      expect(host.calls).to.deep.equal(['closeIdle 1', 'stopAccepting']);
    });
  });

  it('waits for a connection the Node side refuses to close (a head arriving), and kills it at the deadline', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const host = fakeHost(NEVER, [{ id: 3, state: 'new', idleSince: 0 }]);
      host.busy.add(3);
      expectObservable(drainOf(host.open, host.changes$, options(), host)).toBe('100ms (r|)', {
        r: report(100, { outcome: 'deadline', killed: 1 }),
      });
      flush();
      expect(host.calls).to.deep.equal(['closeIdle 3', 'stopAccepting', 'destroy 3']);
    });
  });
});

describe('drain: cancelling the work in flight (request signals)', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  const active = (id: number): TrackedConnection => ({ id, state: 'active', idleSince: 0 });

  /**
   * The drain of `open` with `cancel` recorded twice: on `cancels$` (the marble picture, frame by
   * frame) and among the host's calls (its order against `destroy`).
   */
  function run(
    open: TrackedConnection[],
    o: Partial<DrainOptions>,
    {
      changes$ = NEVER,
      force$ = NEVER,
      expire$ = NEVER,
    }: Partial<Record<'changes$' | 'force$' | 'expire$', Observable<never>>> = {},
  ) {
    const { scheduler, pending } = countingScheduler(testScheduler);
    const host = fakeHost(changes$, open);
    const cancels$ = new Subject<CancelReason>();
    const actions: DrainActions = {
      ...host,
      cancel: (reason) => {
        host.calls.push(`cancel ${reason}`);
        cancels$.next(reason);
      },
    };
    const options: DrainOptions = { timeout: 100, drainDelay: 0, idleLinger: 0, waitForHijacked: false, scheduler, ...o };
    const result$ = drain({ connections: open, changes$: host.changes$, force$, expire$, options, actions });
    return { result$, cancels$, calls: host.calls, pending };
  }

  it('cancels cancelAhead before the deadline, and destroys at the deadline', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const { result$, cancels$, calls } = run([active(1)], { timeout: 100, cancelAhead: 30 });
      expectObservable(cancels$).toBe('70ms c', { c: 'deadline' });
      expectObservable(result$).toBe('100ms (r|)', { r: report(100, { outcome: 'deadline', killed: 1 }) });
      flush();
      expect(calls).to.deep.equal(['stopAccepting', 'cancel deadline', 'destroy 1']);
    });
  });

  it('counts the deadline, and so the moment to cancel, from the end of drainDelay', () => {
    testScheduler.run(({ expectObservable }) => {
      const { result$, cancels$ } = run([active(1)], { timeout: 100, cancelAhead: 30, drainDelay: 50 });
      expectObservable(cancels$).toBe('120ms c', { c: 'deadline' });
      expectObservable(result$).toBe('150ms (r|)', { r: report(150, { outcome: 'deadline', killed: 1 }) });
    });
  });

  for (const cancelAhead of [100, 250]) {
    it(`cancels as the drain begins when cancelAhead (${cancelAhead}) is at least the timeout (100)`, () => {
      testScheduler.run(({ expectObservable }) => {
        const { result$, cancels$ } = run([active(1)], { timeout: 100, cancelAhead });
        expectObservable(cancels$).toBe('c', { c: 'deadline' });
        expectObservable(result$).toBe('100ms (r|)', { r: report(100, { outcome: 'deadline', killed: 1 }) });
      });
    });
  }

  it('cancels as the drain begins, at the end of drainDelay, when cancelAhead is at least the timeout', () => {
    testScheduler.run(({ expectObservable }) => {
      const { result$, cancels$ } = run([active(1)], { timeout: 100, cancelAhead: 100, drainDelay: 50 });
      expectObservable(cancels$).toBe('50ms c', { c: 'deadline' });
      expectObservable(result$).toBe('150ms (r|)', { r: report(150, { outcome: 'deadline', killed: 1 }) });
    });
  });

  it('with cancelAhead 0, cancels at the deadline itself, just before destroying', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const { result$, cancels$, calls } = run([active(1), active(2)], { timeout: 100, cancelAhead: 0 });
      expectObservable(cancels$).toBe('100ms c', { c: 'deadline' });
      expectObservable(result$).toBe('100ms (r|)', { r: report(100, { outcome: 'deadline', killed: 2 }) });
      flush();
      expect(calls).to.deep.equal(['stopAccepting', 'cancel deadline', 'destroy 1,2']);
    });
  });

  it('with timeout 0, never cancels for time, whatever cancelAhead says', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot<never>('10s a', { a: change(1, 'closed', 'active') as never });
      const { result$, cancels$ } = run([active(1)], { timeout: 0, cancelAhead: 5000 }, { changes$ });
      expectObservable(cancels$).toBe('');
      expectObservable(result$).toBe('10s (r|)', { r: report(10000, { drained: 1, ...drainedBy(10000) }) });
    });
  });

  it('with timeout 0, cancels on force(), before destroying', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const force$ = hot<never>('40ms f');
      const { result$, cancels$, calls } = run([active(1)], { timeout: 0 }, { force$ });
      expectObservable(cancels$).toBe('40ms c', { c: 'forced' });
      expectObservable(result$).toBe('40ms (r|)', { r: report(40, { outcome: 'forced', killed: 1 }) });
      flush();
      expect(calls).to.deep.equal(['stopAccepting', 'cancel forced', 'destroy 1']);
    });
  });

  it('cancels as forced when force() comes before the moment to cancel, during drainDelay too', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const force$ = hot<never>('20ms f');
      const { result$, cancels$, calls, pending } = run(
        [active(1)],
        { timeout: 100, cancelAhead: 30, drainDelay: 50 },
        { force$ },
      );
      expectObservable(cancels$).toBe('20ms c', { c: 'forced' });
      expectObservable(result$).toBe('20ms (r|)', { r: report(20, { outcome: 'forced', killed: 1 }) });
      flush();
      expect(calls).to.deep.equal(['cancel forced', 'stopAccepting', 'destroy 1']);
      expect(pending(), 'every timer of the drain unsubscribed').to.equal(0);
    });
  });

  it('cancels once: force() after the moment to cancel destroys without cancelling again', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const force$ = hot<never>('80ms f');
      const { result$, cancels$, calls } = run([active(1)], { timeout: 100, cancelAhead: 30 }, { force$ });
      expectObservable(cancels$).toBe('70ms c', { c: 'deadline' });
      expectObservable(result$).toBe('80ms (r|)', { r: report(80, { outcome: 'forced', killed: 1 }) });
      flush();
      expect(calls).to.deep.equal(['stopAccepting', 'cancel deadline', 'destroy 1']);
    });
  });

  it('does not cancel when the drain ends on the last close before the moment to cancel, and leaves no timer', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const changes$ = hot<never>('50ms a', { a: change(1, 'closed', 'active') as never });
      const { result$, cancels$, pending } = run([active(1)], { timeout: 100, cancelAhead: 30 }, { changes$ });
      expectObservable(cancels$).toBe('');
      expectObservable(result$).toBe('50ms (r|)', { r: report(50, { drained: 1, ...drainedBy(50) }) });
      flush();
      expect(pending()).to.equal(0);
    });
  });

  it('ends as the deadline does on expire$: cancels, destroys, and reports timedOut', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const expire$ = hot<never>('30ms e');
      const { result$, cancels$, calls } = run([active(1)], { timeout: 100, cancelAhead: 30 }, { expire$ });
      expectObservable(cancels$).toBe('30ms c', { c: 'deadline' });
      expectObservable(result$).toBe('30ms (r|)', { r: report(30, { outcome: 'deadline', killed: 1 }) });
      flush();
      expect(calls).to.deep.equal(['stopAccepting', 'cancel deadline', 'destroy 1']);
    });
  });

  it('ends as the deadline does on expire$ with timeout 0 as well', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const expire$ = hot<never>('30ms e');
      const { result$, cancels$ } = run([active(1)], { timeout: 0 }, { expire$ });
      expectObservable(cancels$).toBe('30ms c', { c: 'deadline' });
      expectObservable(result$).toBe('30ms (r|)', { r: report(30, { outcome: 'deadline', killed: 1 }) });
    });
  });
});

describe('step (the drain decisions, no effect)', () => {
  const open: TrackedConnection[] = [
    { id: 1, state: 'idle', idleSince: 0 },
    { id: 2, state: 'active', idleSince: 0 },
    { id: 3, state: 'new', idleSince: 5 },
  ];

  it('asks to close every idle connection and then to stop accepting when the drain begins with no linger', () => {
    const books = openBooks(open, { idleLinger: 0, waitForHijacked: false });
    expect(step(books, { type: 'begin' }, 10)).to.deep.equal([{ type: 'closeIdle', ids: [1, 3] }, { type: 'stopAccepting' }]);
    expect(books.lingerAt).to.equal(Infinity);
  });

  it('lets idle connections linger from the drain beginning, and closes them when the linger is over', () => {
    const books = openBooks(open, { idleLinger: 50, waitForHijacked: false });
    expect(step(books, { type: 'begin' }, 10)).to.deep.equal([{ type: 'stopAccepting' }]);
    expect(books.lingerAt).to.equal(60);
    expect(step(books, { type: 'lingerOver', at: 60 }, 60)).to.deep.equal([{ type: 'closeIdle', ids: [1, 3] }]);
    expect(books.lingerAt).to.equal(Infinity);
  });

  it('closes what is due when the linger timer fires, even if the clock reads a millisecond short of it', () => {
    const books = openBooks(open, { idleLinger: 50, waitForHijacked: false });
    step(books, { type: 'begin' }, 10);
    expect(step(books, { type: 'lingerOver', at: 60 }, 59)).to.deep.equal([{ type: 'closeIdle', ids: [1, 3] }]);
  });

  it('cancels the work in flight as the drain begins when cancelAhead reaches back to it, and only once', () => {
    const books = openBooks(open, { idleLinger: 0, waitForHijacked: false, timeout: 100, cancelAhead: 100 });
    expect(step(books, { type: 'begin' }, 0)).to.deep.include({ type: 'cancel', reason: 'deadline' });
    const [cancel] = step(books, { type: 'end', outcome: 'forced' }, 50);
    expect(cancel, 'no second cancel at the end').to.deep.include({ type: 'finish' });
  });

  it('cancels the work in flight when the moment to cancel comes, and not at the drain begin before it', () => {
    const books = openBooks(open, { idleLinger: 50, waitForHijacked: false, timeout: 100, cancelAhead: 30 });
    expect(step(books, { type: 'begin' }, 0)).to.deep.equal([{ type: 'stopAccepting' }]);
    expect(step(books, { type: 'cancelDue' }, 70)).to.deep.equal([{ type: 'cancel', reason: 'deadline' }]);
    expect(step(books, { type: 'cancelDue' }, 71)).to.deep.equal([]);
  });

  it('finishes as drained only once the listener is closed and the books are empty', () => {
    const books = openBooks([{ id: 1, state: 'active', idleSince: 0 }], { idleLinger: 0, waitForHijacked: false });
    step(books, { type: 'begin' }, 0);
    expect(step(books, { type: 'change', change: { id: 1, state: 'closed', previous: 'active' } }, 5)).to.deep.equal([]);
    const [last] = step(books, { type: 'listenerClosed' }, 6);
    expect(last).to.deep.include({ type: 'finish' });
    expect(books.finished).to.equal(true);
    expect(step(books, { type: 'end', outcome: 'deadline' }, 7), 'nothing after the end').to.deep.equal([]);
  });

  it('at the deadline, cancels the work in flight, then hands idle connections to close now and survivors to destroy, and settles the counts', () => {
    const books = openBooks(open, { idleLinger: 1000, waitForHijacked: false });
    step(books, { type: 'begin' }, 0);
    const [cancel, command] = step(books, { type: 'end', outcome: 'deadline' }, 100);
    expect(cancel).to.deep.equal({ type: 'cancel', reason: 'deadline' });
    if (command?.type !== 'finish') throw new Error(`expected a finish, got ${JSON.stringify(command)}`);
    expect(command.finish).to.deep.include({
      survivors: [2],
      idle: [
        { id: 1, worked: false },
        { id: 3, worked: false },
      ],
    });
    expect(settle(command.finish, new Set([3]), 100)).to.deep.equal({
      killed: 2,
      timedOut: true,
      forced: false,
      durationMs: 100,
      closedIdle: 1,
      drained: 0,
      hijacked: 0,
      lastIdleCloseMs: 100,
      lastGracefulCloseMs: 100,
    });
  });
});

describe('drain: the report (counts by protocol, times of the last closes)', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  const options = (o: Partial<DrainOptions> = {}): DrainOptions => marbleOptions(testScheduler, o);
  const closed = (id: number, protocol: Protocol): ConnectionChange => ({ ...change(id, 'closed', 'active'), protocol });
  const counts = (closedIdle: number, drained: number, killed: number): ProtocolCounts => ({ closedIdle, drained, killed });

  it('counts each close under the protocol its closed change names, and splits the result by protocol', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot('10ms a 9ms b 9ms c', { a: closed(1, 'http1'), b: closed(2, 'http2'), c: closed(3, 'http2') });
      const host = fakeHost(changes$, [active(1), active(2), active(3), idle(4)]);
      host.protocols.set(4, 'http2');
      const result$ = drain({
        connections: host.open,
        changes$: host.changes$,
        force$: NEVER,
        options: options(),
        actions: host,
        byProtocol: true,
      });
      expectObservable(result$).toBe('30ms (r|)', {
        r: report(30, {
          closedIdle: 1,
          drained: 3,
          byProtocol: { http1: counts(0, 1, 0), http2: counts(1, 2, 0) },
          lastIdleCloseMs: 0,
          lastDrainedCloseMs: 30,
          lastGracefulCloseMs: 30,
        }),
      });
    });
  });

  it('asks the protocol of what is still open at the end before closing or destroying it, and counts it there', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      // 1 lingers (closed idle at the deadline), 2 is busy (killed), 3 refuses to close (killed).
      const host = fakeHost(NEVER, [idle(1), active(2), { id: 3, state: 'new', idleSince: 0 }]);
      host.busy.add(3);
      host.protocols.set(1, 'http2').set(3, 'http2');
      const result$ = drain({
        connections: host.open,
        changes$: host.changes$,
        force$: NEVER,
        options: options({ idleLinger: 500 }),
        actions: host,
        protocolOf: (id) => host.protocolOf(id),
        byProtocol: true,
      });
      expectObservable(result$).toBe('100ms (r|)', {
        r: report(100, {
          outcome: 'deadline',
          closedIdle: 1,
          killed: 2,
          byProtocol: { http1: counts(0, 0, 1), http2: counts(1, 0, 1) },
          ...idleClosedBy(100),
        }),
      });
      flush();
      expect(host.calls).to.deep.equal([
        'stopAccepting',
        'protocolOf 1',
        'protocolOf 3',
        'protocolOf 2',
        'closeIdle 1,3',
        'destroy 2,3',
      ]);
    });
  });

  it('counts a connection as HTTP/1 when the host names no protocol for it', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot('10ms a', { a: change(1, 'closed', 'active') });
      const host = fakeHost(changes$, [active(1), active(2)]);
      const result$ = drain({
        connections: host.open,
        changes$: host.changes$,
        force$: NEVER,
        options: options(),
        actions: host,
        byProtocol: true,
      });
      expectObservable(result$).toBe('100ms (r|)', {
        r: report(100, {
          outcome: 'deadline',
          drained: 1,
          killed: 1,
          byProtocol: { http1: counts(0, 1, 1), http2: counts(0, 0, 0) },
          ...drainedBy(10),
        }),
      });
    });
  });

  it('leaves byProtocol out unless asked for, whatever protocols the changes name', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot('10ms a', { a: closed(1, 'http2') });
      const host = fakeHost(changes$, [active(1)]);
      const result$ = drain({
        connections: host.open,
        changes$: host.changes$,
        force$: NEVER,
        options: options(),
        actions: host,
      });
      expectObservable(result$).toBe('10ms (r|)', { r: report(10, { drained: 1, ...drainedBy(10) }) });
    });
  });

  it('counts the times from the call that started the shutdown, the pre-drain delay included', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      // Asked for at frame 0, subscribed at frame 5: idle 1 closes as the drain begins (50), 2 drains at 80.
      const changes$ = hot('80ms a', { a: change(2, 'closed', 'active') });
      const host = fakeHost(changes$, [idle(1), active(2)]);
      const result$ = drain({
        connections: host.open,
        changes$: host.changes$,
        force$: NEVER,
        options: options({ drainDelay: 50 }),
        startedAt: 0,
        actions: host,
      });
      expectObservable(result$, '5ms ^').toBe('80ms (r|)', {
        r: report(80, { closedIdle: 1, drained: 1, lastIdleCloseMs: 50, lastDrainedCloseMs: 80, lastGracefulCloseMs: 80 }),
      });
    });
  });

  it('counts a connection that closes during the pre-drain delay at the time it closed', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot('20ms a', { a: change(1, 'closed', 'idle') });
      const host = fakeHost(changes$, [idle(1)]);
      const result$ = drain({
        connections: host.open,
        changes$: host.changes$,
        force$: NEVER,
        options: options({ drainDelay: 50 }),
        actions: host,
      });
      expectObservable(result$).toBe('50ms (r|)', { r: report(50, { closedIdle: 1, ...idleClosedBy(20) }) });
    });
  });

  it('leaves every time out when nothing closed gracefully', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const force$ = hot('40ms f');
      const host = fakeHost(NEVER, [active(1)]);
      const result$ = drain({ connections: host.open, changes$: host.changes$, force$, options: options(), actions: host });
      expectObservable(result$).toBe('40ms (r|)', { r: report(40, { outcome: 'forced', killed: 1 }) });
    });
  });
});

describe('step and settle: the books by protocol', () => {
  const closeOf = (id: number, previous: ConnState, protocol?: Protocol): DrainEvent => ({
    type: 'change',
    change: protocol === undefined ? { id, state: 'closed', previous } : { id, state: 'closed', previous, protocol },
  });

  it('keeps the graceful closes per protocol, and the time of the last of each kind from startedAt', () => {
    const books = openBooks(
      [
        { id: 1, state: 'active', idleSince: 0 },
        { id: 2, state: 'idle', idleSince: 0 },
        { id: 3, state: 'active', idleSince: 0 },
      ],
      { idleLinger: 1000, waitForHijacked: false },
      1000,
    );
    step(books, { type: 'begin' }, 1000);
    step(books, closeOf(1, 'active', 'http2'), 1030);
    step(books, closeOf(2, 'idle'), 1040);
    expect(books.closed).to.deep.equal({ http1: { closedIdle: 1, drained: 0 }, http2: { closedIdle: 0, drained: 1 } });
    expect([books.lastIdleCloseMs, books.lastDrainedCloseMs]).to.deep.equal([40, 30]);
    const [last] = step(books, { type: 'end', outcome: 'forced' }, 1050).filter((command) => command.type === 'finish');
    expect(last).to.deep.include({
      finish: {
        outcome: 'forced',
        idle: [],
        survivors: [3],
        stopAccepting: false,
        closed: { http1: { closedIdle: 1, drained: 0 }, http2: { closedIdle: 0, drained: 1 } },
        lastIdleCloseMs: 40,
        lastDrainedCloseMs: 30,
        hijacked: 0,
      },
    });
  });

  it('settles what the end closes or destroys under the protocols given, HTTP/1 for one missing there', () => {
    const finish: Finish = {
      outcome: 'deadline',
      idle: [
        { id: 1, worked: true },
        { id: 2, worked: false },
        { id: 3, worked: false },
      ],
      survivors: [4, 5],
      stopAccepting: false,
      closed: { http1: { closedIdle: 2, drained: 0 }, http2: { closedIdle: 0, drained: 3 } },
      lastIdleCloseMs: 10,
      lastDrainedCloseMs: 60,
      hijacked: 0,
    };
    const protocols = new Map<number, Protocol>([
      [1, 'http2'],
      [3, 'http2'],
      [4, 'http2'],
    ]);
    expect(settle(finish, new Set([3]), 100, protocols)).to.deep.equal({
      killed: 3,
      timedOut: true,
      forced: false,
      durationMs: 100,
      closedIdle: 3,
      drained: 4,
      hijacked: 0,
      byProtocol: { http1: { closedIdle: 3, drained: 0, killed: 1 }, http2: { closedIdle: 0, drained: 4, killed: 2 } },
      lastIdleCloseMs: 100,
      lastDrainedCloseMs: 100,
      lastGracefulCloseMs: 100,
    });
  });

  it('takes the later of two times, either of which may be missing', () => {
    expect([latest(3, 7), latest(7, 3), latest(undefined, 7), latest(7, undefined), latest(undefined, undefined)]).to.deep.equal([
      7,
      7,
      7,
      7,
      undefined,
    ]);
  });
});

describe('drain: connections handed over in slices, changes in batches', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  const options = (o: Partial<DrainOptions> = {}): DrainOptions => marbleOptions(testScheduler, o);

  /** `slices` handed over one every `everyMs`, the first within the subscription; `rest()` hands over what is left at once. */
  function handOver(slices: TrackedConnection[][], everyMs: number): ConnectionSlices & { readonly restAsked: () => number } {
    const left = [...slices];
    let asked = 0;
    let restNow: (() => void) | undefined;
    const slices$ = new Observable<readonly TrackedConnection[]>((subscriber) => {
      const give = (): void => {
        const slice = left.shift();
        if (slice !== undefined) subscriber.next(slice);
        if (left.length === 0) subscriber.complete();
      };
      restNow = () => {
        while (left.length > 0) give();
        subscriber.complete();
      };
      give();
      const action = testScheduler.schedule(function () {
        give();
        if (left.length > 0) this.schedule(undefined, everyMs);
      }, everyMs);
      return () => action.unsubscribe();
    });
    return {
      slices$,
      rest: () => {
        asked++;
        restNow?.();
      },
      restAsked: () => asked,
    };
  }

  /** A drain whose connections come in `later`'s slices, carried out by a fake host that closes at once. */
  function run(
    later: ConnectionSlices,
    changes$: Observable<ConnectionChange | readonly ConnectionChange[]>,
    o: Partial<DrainOptions> = {},
  ): { result$: Observable<ShutdownResult>; calls: string[] } {
    const host = fakeHost(NEVER);
    const actions = { ...host, stopAccepting: (closed: () => void) => closed() };
    const all$ = merge(changes$, host.changes$);
    return {
      result$: drain({ connections: [], later, changes$: all$, force$: NEVER, options: options(o), actions }),
      calls: host.calls,
    };
  }

  it('closes the idle connections of each slice as the slice comes during the drain', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const changes$ = hot('30ms a', { a: change(2, 'closed', 'active') });
      const { result$, calls } = run(handOver([[idle(1), active(2)], [idle(3)]], 10), changes$);
      expectObservable(result$).toBe('30ms (r|)', {
        r: report(30, { closedIdle: 2, drained: 1, lastIdleCloseMs: 10, lastDrainedCloseMs: 30, lastGracefulCloseMs: 30 }),
      });
      flush();
      expect(calls).to.deep.equal(['closeIdle 1', 'closeIdle 3']);
    });
  });

  it('does not end before the last slice, though every connection handed over so far has closed', () => {
    testScheduler.run(({ expectObservable }) => {
      const { result$ } = run(handOver([[idle(1)], [idle(2)]], 10), NEVER);
      expectObservable(result$).toBe('10ms (r|)', { r: report(10, { closedIdle: 2, ...idleClosedBy(10) }) });
    });
  });

  it('takes in a connection that changes before its slice comes in the state the change left, and only once', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const changes$ = hot('5ms a', { a: change(2, 'idle', 'active') });
      const { result$, calls } = run(handOver([[idle(1)], [active(2)]], 20), changes$);
      expectObservable(result$).toBe('20ms (r|)', {
        r: report(20, { closedIdle: 1, drained: 1, lastIdleCloseMs: 0, lastDrainedCloseMs: 5, lastGracefulCloseMs: 5 }),
      });
      flush();
      expect(calls).to.deep.equal(['closeIdle 1', 'closeIdle 2']);
    });
  });

  it('counts a connection that closes before its slice comes', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot('5ms a', { a: change(2, 'closed', 'idle') });
      const { result$ } = run(handOver([[idle(1)], [idle(2)]], 20), changes$);
      expectObservable(result$).toBe('20ms (r|)', { r: report(20, { closedIdle: 2, ...idleClosedBy(5) }) });
    });
  });

  it('hands over the rest when the deadline comes before the last slice, and kills the survivors among it', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const later = handOver([[idle(1)], [active(2)], [active(3)]], 60);
      const { result$, calls } = run(later, NEVER);
      expectObservable(result$).toBe('100ms (r|)', {
        r: report(100, { outcome: 'deadline', killed: 2, closedIdle: 1, ...idleClosedBy(0) }),
      });
      flush();
      expect(later.restAsked()).to.equal(1);
      expect(calls).to.deep.equal(['closeIdle 1', 'destroy 2,3']);
    });
  });

  it('takes a batch of changes in one step, as it would take them one by one', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot<ConnectionChange | readonly ConnectionChange[]>('10ms a', {
        a: [change(1, 'closed', 'active'), change(2, 'closed', 'active')],
      });
      const { result$ } = run(handOver([[active(1), active(2)]], 10), changes$);
      expectObservable(result$).toBe('10ms (r|)', { r: report(10, { drained: 2, ...drainedBy(10) }) });
    });
  });
});
