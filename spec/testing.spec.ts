import { expect } from 'chai';
import * as http from 'node:http';
import { distinctUntilChanged, filter, map, Observable, Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { GracefulServer } from '../src';
import {
  ConnectionChange,
  NotReadyError,
  ServerState,
  ShutdownResult,
  VirtualConnectionEvent,
  VirtualServer,
  VirtualServerOptions,
} from '../src/testing';
import { countingScheduler, result } from './support/fake-host';
import { closeAfterTest } from './support/server-kinds';
import { afterEachTest, record } from './support/servers';
import { loopback, portOf, RawClient, until, withDeadline } from './support/sockets';

/** The fields of a `ShutdownResult` these specs pin (the core may add more). */
function outcome({ killed, timedOut, forced, durationMs, closedIdle, drained, hijacked }: ShutdownResult): ShutdownResult {
  return { killed, timedOut, forced, durationMs, closedIdle, drained, hijacked };
}

/** Marble values: `e(1, 'active')`. */
const e = (id: number, state: VirtualConnectionEvent['state']): VirtualConnectionEvent => ({ id, state });

describe('VirtualServer (rx-graceful/testing)', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  const at = (frame: number, work: () => void): void => {
    testScheduler.schedule(work, frame);
  };

  it('ends the drain when the last request ends, before the deadline', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000 });
      server.serve();
      server.connect(cold('a 14999ms b', { a: e(1, 'active'), b: e(1, 'idle') }));
      at(10_000, () => server.shutdown());
      expectObservable(server.done$.pipe(map(outcome))).toBe('15s r', { r: result({ drained: 1, durationMs: 5000 }) });
    });
  });

  it('destroys and counts the survivors when the deadline wins', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000 });
      server.serve();
      server.connect(cold('a b', { a: e(1, 'active'), b: e(2, 'active') }));
      at(10_000, () => server.shutdown());
      expectObservable(server.done$.pipe(map(outcome))).toBe('40s r', {
        r: result({ killed: 2, timedOut: true, durationMs: 30_000 }),
      });
      expectObservable(server.connections$.pipe(filter((c) => c.state === 'closed'))).toBe('40s (xy)', {
        x: { id: 1, state: 'closed', previous: 'active' },
        y: { id: 2, state: 'closed', previous: 'active' },
      });
    });
  });

  it('ends the shutdown at once on force(), and counts what it destroyed', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000 });
      server.serve();
      server.connect(cold('a', { a: e(1, 'active') }));
      at(10_000, () => server.shutdown());
      at(12_000, () => server.force());
      expectObservable(server.done$.pipe(map(outcome))).toBe('12s r', {
        r: result({ killed: 1, forced: true, durationMs: 2000 }),
      });
    });
  });

  it('keeps accepting and serving during drainDelay, then counts the timeout from its end', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 10_000, drainDelay: 5000 });
      server.serve();
      // 1 connects during the delay and is served; 2 comes after it, and is refused
      server.connect(cold('3s a 3999ms b 999ms c', { a: e(1, 'active'), b: e(2, 'new'), c: e(2, 'active') }));
      at(1000, () => server.shutdown());
      const lifecycle$ = server.state$.pipe(
        map(({ phase, accepting }) => `${phase} ${accepting}`),
        distinctUntilChanged(),
      );
      expectObservable(lifecycle$).toBe('a 999ms b 4999ms c 9999ms d', {
        a: 'serving true',
        b: 'draining true',
        c: 'draining false',
        d: 'stopped false',
      });
      expectObservable(server.done$.pipe(map(outcome))).toBe('16s r', {
        r: result({ killed: 1, timedOut: true, durationMs: 15_000 }),
      });
    });
  });

  it('forces the shutdown on a second value of the shutdownOn trigger', () => {
    testScheduler.run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const server = new VirtualServer({ timeout: 30_000 });
      server.serve();
      server.connect(cold('a', { a: e(1, 'active') }));
      const signals = hot('10s t 4999ms t 9999ms t');
      server.shutdownOn(signals);
      expectObservable(server.done$.pipe(map(outcome))).toBe('15s r', {
        r: result({ killed: 1, forced: true, durationMs: 5000 }),
      });
      // the trigger is let go of once the shutdown has finished: the third value reaches nothing
      expectSubscriptions(signals.subscriptions).toBe('^ 14999ms !');
    });
  });

  it('closes idle connections once they have lingered idleLinger, counting them as closed idle', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000, idleLinger: 1000 });
      server.serve();
      server.connect(cold('a 999ms b 999ms c', { a: e(1, 'new'), b: e(2, 'active'), c: e(2, 'idle') }));
      at(10_000, () => server.shutdown());
      expectObservable(server.connections$.pipe(filter((c) => c.state === 'closed'))).toBe('11s (xy)', {
        x: { id: 1, state: 'closed', previous: 'new' },
        y: { id: 2, state: 'closed', previous: 'idle' },
      });
      expectObservable(server.done$.pipe(map(outcome))).toBe('11s r', { r: result({ closedIdle: 2, durationMs: 1000 }) });
    });
  });

  it('serves a request that comes while its idle connection lingers, then closes the connection', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000, idleLinger: 1000 });
      server.serve();
      server.connect(hot('a 10499ms b 299ms c', { a: e(1, 'new'), b: e(1, 'active'), c: e(1, 'idle') }));
      at(10_000, () => server.shutdown());
      expectObservable(server.connections$).toBe('n 10499ms b 299ms x', {
        n: { id: 1, state: 'new', previous: undefined },
        b: { id: 1, state: 'active', previous: 'new' },
        x: { id: 1, state: 'closed', previous: 'active' },
      });
      expectObservable(server.done$.pipe(map(outcome))).toBe('10.8s r', { r: result({ drained: 1, durationMs: 800 }) });
    });
  });

  it('serves a request that comes in the frame its idle connection is closed, as the real server reads first', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000, idleLinger: 0 });
      server.serve();
      // a hot diagram's values come after the shutdown scheduled for the same frame
      server.connect(hot('a 9999ms b 99ms c', { a: e(1, 'new'), b: e(1, 'active'), c: e(1, 'idle') }));
      at(10_000, () => server.shutdown());
      expectObservable(server.done$.pipe(map(outcome))).toBe('10.1s r', { r: result({ drained: 1, durationMs: 100 }) });
    });
  });

  it('ignores a request on a connection it has already closed: the client sees a reset', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000, idleLinger: 0 });
      server.serve();
      server.connect(hot('a 9999ms - b', { a: e(1, 'new'), b: e(1, 'active') }));
      at(10_000, () => server.shutdown());
      expectObservable(server.connections$).toBe('n 9999ms x', {
        n: { id: 1, state: 'new', previous: undefined },
        x: { id: 1, state: 'closed', previous: 'new' },
      });
      expectObservable(server.done$.pipe(map(outcome))).toBe('10s r', { r: result({ closedIdle: 1 }) });
    });
  });

  it('accepts a connection that comes in the frame the listener closes, and refuses one that comes after', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000, idleLinger: 0 });
      server.serve();
      server.connect(hot('a 9999ms b c', { a: e(1, 'active'), b: e(2, 'active'), c: e(3, 'active') }));
      at(10_000, () => server.shutdown());
      const opened$ = server.connections$.pipe(filter((c) => c.state === 'new'));
      expectObservable(opened$.pipe(map((c) => c.id))).toBe('a 9999ms b', { a: 1, b: 2 });
      expectObservable(server.done$.pipe(map(outcome))).toBe('40s r', {
        r: result({ killed: 2, timedOut: true, durationMs: 30_000 }),
      });
    });
  });

  it('leaves a hijacked connection out of the drain, and counts it in hijacked', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000 });
      server.serve();
      server.connect(cold('a b', { a: e(1, 'active'), b: e(1, 'hijacked') }));
      at(10_000, () => server.shutdown());
      expectObservable(server.done$.pipe(map(outcome))).toBe('10s r', { r: result({ hijacked: 1 }) });
      expectObservable(server.connections$.pipe(filter((c) => c.state === 'closed'))).toBe('');
    });
  });

  it('with waitForHijacked, waits for a hijacked connection and kills it at the deadline', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000, waitForHijacked: true });
      server.serve();
      server.connect(cold('a', { a: e(1, 'hijacked') }));
      at(10_000, () => server.shutdown());
      expectObservable(server.done$.pipe(map(outcome))).toBe('40s r', {
        r: result({ killed: 1, timedOut: true, hijacked: 1, durationMs: 30_000 }),
      });
    });
  });

  it('tells the work in flight to stop cancelAhead before the deadline', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000, cancelAhead: 5000 });
      server.serve();
      server.connect(cold('a', { a: e(1, 'active') }));
      at(10_000, () => server.shutdown());
      expectObservable(server.requestsAborted$).toBe('35s d', { d: 'deadline' });
    });
  });

  it('emits the state$ of a whole cycle: serving, connections, draining, stopped with the killed count', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 30_000 });
      server.serve();
      server.connect(cold('1s a 999ms b', { a: e(1, 'active'), b: e(2, 'new') }));
      at(10_000, () => server.shutdown());
      const s = (phase: ServerState['phase'], open: number, active: number, killed = 0): ServerState => ({
        phase,
        accepting: phase === 'serving',
        open,
        active,
        idle: open - active,
        killed,
      });
      expectObservable(server.state$).toBe('v 999ms (nA) 996ms i 7999ms d 999ms c 28999ms (xs)', {
        v: s('serving', 0, 0),
        n: s('serving', 1, 0),
        A: s('serving', 1, 1),
        i: s('serving', 2, 1),
        d: s('draining', 2, 1),
        c: s('draining', 1, 1),
        x: s('draining', 0, 0),
        s: s('stopped', 0, 0, 1),
      });
    });
  });

  it('says ready$ false and shutdownOK() true from the call that starts the shutdown, and only for it', () => {
    testScheduler.run(({ expectObservable }) => {
      const server = new VirtualServer();
      const answers: boolean[] = [];
      at(1000, () => server.serve());
      at(2000, () => answers.push(server.shutdownOK(), server.shutdownOK()));
      expectObservable(server.ready$).toBe('f 999ms t 999ms f', { f: false, t: true });
      at(3000, () => expect(answers).to.deep.equal([true, false]));
    });
  });

  it('serves again after a shutdown, from clean counts, and refuses serve() while serving or draining', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const server = new VirtualServer({ timeout: 1000 });
      server.serve();
      expect(() => server.serve())
        .to.throw(NotReadyError)
        .with.property('quitting', false);
      server.connect(cold('1s a 4999ms b', { a: e(1, 'active'), b: e(2, 'active') }));
      at(2000, () => {
        server.shutdown();
        expect(() => server.serve())
          .to.throw(NotReadyError)
          .with.property('quitting', true);
      });
      at(4000, () => server.serve());
      at(7000, () => server.shutdown());
      expectObservable(server.done$.pipe(map(({ killed }) => killed))).toBe('3s a 4999ms b', { a: 1, b: 1 });
      const counts$ = server.state$.pipe(
        map(({ phase, open, killed }) => `${phase} ${open} ${killed}`),
        distinctUntilChanged(),
      );
      expectObservable(counts$).toBe('a 999ms b 999ms c 999ms (de) 996ms f 1999ms g 999ms h 999ms (ij)', {
        a: 'serving 0 0',
        b: 'serving 1 0',
        c: 'draining 1 0',
        d: 'draining 0 0',
        e: 'stopped 0 1',
        f: 'serving 0 0',
        g: 'serving 1 0',
        h: 'draining 1 0',
        i: 'draining 0 0',
        j: 'stopped 0 1',
      });
    });
  });

  it('settles wait() with the result of the shutdown', async () => {
    const server = new VirtualServer({ timeout: 30_000 });
    testScheduler.run(({ cold }) => {
      server.serve();
      server.connect(cold('a 8999ms b', { a: e(1, 'active'), b: e(1, 'idle') }));
      at(5000, () => server.shutdown());
    });
    expect(outcome(await server.wait())).to.deep.equal(result({ drained: 1, durationMs: 4000 }));
    expect(server.phase).to.equal('stopped');
  });

  it('leaves no subscription and no timer behind once done', () => {
    testScheduler.run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const { scheduler, pending } = countingScheduler(testScheduler);
      const server = new VirtualServer({ timeout: 30_000, cancelAhead: 1000, scheduler });
      server.serve();
      server.connect(cold('a 14999ms b', { a: e(1, 'active'), b: e(1, 'idle') }));
      const signals = hot('10s t');
      server.shutdownOn(signals);
      expectObservable(server.done$.pipe(map(({ durationMs }) => durationMs))).toBe('15s d', { d: 5000 });
      expectSubscriptions(signals.subscriptions).toBe('^ 14999ms !');
      at(12_000, () => expect(pending(), 'the deadline and cancelAhead timers, while draining').to.be.above(1));
      at(15_000, () => expect(pending(), 'timers of the finished shutdown').to.equal(0));
    });
  });

  it('throws a TypeError for a bad option value or an unknown option name, as GracefulServer does', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ timeout: -1 }, /options\.timeout must be a finite number of milliseconds/],
      [{ drainDelay: Infinity }, /options\.drainDelay must be/],
      [{ idleLinger: 1001 }, /options\.idleLinger must be a finite number of milliseconds from 0 to 1000/],
      [{ cancelAhead: '5s' }, /options\.cancelAhead must be/],
      [{ waitForHijacked: 1 }, /options\.waitForHijacked must be a boolean/],
      [{ scheduler: {} }, /options\.scheduler must be an RxJS SchedulerLike/],
      [{ timout: 1000 }, /unknown option "timout" \(did you mean "timeout"\?\)/],
      [{ syncShutdown: true }, /unknown option "syncShutdown"/],
      [null, /options must be an object/],
    ];
    for (const [options, message] of bad) {
      expect(() => new VirtualServer(options as VirtualServerOptions), JSON.stringify(options))
        .to.throw(TypeError, message)
        .with.property('message')
        .that.matches(/^rx-graceful: new VirtualServer\(options\)/);
    }
  });

  it('throws a TypeError for a connection event that is not { id, state }, and for a trigger that is not an Observable', () => {
    const server = new VirtualServer();
    expect(() => server.shutdownOn('SIGTERM' as never)).to.throw(TypeError, /shutdownOn\(trigger\$\) expects an Observable/);
    expect(() => server.connect([e(1, 'new')] as never)).to.throw(TypeError, /connect\(events\$\) expects an Observable/);
    expect(() => {
      testScheduler.run(({ cold }) => {
        server.serve();
        server.connect(cold('a', { a: { id: 1, state: 'busy' } as never }));
      });
    }).to.throw(TypeError, /a connection event must be \{ id: number, state: 'new' \| .*\}, got \{"id":1,"state":"busy"\}/);
  });
});

