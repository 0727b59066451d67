import { expect } from 'chai';
import { GracefulGroup, GracefulServer } from '../../src';
import { metricsServer } from './metrics-server';
import { waitForValue, withDeadline } from './sockets';

/** Every figure a metrics binding exposes, as one reading (a scrape, a collection) shows them. */
export interface Figures {
  open: number;
  active: number;
  idle: number;
  /** The phase whose series is 1; the other two must be 0. */
  phase: string;
  accepting: number;
  accepted: number;
  closedIdle: number;
  drained: number;
  killed: number;
  shutdowns: number;
  /** The histogram's count and sum (seconds); 0 while it has recorded nothing. */
  durations: number;
  durationSum: number;
}

/** The figures of a binding to a server that serves with no connection and has never shut down. */
export const serving: Figures = {
  open: 0,
  active: 0,
  idle: 0,
  phase: 'serving',
  accepting: 1,
  accepted: 0,
  closedIdle: 0,
  drained: 0,
  killed: 0,
  shutdowns: 0,
  durations: 0,
  durationSum: 0,
};

/**
 * The figures once every shutdown of `results` has finished and the server is stopped: one
 * shutdown and one observed duration (in seconds) for each, and the connection `counts`.
 */
export function stoppedAfter(results: ReadonlyArray<{ readonly durationMs: number }>, counts: Partial<Figures>): Figures {
  return {
    ...serving,
    phase: 'stopped',
    accepting: 0,
    shutdowns: results.length,
    durations: results.length,
    durationSum: results.reduce((sum, result) => sum + result.durationMs / 1000, 0),
    ...counts,
  };
}

/** What a metrics adapter's spec tells the shared scenarios: how it binds, how it reads. */
export interface MetricsAdapter<Reading> {
  /** The sentences of the shared `it`s, in this adapter's own words (the README cites them). */
  readonly says: { readonly drain: string; readonly killed: string; readonly group: string };
  /**
   * Binds `target` with the adapter's defaults to a reader of its own; the binding and the reader
   * are ended after the test (`cleanup`). Returns a reading of the figures as they are now.
   */
  bind(target: GracefulServer | GracefulGroup, cleanup: Array<() => void>): () => Promise<Reading>;
  /** The figures of one reading. */
  figures(reading: Reading): Figures;
  /** Checks the duration histogram of `reading` holds exactly one observation: `seconds`. */
  expectOneDuration(reading: Reading, seconds: number): void;
}

/**
 * The scenarios every metrics adapter is held to, on real drains on 127.0.0.1: before, during and
 * after a drain, a deadline and a force() counting the connections they destroy, a GracefulGroup.
 * Call it inside the adapter's `describe`, with that describe's `cleanup`.
 */
