import { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';

/** One scheduled piece of work on a Node timer that does not keep the process alive. */
class UnrefAction<T> extends Subscription implements SchedulerAction<T> {
  private handle: NodeJS.Timeout | undefined;

  constructor(private readonly work: (this: SchedulerAction<T>, state?: T) => void) {
    super(() => {
      clearTimeout(this.handle);
    });
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    clearTimeout(this.handle);
    // Node's timers count whole ms of the loop's monotonic clock, `now()` is `Date.now()`: the two
    // round at different instants, so a timer may fire while `now()` reads a ms short (a 100 ms
    // deadline's `durationMs` read 99 on a busy machine). The work runs no earlier than `delay`
    // by `now()`; a timer that fires short waits out the rest.
    const due = unrefScheduler.now() + delay;
    const fire = (): void => {
      const left = due - unrefScheduler.now();
      if (left > 0) {
        this.arm(fire, left);
        return;
      }
      this.handle = undefined;
      this.work.call(this, state);
    };
    this.arm(fire, delay);
    return this;
  }

  private arm(fire: () => void, ms: number): void {
    this.handle = setTimeout(fire, ms);
    this.handle.unref();
  }
}

/**
 * The default time source: RxJS's `asyncScheduler` semantics (wall-clock `now()`, timers), except
 * that its timers are `unref`'d, so a deadline waiting for a drain never keeps a process alive on
 * its own. Unsubscribing clears the timer.
 */
export const unrefScheduler: SchedulerLike = {
  now: () => Date.now(),
  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay?: number, state?: T): Subscription {
    return new UnrefAction(work).schedule(state, delay);
  },
};