/** A step of a scenario: a connection event, or what the server is asked. */
type Step = VirtualConnectionEvent | 'shutdown' | 'force';

/** One scenario, run on both servers: a marble diagram of steps, and the options of both. */
interface Scenario {
  readonly name: string;
  readonly options: Pick<VirtualServerOptions, 'timeout' | 'drainDelay' | 'idleLinger'>;
  readonly marbles: string;
  readonly steps: Readonly<Record<string, Step>>;
  /** What the virtual run must show, so that both runs agreeing means something. */
  readonly expected: ShutdownResult;
}

/** What a run shows: every connection change, every state, and the shutdown's result. */
interface Run {
  readonly changes: ConnectionChange[];
  readonly states: ServerState[];
  readonly result: ShutdownResult;
}

/** A step at its frame (ms from the start). */
interface TimedStep {
  readonly frame: number;
  readonly step: Step;
}

const scenarios: readonly Scenario[] = [
  {
    name: 'the deadline wins: 1 is closed idle, 2 ends its request during the drain, 3 is killed',
    options: { timeout: 1000, idleLinger: 0 },
    marbles: 'a b c d 5ms S 199ms g',
    steps: { a: e(1, 'active'), b: e(1, 'idle'), c: e(2, 'active'), d: e(3, 'active'), S: 'shutdown', g: e(2, 'idle') },
    expected: result({ killed: 1, timedOut: true, durationMs: 1000, closedIdle: 1, drained: 1 }),
  },
  {
    name: 'drained after a drainDelay: 1 lingers idle, then closes; 2 ends its request, the last',
    options: { timeout: 2000, drainDelay: 100, idleLinger: 50 },
    marbles: 'a b c 5ms S 299ms g',
    steps: { a: e(1, 'active'), b: e(1, 'idle'), c: e(2, 'active'), S: 'shutdown', g: e(2, 'idle') },
    expected: result({ durationMs: 300, closedIdle: 1, drained: 1 }),
  },
  {
    name: 'forced: 1 has a request in flight and is killed, 2 has sent nothing and is closed idle',
    options: { timeout: 5000 },
    marbles: 'a b 5ms S 99ms F',
    steps: { a: e(1, 'active'), b: e(2, 'new'), S: 'shutdown', F: 'force' },
    expected: result({ killed: 1, forced: true, durationMs: 100, closedIdle: 1 }),
  },
];

