import { expect } from 'chai';
import { unrefScheduler } from '../../src/node/unref-scheduler';
import { withDeadline } from '../support/sockets';

/** Resolves with how long after the call, by `unrefScheduler.now()`, an action of `delay` ms ran. */
function ranAfter(delay: number): Promise<number> {
  const at = unrefScheduler.now();
  return new Promise((resolve) => {
    unrefScheduler.schedule(() => resolve(unrefScheduler.now() - at), delay);
  });
}

describe('unrefScheduler (src/node/unref-scheduler.ts)', () => {
  it('runs an action no earlier than its delay by now(), when now() reads behind the clock Node times it with', async () => {
    // Node's timers count whole ms of the loop's monotonic clock, now() is Date.now(): the two round
    // at different instants, and a 100 ms deadline read 99 ms by now() on a busy machine. Here
    // now() is made to read 5 ms behind once the action is scheduled.
    const realNow = Date.now;
    let lag = 0;
    Date.now = () => realNow() - lag;
    try {
      const ran = ranAfter(20);
      lag = 5;
      // And not much later: a timer that fires short waits out only the rest (the upper bound is
      // loose for a busy machine; an action left waiting on something else took seconds).
      expect(await withDeadline(ran, 2000, 'the action')).to.be.within(20, 500);
    } finally {
      Date.now = realNow;
    }
  });

  it('runs nothing once its subscription is unsubscribed', async () => {
    let ran = false;
    const subscription = unrefScheduler.schedule(() => {
      ran = true;
    }, 10);
    subscription.unsubscribe();
    // An action scheduled after it, with a longer delay, runs: by then the first would have.
    await withDeadline(ranAfter(30), 2000, 'the later action');
    expect(ran).to.equal(false);
  });
});
