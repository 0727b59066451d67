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
    this.handle = setTimeout(() => {
      this.handle = undefined;
      this.work.call(this, state);
    }, delay);
    this.handle.unref();
    return this;
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