function isEvent(step: Step): step is VirtualConnectionEvent {
  return typeof step === 'object';
}

/** Runs `scenario` on a VirtualServer in virtual time; returns what it showed, and the steps with their frames. */
function runVirtual(scenario: Scenario): { run: Run; timeline: TimedStep[] } {
  const testScheduler = new TestScheduler((actual, expected) => {
    expect(actual).to.deep.equal(expected);
  });
  const changes: ConnectionChange[] = [];
  const states: ServerState[] = [];
  const results: ShutdownResult[] = [];
  const timeline: TimedStep[] = [];
  const watching = new Subscription();
  testScheduler.run(({ cold }) => {
    for (const { frame, notification } of TestScheduler.parseMarbles(scenario.marbles, scenario.steps, undefined, false, true)) {
      if (notification.kind === 'N') timeline.push({ frame, step: notification.value as Step });
    }
    const server = new VirtualServer(scenario.options);
    watching.add(server.connections$.subscribe((c) => changes.push(c)));
    watching.add(server.state$.subscribe((s) => states.push(s)));
    watching.add(server.done$.subscribe((r) => results.push(r)));
    server.serve();
    const script: Observable<Step> = cold(scenario.marbles, scenario.steps);
    watching.add(server.connect(script.pipe(filter(isEvent))));
    watching.add(
      script.pipe(filter((step) => !isEvent(step))).subscribe((command) => {
        if (command === 'shutdown') server.shutdown();
        else if (command === 'force') server.force();
      }),
    );
  });
  watching.unsubscribe();
  expect(results, 'the virtual shutdown finished once').to.have.length(1);
  return { run: { changes, states, result: results[0] as ShutdownResult }, timeline };
}

