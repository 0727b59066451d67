import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { Delivery, interceptEmit } from '../../src/node/intercept';

describe('interceptEmit', () => {
  function intercepted(decide: (event: string | symbol) => Delivery) {
    const emitter = new EventEmitter();
    const seen: string[] = [];
    const restore = interceptEmit(emitter, {
      intercept: (event, first) => {
        seen.push(`intercept ${String(event)} ${String(first)}`);
        return decide(event);
      },
      delivered: () => seen.push('delivered'),
    });
    emitter.on('request', (value: unknown) => seen.push(`listener ${String(value)}`));
    return { emitter, seen, restore };
  }

  it('shows each event to the interceptor before any listener, then delivers it', () => {
    const { emitter, seen } = intercepted(() => 'deliver');
    expect(emitter.emit('request', 1)).to.equal(true);
    expect(seen).to.deep.equal(['intercept request 1', 'listener 1']);
  });

  it('keeps a withheld event from the listeners, and the emit returns true as if one had taken it', () => {
    const { emitter, seen } = intercepted(() => 'withhold');
    expect(emitter.emit('request', 1)).to.equal(true);
    expect(seen).to.deep.equal(['intercept request 1']);
  });

  it('calls delivered() once the listeners of a deliver-and-notify event have run, even when one throws', () => {
    const { emitter, seen } = intercepted(() => 'deliver-and-notify');
    emitter.emit('request', 1);
    emitter.on('request', () => {
      throw new Error('a listener failed');
    });
    expect(() => emitter.emit('request', 2)).to.throw('a listener failed');
    expect(seen).to.deep.equal([
      'intercept request 1',
      'listener 1',
      'delivered',
      'intercept request 2',
      'listener 2',
      'delivered',
    ]);
  });

  it("puts the emitter's own emit back on restore, unless something has replaced it since", () => {
    const { emitter, seen, restore } = intercepted(() => 'deliver');
    restore();
    expect(Object.prototype.hasOwnProperty.call(emitter, 'emit')).to.equal(false);
    emitter.emit('request', 1);
    expect(seen).to.deep.equal(['listener 1']);

    const again = intercepted(() => 'deliver');
    again.emitter.emit = (): boolean => false;
    again.restore();
    expect(again.emitter.emit('request', 2)).to.equal(false);
    expect(again.seen).to.deep.equal([]);
  });
});
