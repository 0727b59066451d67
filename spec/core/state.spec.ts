import { expect } from 'chai';
import { scan } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { foldState, initialState, ServerState } from '../../src/core/state';
import { change } from '../support/fake-host';

describe('foldState', () => {
  const serving = foldState(initialState, { phase: 'serving', accepting: true, killed: 0 });

  it('counts a new connection as open and idle', () => {
    expect(foldState(serving, change(1, 'new'))).to.include({ open: 1, active: 0, idle: 1 });
  });

  it('moves a connection between idle and active without changing open', () => {
    const active = [change(1, 'new'), change(1, 'active', 'new')].reduce(foldState, serving);
    expect(active).to.include({ open: 1, active: 1, idle: 0 });
    expect(foldState(active, change(1, 'idle', 'active'))).to.include({ open: 1, active: 0, idle: 1 });
  });

  it('takes a hijacked connection out of the tracked set, and its close changes nothing', () => {
    const hijacked = [change(1, 'new'), change(1, 'hijacked', 'new')].reduce(foldState, serving);
    expect(hijacked).to.include({ open: 0, active: 0, idle: 0 });
    expect(foldState(hijacked, change(1, 'closed', 'hijacked'))).to.equal(hijacked);
  });

  it('returns the same object for an event that changes nothing', () => {
    expect(foldState(serving, { phase: 'serving', accepting: true, killed: 0 })).to.equal(serving);
  });

  it('folds a stream of changes in order (scan)', () => {
    new TestScheduler((a, b) => {
      expect(a).to.deep.equal(b);
    }).run(({ cold, expectObservable }) => {
      const events = cold('abcd', {
        a: change(1, 'new'),
        b: change(2, 'new'),
        c: change(1, 'active', 'new'),
        d: change(2, 'closed', 'new'),
      });
      const counts = (open: number, active: number): ServerState => ({ ...serving, open, active, idle: open - active });
      expectObservable(events.pipe(scan(foldState, serving))).toBe('abcd', {
        a: counts(1, 0),
        b: counts(2, 0),
        c: counts(2, 1),
        d: counts(1, 1),
      });
    });
  });
});