/**
 * Runs the same steps on a GracefulServer over real sockets on 127.0.0.1: each connection a raw
 * keep-alive client, each request held by the handler until its `idle` step. A step waits at
 * least its gap in the marble diagram after the previous one has taken effect on the server.
 */
async function runReal(scenario: Scenario, timeline: readonly TimedStep[], cleanup: Array<() => void>): Promise<Run> {
  const held = new Map<string, http.ServerResponse>();
  const server = http.createServer((req, res) => {
    held.set(String(req.headers['x-id']), res);
  });
  closeAfterTest(server, cleanup);
  const graceful = new GracefulServer(server, scenario.options);
  const changes = record(
    graceful.connections$.pipe(map(({ id, state, previous }): ConnectionChange => ({ id, state, previous }))),
    cleanup,
  );
  const states = record(
    graceful.state$.pipe(
      map((state) => {
        const withoutAddress = { ...state }; // the virtual server listens nowhere
        delete withoutAddress.address;
        return withoutAddress;
      }),
    ),
    cleanup,
  );
  const port = portOf(await graceful.listen(loopback));
  const clients = new Map<number, RawClient>();
  const stateOf = (id: number): string | undefined => [...changes].reverse().find((c) => c.id === id)?.state;
  const takeEffect = (id: number, expected: readonly string[], what: string): Promise<void> =>
    until(() => expected.includes(stateOf(id) ?? ''), 3000, `connection ${id}: ${what}`);

  const connect = async (id: number): Promise<RawClient> => {
    const known = clients.get(id);
    if (known !== undefined) return known;
    const client = await RawClient.connect(port);
    cleanup.push(() => client.destroy());
    clients.set(id, client);
    await until(() => changes.some((c) => c.state === 'new' && c.id === id), 3000, `connection ${id} accepted as id ${id}`);
    return client;
  };

  let previous = 0;
  for (const { frame, step } of timeline) {
    await new Promise((resolve) => setTimeout(resolve, frame - previous));
    previous = frame;
    if (step === 'shutdown') graceful.shutdown();
    else if (step === 'force') graceful.force();
    else if (step.state === 'new') await connect(step.id);
    else if (step.state === 'active') {
      (await connect(step.id)).get('/', String(step.id));
      await takeEffect(step.id, ['active'], 'its request in flight');
    } else if (step.state === 'idle') {
      held.get(String(step.id))?.end('done');
      await takeEffect(step.id, ['idle', 'closed'], 'its response ended');
    } else {
      throw new Error(`the real run has no step for ${JSON.stringify(step)}`);
    }
  }
  const finished = await withDeadline(graceful.wait(), 10_000, 'the real shutdown');
  return { changes, states, result: finished };
}

