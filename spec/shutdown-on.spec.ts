import { expect } from 'chai';
import * as http from 'node:http';
import { Observable, Subject, Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { fromSignals, GracefulServer, Phase, ShutdownTarget } from '../src';
import { shutdownOn } from '../src/shutdown-on';
import { closeAfterTest } from './support/server-kinds';
import { afterEachTest } from './support/servers';
import { loopback, portOf, RawClient, until, waitForValue, withDeadline } from './support/sockets';

/** A target with no server: the test moves it through its cycle; what it is asked to do comes out on `calls$`. */
class FakeTarget implements ShutdownTarget {
  phase: Phase = 'stopped';
  readonly serving$: Observable<void>;
  readonly done$: Observable<void>;
  readonly calls$: Observable<string>;
  private readonly servings = new Subject<void>();
  private readonly dones = new Subject<void>();
  private readonly calls = new Subject<string>();

  constructor() {
    this.serving$ = this.servings.asObservable();
    this.done$ = this.dones.asObservable();
    this.calls$ = this.calls.asObservable();
  }

  shutdown(): void {
    this.calls.next('s');
    if (this.phase === 'serving') this.phase = 'draining';
  }

  force(): void {
    this.calls.next('f');
  }

  /** A serving cycle starts. */
  serve(): void {
    this.phase = 'serving';
    this.servings.next();
  }

  /** The shutdown (however it was started) has finished. */
  finish(): void {
    this.phase = 'stopped';
    this.dones.next();
  }
}

describe('shutdownOn(target, trigger$)', () => {
  let testScheduler: TestScheduler;
  let target: FakeTarget;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
    target = new FakeTarget();
  });

  const watches: Subscription[] = [];
  afterEach(() => {
    for (const watching of watches.splice(0)) watching.unsubscribe();
  });

  const at = (frame: number, work: () => void): void => {
    testScheduler.schedule(work, frame);
  };

  /** Watches `trigger$` for `target` until the end of the test. */
  const watch = (trigger$: Observable<unknown>): Subscription => {
    const watching = shutdownOn(target, trigger$);
    watches.push(watching);
    return watching;
  };

  it('starts the shutdown on a value while serving, and unsubscribes once it has finished', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const trigger = hot('10ms t 29ms t');
      target.serve();
      watch(trigger);
      at(30, () => target.finish());
      expectObservable(target.calls$).toBe('10ms s');
      expectSubscriptions(trigger.subscriptions).toBe('^ 29ms !');
    });
  });

  it('forces on a second value during the shutdown', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const trigger = hot('10ms t 9ms t');
      target.serve();
      watch(trigger);
      expectObservable(target.calls$).toBe('10ms s 9ms f');
    });
  });

  it('forces on a value during a shutdown started some other way', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const trigger = hot('15ms t');
      target.serve();
      at(5, () => (target.phase = 'draining'));
      watch(trigger);
      expectObservable(target.calls$).toBe('15ms f');
    });
  });

  it('keeps a value that comes before the target serves, and starts the shutdown when it does', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const trigger = hot('5ms t');
      watch(trigger);
      at(20, () => target.serve());
      at(40, () => target.finish());
      expectObservable(target.calls$).toBe('20ms s');
      expectSubscriptions(trigger.subscriptions).toBe('^ 39ms !');
    });
  });

  it('with two kept values, starts the shutdown and forces it at once when the target serves', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const trigger = hot('5ms t 4ms t');
      watch(trigger);
      at(20, () => target.serve());
      expectObservable(target.calls$).toBe('20ms (sf)');
    });
  });

  it('subscribes trigger$ again each time the target serves again, and not between cycles', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const trigger = hot('10ms t 29ms t 19ms t');
      target.serve();
      watch(trigger);
      at(30, () => target.finish());
      at(50, () => target.serve());
      at(80, () => target.finish());
      expectObservable(target.calls$).toBe('10ms s 49ms s');
      expectSubscriptions(trigger.subscriptions).toBe(['^ 29ms !', '50ms ^ 29ms !']);
    });
  });

  it('ends it all when the returned Subscription is unsubscribed', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const trigger = hot('20ms t 39ms t');
      target.serve();
      const watching = watch(trigger);
      at(15, () => watching.unsubscribe());
      at(30, () => target.finish());
      at(50, () => target.serve());
      expectObservable(target.calls$).toBe('');
      expectSubscriptions(trigger.subscriptions).toBe('^ 14ms !');
    });
  });

  it('goes on when trigger$ completes: the next cycle subscribes it again', () => {
    testScheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const trigger = cold('10ms t 4ms |');
      target.serve();
      watch(trigger);
      at(30, () => target.finish());
      at(40, () => target.serve());
      expectObservable(target.calls$).toBe('10ms s 39ms s');
      expectSubscriptions(trigger.subscriptions).toBe(['^ 14ms !', '40ms ^ 14ms !']);
    });
  });

  it('goes on when trigger$ errors: kept values still count, and the next cycle subscribes it again', () => {
    testScheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const trigger = cold('5ms t 4ms #');
      const watching = watch(trigger);
      at(20, () => target.serve());
      at(30, () => target.finish());
      at(40, () => target.serve());
      at(60, () => expect(watching.closed, 'the watch is still open').to.equal(false));
      expectObservable(target.calls$).toBe('20ms s 24ms s');
      expectSubscriptions(trigger.subscriptions).toBe(['^ 9ms !', '40ms ^ 9ms !']);
    });
  });

  it('subscribes trigger$ during a shutdown it was called in, until that shutdown has finished', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const trigger = hot('10ms t');
      target.phase = 'draining';
      watch(trigger);
      at(20, () => target.finish());
      expectObservable(target.calls$).toBe('10ms f');
      expectSubscriptions(trigger.subscriptions).toBe('^ 19ms !');
    });
  });
});

