import { expect } from 'chai';
import { Broadcast } from '../../src/core/broadcast';

describe('Broadcast', () => {
  it('hands each value to every subscriber there is, in the order they subscribed', () => {
    const broadcast = new Broadcast<number>();
    const seen: string[] = [];
    broadcast.next(0);
    const a = broadcast.values$.subscribe((x) => seen.push(`a${x}`));
    broadcast.next(1);
    const b = broadcast.values$.subscribe((x) => seen.push(`b${x}`));
    broadcast.next(2);
    a.unsubscribe();
    broadcast.next(3);
    b.unsubscribe();
    expect(seen).to.deep.equal(['a1', 'a2', 'b2', 'b3']);
  });

  it('says whether anybody listens', () => {
    const broadcast = new Broadcast<number>();
    expect(broadcast.observed).to.equal(false);
    const subscription = broadcast.values$.subscribe(() => undefined);
    expect(broadcast.observed).to.equal(true);
    subscription.unsubscribe();
    expect(broadcast.observed).to.equal(false);
  });

  it('stops handing values to a subscriber that leaves while a value is being handed out', () => {
    const broadcast = new Broadcast<number>();
    const seen: string[] = [];
    const first = broadcast.values$.subscribe((x) => {
      seen.push(`first${x}`);
      second.unsubscribe();
    });
    const second = broadcast.values$.subscribe((x) => seen.push(`second${x}`));
    broadcast.next(1);
    broadcast.next(2);
    first.unsubscribe();
    expect(seen).to.deep.equal(['first1', 'first2']);
  });
});
