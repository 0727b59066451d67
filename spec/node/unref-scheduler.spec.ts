import { expect } from 'chai';
import { unrefScheduler } from '../../src/node/unref-scheduler';
import { withDeadline } from '../support/sockets';

/** `Date.now()` as a test sets it: it reads `at`, and counts its reads. */
interface FakeClock {
  at: number;
  /** Resolves right after the `n`th read (counted from the start of `withClock`). */
  reads(n: number): Promise<void>;
}

/** Runs `body` with `Date.now()` replaced by a `FakeClock`; the real clock is back after. */
async function withClock(body: (clock: FakeClock) => Promise<void>): Promise<void> {
  const realNow = Date.now;
  let count = 0;
  const waiting: Array<{ n: number; resolve: () => void }> = [];
  const clock: FakeClock = {
    at: realNow(),
    reads: (n) => new Promise((resolve) => waiting.push({ n, resolve })),
  };
  Date.now = () => {
    count++;
    for (const waiter of waiting) if (waiter.n === count) waiter.resolve();
    return clock.at;
  };
  try {
    await body(clock);
  } finally {
    Date.now = realNow;
  }
}

/** Counts the turns of the event loop (its check phases) from the call until `stop()`; `reached` resolves at `upTo`. */
function countTurns(upTo = Infinity): { readonly turns: () => number; readonly reached: Promise<void>; stop(): void } {
  let turns = 0;
  let reach: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  let next: NodeJS.Immediate | undefined = setImmediate(function turn() {
    turns++;
    if (turns >= upTo) reach();
    next = setImmediate(turn);
  });
  return {
    turns: () => turns,
    reached,
    stop: () => {
      if (next !== undefined) clearImmediate(next);
      next = undefined;
    },
  };
}

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

  it('runs an action in the first turn of the event loop after now() reaches its due time, not on a timer armed for the last ms', async () => {
    // Node's timers run up to ~2 ms after they are due; the last 2 ms are waited out a turn at a
    // time. now() reads 1 ms short of the due time until the first time it is read 40 ms (real)
    // after the call; in the next turn it reads the due time. The action must run in that turn: a
    // Node timer armed (at that read) for the missing ms would run only after many turns of a loop
    // kept turning.
    const realNow = Date.now;
    const start = realNow();
    let at = start;
    let counter: ReturnType<typeof countTurns> | undefined;
    let flipAfter: number | undefined;
    Date.now = () => {
      if (flipAfter !== undefined && performance.now() >= flipAfter) {
        flipAfter = undefined;
        setImmediate(() => {
          at = start + 20;
          counter = countTurns();
        });
      }
      return at;
    };
    try {
      let ranAfterTurns: number | undefined;
      const ran = new Promise<void>((resolve) => {
        unrefScheduler.schedule(() => {
          ranAfterTurns = counter?.turns();
          resolve();
        }, 20);
      });
      at = start + 19;
      flipAfter = performance.now() + 40;
      await withDeadline(ran, 2000, 'the action');
      expect(ranAfterTurns, 'turns of the loop between now() reaching the due time and the action').to.equal(0);
    } finally {
      Date.now = realNow;
      counter?.stop();
    }
  });

  it('runs nothing once unsubscribed while it waits out the last ms', async () => {
    await withClock(async (clock) => {
      const start = clock.at;
      let ran = false;
      const subscription = unrefScheduler.schedule(() => {
        ran = true;
      }, 20);
      clock.at = start + 19; // the timer fires with 1 ms left by now(): the loop turns for the rest
      await withDeadline(clock.reads(3), 2000, 'a turn that waits out the last ms');
      subscription.unsubscribe();
      clock.at = start + 40;
      // Ten turns of the loop: the turn that waits out the last ms would have run the action in the first.
      const counter = countTurns(10);
      try {
        await withDeadline(counter.reached, 2000, 'ten turns of the loop');
      } finally {
        counter.stop();
      }
      expect(ran).to.equal(false);
    });
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
