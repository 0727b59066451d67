import { expect } from 'chai';
import { BehaviorSubject, Observable, Subject, throwError } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { sharedFold } from '../../src/core/shared-fold';

describe('sharedFold', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).to.deep.equal(expected);
    });
  });

  /** Adds each event to the sum; an event of 0 changes nothing and returns the same state. */
  const add = (sum: { n: number }, event: number): { n: number } => (event === 0 ? sum : { n: sum.n + event });

  it('gives the seed at once, then each state the step changes it to', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events$ = hot<number>('--a--b--c', { a: 1, b: 2, c: 3 });
      expectObservable(sharedFold([events$], add, () => ({ n: 10 }))).toBe('s-a--b--c', {
        s: { n: 10 },
        a: { n: 11 },
        b: { n: 13 },
        c: { n: 16 },
      });
    });
  });

  it('emits nothing for an event after which the step returns the same state', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events$ = hot<number>('--a--z--b', { a: 1, z: 0, b: 2 });
      expectObservable(sharedFold([events$], add, () => ({ n: 0 }))).toBe('s-a-----b', {
        s: { n: 0 },
        a: { n: 1 },
        b: { n: 3 },
      });
    });
  });

  it('replays the current state to a late subscriber, then goes on with the others', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events$ = hot<number>('--a--b--c', { a: 1, b: 2, c: 3 });
      const sum$ = sharedFold([events$], add, () => ({ n: 0 }));
      expectObservable(sum$).toBe('s-a--b--c', { s: { n: 0 }, a: { n: 1 }, b: { n: 3 }, c: { n: 6 } });
      expectObservable(sum$, '----^').toBe('----ab--c', { a: { n: 1 }, b: { n: 3 }, c: { n: 6 } });
    });
  });

  it('folds several sources into one state, in the order their events come', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const ones$ = hot<number>('--a-----a', { a: 1 });
      const tens$ = hot<number>('-----b---', { b: 10 });
      expectObservable(sharedFold([ones$, tens$], add, () => ({ n: 0 }))).toBe('s-a--b--c', {
        s: { n: 0 },
        a: { n: 1 },
        b: { n: 11 },
        c: { n: 12 },
      });
    });
  });

  it('subscribes the sources once for all subscribers, and unsubscribes them when the last one leaves', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const events$ = hot<number>('--a--b--c--d', { a: 1, b: 2, c: 3, d: 4 });
      const sum$ = sharedFold([events$], add, () => ({ n: 0 }));
      expectObservable(sum$, '^----!').toBe('s-a--', { s: { n: 0 }, a: { n: 1 } });
      expectObservable(sum$, '---^---!').toBe('---a-b--', { a: { n: 1 }, b: { n: 3 } });
      expectSubscriptions(events$.subscriptions).toBe('^------!');
    });
  });

  it('starts again from a new seed after every subscriber has left', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const events$ = hot<number>('--a--b--c', { a: 1, b: 2, c: 3 });
      let seeds = 0;
      const sum$ = sharedFold([events$], add, () => ({ n: 100 * ++seeds }));
      expectObservable(sum$, '^---!').toBe('s-a--', { s: { n: 100 }, a: { n: 101 } });
      expectObservable(sum$, '------^').toBe('------s-c', { s: { n: 200 }, c: { n: 203 } });
      expectSubscriptions(events$.subscriptions).toBe(['^---!', '------^']);
    });
  });

  it('takes the seed before it subscribes the sources, so that a replaying source adds nothing the seed holds', () => {
    const current = new BehaviorSubject(5);
    const order: string[] = [];
    const seen: number[] = [];
    const last$ = sharedFold<number, number>(
      [new Observable<number>((subscriber) => (order.push('subscribed'), current.subscribe(subscriber)))],
      (_, value) => value,
      () => (order.push('seed'), current.value),
    );
    const subscription = last$.subscribe((value) => seen.push(value));
    current.next(6);
    subscription.unsubscribe();
    expect(order).to.deep.equal(['seed', 'subscribed']);
    expect(seen).to.deep.equal([5, 6]);
  });

  it('hands a change made by a subscriber as it gets the current state to it after that state', () => {
    const events$ = new Subject<number>();
    const sum$ = sharedFold([events$], add, () => ({ n: 0 }));
    const seen: number[] = [];
    const subscription = sum$.subscribe(({ n }) => {
      seen.push(n);
      if (n === 0) events$.next(1);
    });
    subscription.unsubscribe();
    expect(seen).to.deep.equal([0, 1]);
  });

  it('sends an error of a source to every subscriber, and a later subscriber starts a new fold', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const events$ = hot<number>('--a--#', { a: 1 }, new Error('boom'));
      const sum$ = sharedFold([events$], add, () => ({ n: 0 }));
      expectObservable(sum$).toBe('s-a--#', { s: { n: 0 }, a: { n: 1 } }, new Error('boom'));
      expectObservable(sum$, '---^').toBe('---a-#', { a: { n: 1 } }, new Error('boom'));
    });
  });

  it('sends an error that a source throws as it is subscribed to the subscriber, with no state', () => {
    const failing$ = sharedFold([throwError(() => new Error('at once'))], add, () => ({ n: 0 }));
    const seen: unknown[] = [];
    const observer = {
      next: (value: unknown) => seen.push(value),
      error: (error: unknown) => seen.push((error as Error).message),
    };
    const subscriptions = [failing$.subscribe(observer), failing$.subscribe(observer)];
    expect(seen).to.deep.equal(['at once', 'at once']);
    expect(subscriptions.every((s) => s.closed)).to.equal(true);
  });

  it('completes once every source has completed', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const ones$ = hot<number>('--a--|', { a: 1 });
      const tens$ = hot<number>('-----b--|', { b: 10 });
      expectObservable(sharedFold([ones$, tens$], add, () => ({ n: 0 }))).toBe('s-a--b--|', {
        s: { n: 0 },
        a: { n: 1 },
        b: { n: 11 },
      });
    });
  });
});
