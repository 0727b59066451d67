import { Observable, Subscriber, Subscription } from 'rxjs';
import type { Observer } from 'rxjs';

/** How the sources ended the fold: an error, or all of them completed. */
type Ending = { readonly error: unknown } | 'complete';

/**
 * One fold of several event streams, shared by every subscriber: each subscriber gets the current
 * state at once, then each state a step changes it to; a step that returns the same object emits
 * nothing. The first subscriber starts the fold from `seed()` and subscribes the sources; when the
 * last one leaves, the sources are unsubscribed and the next subscriber starts again from a new
 * seed. An error of a source goes to every subscriber and ends the fold, as does the completion
 * of all of them; the next subscriber starts a new one.
 *
 * What `scan` + `distinctUntilChanged` + `share` with a replaying connector do, without an operator
 * chain per event: an event costs one call of `step` and, on a change, one `next` per subscriber
 * (`state$` folds two connection changes per request).
 *
 * `seed()` runs just before the sources are subscribed, synchronously, so a source must carry only
 * what happens after the seed was taken (a hot stream), or what the seed already holds (a
 * `BehaviorSubject` whose value it folded in: the step returns the same state, nothing is emitted).
 *
 * @example
 * const count$ = sharedFold([clicks$], (n: number) => n + 1, () => 0);
 */
export function sharedFold<S, E>(
  sources: readonly Observable<E>[],
  step: (state: S, event: E) => S,
  seed: () => S,
): Observable<S> {
  /** Replaced, never changed in place: an emission goes on over the list it started with. */
  let subscribers: readonly Subscriber<S>[] = [];
  let connection: Subscription | undefined;
  let state: S;
  /** Set while the sources are being subscribed, for one that ends the fold at once. */
  let endedAtOnce: Ending | undefined;

  const end = (ending: Ending): void => {
    endedAtOnce = ending;
    const gone = subscribers;
    subscribers = [];
    connection?.unsubscribe();
    connection = undefined;
    for (const subscriber of gone) finish(subscriber, ending);
  };
  /** Starts the fold; returns how it ended if a source ended it while being subscribed. */
  const connect = (): Ending | undefined => {
    state = seed();
    let open = sources.length;
    const observer: Observer<E> = {
      next: (event) => {
        const next = step(state, event);
        if (next === state) return;
        state = next;
        const list = subscribers;
        for (let i = 0; i < list.length; i++) (list[i] as Subscriber<S>).next(next);
      },
      error: (error: unknown) => {
        end({ error });
      },
      complete: () => {
        if (--open === 0) end('complete');
      },
    };
    const sources$ = new Subscription();
    connection = sources$;
    endedAtOnce = undefined;
    for (const source of sources) {
      if (sources$.closed) break;
      sources$.add(source.subscribe(observer));
    }
    return sources$.closed ? endedAtOnce : undefined;
  };

  return new Observable<S>((subscriber) => {
    const ending = connection === undefined ? connect() : undefined;
    if (ending !== undefined) {
      finish(subscriber, ending);
      return undefined;
    }
    const mine = connection;
    subscribers = [...subscribers, subscriber];
    subscriber.next(state);
    return () => {
      subscribers = subscribers.filter((s) => s !== subscriber);
      if (subscribers.length === 0 && connection === mine) {
        connection?.unsubscribe();
        connection = undefined;
      }
    };
  });
}

function finish<S>(subscriber: Subscriber<S>, ending: Ending): void {
  if (ending === 'complete') subscriber.complete();
  else subscriber.error(ending.error);
}
