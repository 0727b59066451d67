import { Observable, Subscriber } from 'rxjs';

/**
 * A hot stream that never ends, for values sent on every request: `next(value)` hands the value to
 * each subscriber of `values$`, in the order they subscribed. What a `Subject` does for this,
 * without a closure and an array iterator per value (RxJS 7's `Subject#next` makes one of each);
 * it has no `error` or `complete`, and only its owner can send.
 *
 * @example
 * const clicks = new Broadcast<number>();
 * clicks.values$.subscribe((x) => console.log(x));
 * clicks.next(1);
 */
export class Broadcast<T> {
  readonly values$: Observable<T>;
  /** Replaced, never changed in place: a value goes on to the subscribers there were when it was sent. */
  private subscribers: readonly Subscriber<T>[] = [];

  constructor() {
    this.values$ = new Observable<T>((subscriber) => {
      this.subscribers = [...this.subscribers, subscriber];
      return () => {
        this.subscribers = this.subscribers.filter((s) => s !== subscriber);
      };
    });
  }

  /** True while `values$` has a subscriber: a value that nobody would see need not be made. */
  get observed(): boolean {
    return this.subscribers.length > 0;
  }

  next(value: T): void {
    const subscribers = this.subscribers;
    for (let i = 0; i < subscribers.length; i++) (subscribers[i] as Subscriber<T>).next(value);
  }
}