export function metricsScenarios<Reading>(adapter: MetricsAdapter<Reading>, cleanup: Array<() => void>): void {
  /** Binds `target`; returns a reading of the figures as they are now, and that reading's figures. */
  function bind(target: GracefulServer | GracefulGroup): { read: () => Promise<Reading>; figures: () => Promise<Figures> } {
    const read = adapter.bind(target, cleanup);
    return { read, figures: async () => adapter.figures(await read()) };
  }

  it(adapter.says.drain, async () => {
    const { graceful, idleConnection, heldRequest } = await metricsServer({ idleLinger: 0 }, cleanup);
    const { read, figures } = bind(graceful);
    expect(await figures()).to.deep.equal(serving);

    const idle = await idleConnection();
    const held = await heldRequest();
    expect(await figures(), 'before').to.deep.equal({ ...serving, open: 2, active: 1, idle: 1, accepted: 2 });

    const finished = graceful.wait();
    graceful.shutdown();
    await waitForValue(
      graceful.state$,
      (s) => s.phase === 'draining' && !s.accepting && s.open === 1,
      3000,
      'the listener and the idle connection closed',
    );
    await idle.waitClosed();
    // The shutdown's counts are added when it has finished.
    const during = { ...serving, open: 1, active: 1, phase: 'draining', accepting: 0, accepted: 2 };
    expect(await figures(), 'during').to.deep.equal(during);

    held.release();
    const response = await held.client.read();
    expect(response).to.deep.include({ status: 200, body: 'released' });
    expect(response.headers.connection).to.equal('close');
    const result = await withDeadline(finished, 5000, 'the drain to finish');
    expect(result).to.include({ closedIdle: 1, drained: 1, killed: 0 });
    const after = await read();
    expect(adapter.figures(after), 'after').to.deep.equal(stoppedAfter([result], { accepted: 2, closedIdle: 1, drained: 1 }));
    adapter.expectOneDuration(after, result.durationMs / 1000);
  });

  it(adapter.says.killed, async () => {
    const { graceful, heldRequest, listenAgain } = await metricsServer({ timeout: 100, idleLinger: 0 }, cleanup);
    const { figures } = bind(graceful);

    const hung = await heldRequest();
    const timedOut = graceful.wait();
    graceful.shutdown();
    const first = await withDeadline(timedOut, 5000, 'the deadline to end the drain');
    expect(first).to.include({ killed: 1, timedOut: true, drained: 0, closedIdle: 0 });
    await hung.client.waitClosed();
    expect(await figures(), 'after the deadline').to.deep.equal(stoppedAfter([first], { accepted: 1, killed: 1 }));
    expect(first.durationMs / 1000).to.be.at.least(0.1);

    await listenAgain();
    const stuck = await heldRequest();
    expect(await figures(), 'serving again').to.deep.include({ phase: 'serving', open: 1, active: 1, killed: 1 });
    const forced = graceful.wait();
    graceful.shutdown();
    graceful.force();
    const second = await withDeadline(forced, 5000, 'force() to end the drain');
    expect(second).to.include({ killed: 1, forced: true });
    await stuck.client.waitClosed();
    expect(await figures(), 'after force()').to.deep.equal(stoppedAfter([first, second], { accepted: 2, killed: 2 }));
  });

  it(adapter.says.group, async () => {
    const api = await metricsServer({ idleLinger: 0 }, cleanup);
    const admin = await metricsServer({ idleLinger: 0 }, cleanup);
    const group = new GracefulGroup([api.graceful, admin.graceful]);
    const { figures } = bind(group);

    await api.idleConnection();
    const held = await admin.heldRequest();
    expect(await figures(), 'before').to.deep.equal({ ...serving, open: 2, active: 1, idle: 1, accepted: 2 });

    const finished = group.wait();
    group.shutdown();
    // The api member, with only an idle connection, has finished; admin drains its held request.
    const apiResult = await withDeadline(api.graceful.wait(), 3000, 'the api member to finish');
    expect(apiResult).to.include({ closedIdle: 1 });
    await waitForValue(group.state$, (s) => !s.accepting && s.open === 1, 3000, 'both listeners closed');
    const during = { ...serving, open: 1, active: 1, phase: 'draining', accepting: 0, accepted: 2, closedIdle: 1 };
    expect(await figures(), 'during').to.deep.equal(during);

    held.release();
    const result = await withDeadline(finished, 5000, "the group's drain to finish");
    expect(await figures(), 'after').to.deep.equal(stoppedAfter([result], { accepted: 2, closedIdle: 1, drained: 1 }));

    // A member shut down on its own: its connections count, the group had no shutdown.
    await api.listenAgain();
    await api.idleConnection();
    const alone = api.graceful.wait();
    api.graceful.shutdown();
    await withDeadline(alone, 3000, 'the api member to finish on its own');
    expect(await figures(), 'after a member alone').to.deep.include({
      phase: 'stopped',
      accepted: 3,
      closedIdle: 2,
      shutdowns: 1,
      durations: 1,
    });
  });
}