/**
 * The same fields, and the same values but for times: a field in ms (`durationMs`, and any other
 * `...Ms` the core reports) may be later on the real server, as real time only adds (each step
 * waits at least its gap, timers fire late; Node may round a timer down by 1 ms).
 */
function expectSameResult(real: ShutdownResult, virtual: ShutdownResult): void {
  expect(Object.keys(real).sort(), 'the fields of the ShutdownResult').to.deep.equal(Object.keys(virtual).sort());
  for (const [field, value] of Object.entries(virtual)) {
    const actual: unknown = Reflect.get(real, field);
    if (field.endsWith('Ms') && typeof value === 'number') expect(actual, field).to.be.within(value - 1, value + 1500);
    else expect(actual, field).to.deep.equal(value);
  }
}

describe('VirtualServer and GracefulServer over real sockets, on the same scenario', function () {
  this.timeout(20_000);
  const cleanup = afterEachTest();

  for (const scenario of scenarios) {
    it(`shows the same connections$, state$ and ShutdownResult on both: ${scenario.name}`, async () => {
      const { run: virtual, timeline } = runVirtual(scenario);
      expect(outcome(virtual.result), 'the virtual result').to.deep.equal(scenario.expected);
      const real = await runReal(scenario, timeline, cleanup);
      expect(real.changes, 'connections$').to.deep.equal(virtual.changes);
      expect(real.states, 'state$').to.deep.equal(virtual.states);
      expectSameResult(real.result, virtual.result);
    });
  }
});
