// How long does a deploy's shutdown take, and does it lose a request? A marble test answers in
// virtual time: no sockets, no waiting. `VirtualServer` runs the very shutdown of `GracefulServer`
// (the same core, the same options, the same ShutdownResult); each client is a marble diagram of
// what happens to its connection. Copy this file next to your own specs and change the timeline.
//
// The timeline of both tests, one character a second: SIGTERM at 10 s; `timeout: 20_000`, so the
// deadline falls 20 s later, at 30 s.
//
//   time (s)   0         10   15   20        30
//   client 1   a--------------b
//   client 2   a-------------------------------> b at 45 s
//   SIGTERM    ----------s
//   done$      ---------------r  (client 1 alone: drained, killed 0)
//   done$      ------------------------------r  (with client 2: killed 1 at the deadline)
import { expect } from 'chai';
import { distinctUntilChanged, map } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { ShutdownResult, VirtualConnectionEvent, VirtualServer } from 'rx-graceful/testing';

describe('the shutdown of our service, in virtual time', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  const options = { timeout: 20_000 };
  const sigterm = '10s s';
  /** A request on connection `id` from the diagram's `a` (or `c`) to its `b` (or `d`). */
  const request = (id: number): Record<string, VirtualConnectionEvent> => ({
    a: { id, state: 'active' },
    b: { id, state: 'idle' },
  });
  /** What the tests look at in a ShutdownResult. */
  const summary = ({ killed, timedOut, drained, durationMs }: ShutdownResult) => ({ killed, timedOut, drained, durationMs });

  it('finishes at 15 s with nothing killed when the last request ends at 15 s', () => {
    testScheduler.run(({ cold, hot, expectObservable }) => {
      const server = new VirtualServer(options);
      server.serve();
      server.connect(cold('a 14999ms b', request(1))); // the `a` takes 1 ms: b is at 15 s
      server.shutdownOn(hot(sigterm)); // in production: server.shutdownOn(fromSignals('SIGTERM'))

      expectObservable(server.done$.pipe(map(summary))).toBe('15s r', {
        r: { killed: 0, timedOut: false, drained: 1, durationMs: 5000 },
      });
    });
  });

  it('kills the request still running at the 30 s deadline, and counts it', () => {
    testScheduler.run(({ cold, hot, expectObservable }) => {
      const server = new VirtualServer(options);
      server.serve();
      server.connect(cold('a 14999ms b', request(1)));
      server.connect(cold('a 44999ms b', request(2))); // would end at 45 s: too late
      server.shutdownOn(hot(sigterm));

      expectObservable(server.done$.pipe(map(summary))).toBe('30s r', {
        r: { killed: 1, timedOut: true, drained: 1, durationMs: 20_000 },
      });
      const killed$ = server.state$.pipe(
        map(({ killed }) => killed),
        distinctUntilChanged(),
      );
      expectObservable(killed$).toBe('k 29999ms K', { k: 0, K: 1 });
    });
  });
});
