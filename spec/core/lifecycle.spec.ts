import { expect } from 'chai';
import { distinctUntilChanged, map, NEVER } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { DrainOptions, Lifecycle } from '../../src/core/lifecycle';
import type { ConnectionChange, ServerState } from '../../src/core/state';
import { change, fakeHost, FakeHost, result } from '../support/fake-host';

describe('Lifecycle', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  function lifecycle(host: FakeHost, o: Partial<DrainOptions> = {}): Lifecycle {
    return new Lifecycle(host, {
      timeout: 100,
      drainDelay: 0,
      idleLinger: 0,
      waitForHijacked: false,
      scheduler: testScheduler,
      ...o,
    });
  }

  const at = (frame: number, work: () => void): void => {
    testScheduler.schedule(work, frame);
  };

  it('finishes a shutdown with no connection at once, with killed 0', () => {
    testScheduler.run(({ expectObservable }) => {
      const cycle = lifecycle(fakeHost(NEVER));
      at(10, () => {
        cycle.serving('pipe');
        cycle.shutdown();
      });
      expectObservable(cycle.done$).toBe('10ms r', { r: result() });
    });
  });

  it('starts a shutdown only once per cycle: shutdownOK is true exactly once', () => {
    testScheduler.run(({ flush }) => {
      const host = fakeHost(NEVER, [{ id: 1, state: 'active', idleSince: 0 }]);
      const cycle = lifecycle(host);
      const answers: boolean[] = [];
      cycle.serving('pipe');
      at(5, () => answers.push(cycle.shutdown(), cycle.shutdown()));
      at(50, () => answers.push(cycle.shutdown()));
      flush();
      expect(answers).to.deep.equal([true, false, false]);
      expect(host.calls.filter((c) => c === 'beginShutdown')).to.have.length(1);
    });
  });

  it('says no to a shutdown while stopped', () => {
    const cycle = lifecycle(fakeHost(NEVER));
    expect(cycle.shutdown()).to.equal(false);
    expect(cycle.phase).to.equal('stopped');
  });

  it('emits the state$ sequence of a whole cycle: stopped, serving, connections, draining, stopped', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot<ConnectionChange>('10ms a 9ms b 9ms c 19ms d', {
        a: change(1, 'new'),
        b: change(1, 'active', 'new'),
        c: change(2, 'new'),
        d: change(1, 'closed', 'active'),
      });
      const host = fakeHost(changes$);
      const cycle = lifecycle(host, { idleLinger: 5 });
      host.open = [];
      at(5, () => cycle.serving('pipe'));
      at(40, () => {
        host.open = [
          { id: 1, state: 'active', idleSince: 0 },
          { id: 2, state: 'new', idleSince: 30 },
        ];
        cycle.shutdown();
      });
      // at 40 the drain begins: connection 2 (new since 30) lingers 5 ms from then; 1 closes at 50
      const s = (phase: ServerState['phase'], open: number, active: number, accepting = phase === 'serving'): ServerState => ({
        phase,
        accepting,
        open,
        active,
        idle: open - active,
        killed: 0,
        address: 'pipe',
      });
      expectObservable(cycle.state$).toBe('s 4ms v 4ms a 9ms b 9ms c 9ms d 4ms e 4ms (fg)', {
        s: { phase: 'stopped', accepting: false, open: 0, active: 0, idle: 0, killed: 0 },
        v: s('serving', 0, 0),
        a: s('serving', 1, 0),
        b: s('serving', 1, 1),
        c: s('serving', 2, 1),
        d: s('draining', 2, 1),
        e: s('draining', 1, 1),
        f: s('draining', 0, 0),
        g: s('stopped', 0, 0),
      });
    });
  });

  it('ends the drain on the last close, then stops, then reports on done$', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot<ConnectionChange>('30ms a', { a: change(1, 'closed', 'active') });
      const host = fakeHost(changes$, [{ id: 1, state: 'active', idleSince: 0 }]);
      const cycle = lifecycle(host);
      cycle.serving('pipe');
      at(10, () => cycle.shutdown());
      expectObservable(cycle.done$).toBe('30ms r', {
        r: result({ drained: 1, durationMs: 20, lastDrainedCloseMs: 20, lastGracefulCloseMs: 20 }),
      });
      expectObservable(cycle.done$.pipe(map(() => cycle.phase))).toBe('30ms p', { p: 'stopped' });
    });
  });

  it('starts a new cycle from clean counts after a finished one', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const host = fakeHost(NEVER, [{ id: 1, state: 'active', idleSince: 0 }]);
      const cycle = lifecycle(host);
      cycle.serving('pipe');
      at(0, () => cycle.shutdown());
      flush();
      expect(cycle.lastResult).to.include({ killed: 1, timedOut: true });
      host.open = [];
      cycle.serving('pipe');
      const states: ServerState[] = [];
      cycle.state$.subscribe((s) => states.push(s)).unsubscribe(); // state$ replays at once
      expect(states).to.deep.equal([
        { phase: 'serving', accepting: true, open: 0, active: 0, idle: 0, killed: 0, address: 'pipe' },
      ]);
      expectObservable(NEVER).toBe('');
    });
  });

  it('shows the killed count of the finished shutdown on state$', () => {
    testScheduler.run(({ expectObservable }) => {
      const host = fakeHost(NEVER, [
        { id: 1, state: 'active', idleSince: 0 },
        { id: 2, state: 'active', idleSince: 0 },
        { id: 3, state: 'active', idleSince: 0 },
      ]);
      const cycle = lifecycle(host);
      cycle.serving('pipe');
      at(0, () => cycle.shutdown());
      const killed$ = cycle.state$.pipe(
        map((s) => s.killed),
        distinctUntilChanged(),
      );
      expectObservable(killed$).toBe('a 99ms b', { a: 0, b: 3 });
    });
  });

  it('keeps accepting during drainDelay, and counts timeout from the end of the delay', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const host = fakeHost(NEVER, [{ id: 1, state: 'active', idleSince: 0 }]);
      const cycle = lifecycle(host, { drainDelay: 50 });
      cycle.serving('pipe');
      // Subscribed before the shutdown at frame 0, so that it sees the serving state first.
      expectObservable(cycle.lifecycle$.pipe(map((l) => `${l.phase} ${l.accepting}`))).toBe('(ab) 46ms c 99ms d', {
        a: 'serving true',
        b: 'draining true',
        c: 'draining false',
        d: 'stopped false',
      });
      at(0, () => cycle.shutdown());
      expectObservable(cycle.done$).toBe('150ms r', { r: result({ killed: 1, timedOut: true, durationMs: 150 }) });
      flush();
      expect(host.calls).to.deep.equal(['beginShutdown', 'stopAccepting', 'destroy 1', 'endShutdown']);
    });
  });

  it('ends the delay and the drain at once on force()', () => {
    testScheduler.run(({ expectObservable }) => {
      const host = fakeHost(NEVER, [{ id: 1, state: 'active', idleSince: 0 }]);
      const cycle = lifecycle(host, { drainDelay: 50 });
      cycle.serving('pipe');
      at(0, () => cycle.shutdown());
      at(20, () => cycle.force());
      expectObservable(cycle.done$).toBe('20ms r', { r: result({ killed: 1, forced: true, durationMs: 20 }) });
    });
  });

  it('expire() ends the shutdown as its deadline would: cancels, then destroys, and reports timedOut', () => {
    testScheduler.run(({ expectObservable, flush }) => {
      const host = fakeHost(NEVER, [{ id: 1, state: 'active', idleSince: 0 }]);
      const cycle = lifecycle(Object.assign(host, { cancel: (reason: string) => host.calls.push(`cancel ${reason}`) }), {
        timeout: 1000,
        cancelAhead: 100,
      });
      cycle.serving('pipe');
      at(0, () => cycle.shutdown());
      at(30, () => cycle.expire());
      expectObservable(cycle.done$).toBe('30ms r', { r: result({ killed: 1, timedOut: true, durationMs: 30 }) });
      flush();
      expect(host.calls).to.deep.equal(['beginShutdown', 'stopAccepting', 'cancel deadline', 'destroy 1', 'endShutdown']);
    });
  });

  it('expire() outside a shutdown does nothing, and the next shutdown runs to its own deadline', () => {
    testScheduler.run(({ expectObservable }) => {
      const host = fakeHost(NEVER, [{ id: 1, state: 'active', idleSince: 0 }]);
      const cycle = lifecycle(host);
      cycle.expire();
      cycle.serving('pipe');
      cycle.expire();
      at(10, () => cycle.shutdown());
      expectObservable(cycle.done$).toBe('110ms r', { r: result({ killed: 1, timedOut: true, durationMs: 100 }) });
    });
  });

  it('counts a force() made while the shutdown is being set up (by a ready$ subscriber)', () => {
    testScheduler.run(({ expectObservable }) => {
      const host = fakeHost(NEVER, [{ id: 1, state: 'active', idleSince: 0 }]);
      const cycle = lifecycle(host);
      const forcing = cycle.ready$.subscribe((ready) => {
        if (!ready && cycle.phase === 'draining') cycle.force();
      });
      cycle.serving('pipe');
      at(5, () => cycle.shutdown());
      expectObservable(cycle.done$).toBe('5ms r', { r: result({ killed: 1, forced: true }) });
      at(6, () => forcing.unsubscribe());
    });
  });

  it('emits serving$ at the start of each cycle, once phase and ready$ say serving', () => {
    testScheduler.run(({ expectObservable }) => {
      const cycle = lifecycle(fakeHost(NEVER));
      at(5, () => cycle.serving('pipe'));
      at(10, () => cycle.shutdown());
      at(20, () => cycle.serving('pipe'));
      const watched$ = cycle.serving$.pipe(map(() => `${cycle.phase} ${String(cycle.ready)}`));
      expectObservable(watched$).toBe('5ms s 14ms s', { s: 'serving true' });
    });
  });

  it('splits the result by protocol for a host with mixedProtocols, asking the host the protocol of what the end destroys', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const changes$ = hot<ConnectionChange>('30ms a', { a: { ...change(1, 'closed', 'active'), protocol: 'http2' } });
      const host: FakeHost = Object.assign(
        fakeHost(changes$, [
          { id: 1, state: 'active', idleSince: 0 },
          { id: 2, state: 'active', idleSince: 0 },
        ]),
        { mixedProtocols: true },
      );
      host.protocols.set(2, 'http2');
      const cycle = lifecycle(host);
      cycle.serving('pipe');
      at(10, () => cycle.shutdown());
      at(50, () => cycle.force());
      expectObservable(cycle.done$).toBe('50ms r', {
        r: result({
          killed: 1,
          drained: 1,
          forced: true,
          durationMs: 40,
          byProtocol: { http1: { closedIdle: 0, drained: 0, killed: 0 }, http2: { closedIdle: 0, drained: 1, killed: 1 } },
          lastDrainedCloseMs: 20,
          lastGracefulCloseMs: 20,
        }),
      });
    });
  });

  it('leaves byProtocol out for a host without mixedProtocols', () => {
    testScheduler.run(({ expectObservable }) => {
      const cycle = lifecycle(fakeHost(NEVER, [{ id: 1, state: 'idle', idleSince: 0 }]));
      cycle.serving('pipe');
      at(10, () => cycle.shutdown());
      expectObservable(cycle.done$).toBe('10ms r', { r: result({ closedIdle: 1, lastIdleCloseMs: 0, lastGracefulCloseMs: 0 }) });
    });
  });

  it('turns ready$ false by the time shutdown() returns', () => {
    const cycle = lifecycle(fakeHost(NEVER));
    const ready: boolean[] = [];
    const watching = cycle.ready$.subscribe((r) => ready.push(r));
    cycle.serving('pipe');
    cycle.shutdown();
    watching.unsubscribe();
    expect(ready).to.deep.equal([false, true, false]);
  });
});