describe('GracefulServer.shutdownOn(trigger$) over real sockets', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  /** A wrapped HTTP server whose `/hang` is never answered; not listening yet. */
  function wrapped(options = {}): { graceful: GracefulServer; server: http.Server } {
    const server = http.createServer((req, res) => {
      if (req.url !== '/hang') res.end('ok');
    });
    closeAfterTest(server, cleanup);
    return { graceful: new GracefulServer(server, { timeout: 5000, ...options }), server };
  }

  it('is a ShutdownTarget itself: phase, serving$, done$, shutdown(), force()', () => {
    const target: ShutdownTarget = wrapped().graceful;
    expect(target.phase).to.equal('stopped');
  });

  it('starts the shutdown on the first value, and forces it on the second with a request in flight', async () => {
    const { graceful } = wrapped();
    const trigger = new Subject<string>();
    const watching = graceful.shutdownOn(trigger);
    cleanup.push(() => watching.unsubscribe());
    const c = await RawClient.connect(portOf(await graceful.listen(loopback)));
    cleanup.push(() => c.destroy());
    c.get('/hang');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
    const done = graceful.wait();
    trigger.next('SIGTERM');
    expect(graceful.phase).to.equal('draining');
    trigger.next('SIGTERM');
    expect(await withDeadline(done, 2000, 'the forced shutdown')).to.include({ forced: true, killed: 1 });
  });

  it('keeps a value that comes before listen(): listen() resolves, and the shutdown starts at once', async () => {
    const { graceful } = wrapped();
    const trigger = new Subject<string>();
    const watching = graceful.shutdownOn(trigger);
    cleanup.push(() => watching.unsubscribe());
    trigger.next('SIGTERM');
    const done = graceful.wait();
    const address = await graceful.listen(loopback);
    expect(portOf(address)).to.be.above(0);
    expect(graceful.phase).to.equal('draining');
    expect(await withDeadline(done, 2000, 'the shutdown')).to.include({ killed: 0, forced: false });
  });

  it('with fromSignals, listens for the signal while serving, removes the listener after the drain, and adds it again on the next listen', async () => {
    const { graceful } = wrapped();
    const before = process.listenerCount('SIGUSR2');
    const watching = graceful.shutdownOn(fromSignals('SIGUSR2'));
    cleanup.push(() => watching.unsubscribe());
    for (let cycle = 1; cycle <= 2; cycle++) {
      await graceful.listen(loopback);
      expect(process.listenerCount('SIGUSR2'), `cycle ${cycle}: listening for the signal`).to.equal(before + 1);
      const done = graceful.wait();
      process.kill(process.pid, 'SIGUSR2');
      await withDeadline(done, 2000, `the shutdown of cycle ${cycle} on SIGUSR2`);
      await until(() => process.listenerCount('SIGUSR2') === before, 1000, `cycle ${cycle}: the listener removed`);
    }
    watching.unsubscribe();
    expect(process.listenerCount('SIGUSR2')).to.equal(before);
  });

  it('stops listening for good once the returned Subscription is unsubscribed', async () => {
    const { graceful } = wrapped();
    const before = process.listenerCount('SIGUSR2');
    const watching = graceful.shutdownOn(fromSignals('SIGUSR2'));
    expect(process.listenerCount('SIGUSR2')).to.equal(before + 1);
    watching.unsubscribe();
    expect(process.listenerCount('SIGUSR2')).to.equal(before);
    await graceful.listen(loopback);
    expect(process.listenerCount('SIGUSR2'), 'no listener on the next cycle').to.equal(before);
    graceful.shutdown();
    await graceful.wait();
  });

  it('throws a TypeError for a trigger$ that is not an Observable', () => {
    const { graceful } = wrapped();
    expect(() => graceful.shutdownOn('SIGTERM' as never)).to.throw(
      TypeError,
      /shutdownOn\(trigger\$\) expects an Observable, got "SIGTERM"/,
    );
  });
});
