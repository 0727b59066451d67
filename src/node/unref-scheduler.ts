import { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';

/**
 * How much earlier than its due time a Node timer is armed. Node's timers count whole ms of a loop
 * clock read at the start of a turn, and the poll waits whole ms: a timer runs up to about 2 ms
 * after `now()` has reached its due time (a 300 ms deadline in 10 fresh processes, 2026-12-03: 9
 * ran 1–2 ms past it). The last of it is waited out a turn of the loop at a time, so that the work
 * runs in the first turn after `now()` reaches its due time (the same 10 runs with it: all within
 * the due ms), for at most this long of turning.
 */
const leadMs = 2;

/** One scheduled piece of work on a Node timer that does not keep the process alive. */
class UnrefAction<T> extends Subscription implements SchedulerAction<T> {
  private timer: NodeJS.Timeout | undefined;
  /** The turn of the loop that waits out the last `leadMs`. */
  private turn: NodeJS.Immediate | undefined;

  constructor(private readonly work: (this: SchedulerAction<T>, state?: T) => void) {
    super(() => {
      this.cancel();
    });
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    this.cancel();
    // The work runs once `now()` reads `delay` past this call, not before: `now()` is `Date.now()`
    // (what durations are computed with), and Node's timers count whole ms of another clock, read
    // at the start of a turn; the two round at different instants (a 100 ms deadline's
    // `durationMs` read 99 on a busy machine when the timer alone decided).
    const due = unrefScheduler.now() + delay;
    const fire = (): void => {
      this.timer = undefined;
      this.turn = undefined;
      const left = due - unrefScheduler.now();
      if (left <= 0) this.work.call(this, state);
      else if (left > leadMs) this.arm(fire, left - leadMs);
      else this.turn = setImmediate(fire); // ref'd: an unref'd immediate lets the poll block until some other event
    };
    this.arm(fire, delay > leadMs ? delay - leadMs : delay);
    return this;
  }

  private arm(fire: () => void, ms: number): void {
    this.timer = setTimeout(fire, ms);
    this.timer.unref();
  }

  private cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.turn !== undefined) clearImmediate(this.turn);
    this.turn = undefined;
  }
}

/**
 * The default time source: RxJS's `asyncScheduler` semantics (wall-clock `now()`, timers), except
 * that its timers are `unref`'d, so a deadline waiting for a drain never keeps a process alive on
 * its own (but for the last `leadMs` before it is due, which the loop turns through), and that an
 * action runs in the first turn of the loop after it is due rather than up to 2 ms later.
 * Unsubscribing clears the timer.
 */
export const unrefScheduler: SchedulerLike = {
  now: () => Date.now(),
  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay?: number, state?: T): Subscription {
    return new UnrefAction(work).schedule(state, delay);
  },
};
