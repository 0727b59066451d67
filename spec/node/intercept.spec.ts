import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import * as net from 'node:net';
import { Delivery, interceptClose, interceptEmit } from '../../src/node/intercept';
import { loopback } from '../support/sockets';

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

  it('hands the listeners exactly the arguments the event came with, however many, with the emitter as this', () => {
    for (const delivery of ['deliver', 'deliver-and-notify'] as const) {
      const { emitter } = intercepted(() => delivery);
      const calls: { self: unknown; args: unknown[] }[] = [];
      emitter.on('e', function (this: unknown, ...args: unknown[]) {
        calls.push({ self: this, args });
      });
      emitter.emit('e');
      emitter.emit('e', 1);
      emitter.emit('e', 1, undefined);
      emitter.emit('e', 1, 2, 3);
      emitter.emit('e', 1, 2, 3, 4);
      expect(calls.map((c) => c.args)).to.deep.equal([[], [1], [1, undefined], [1, 2, 3], [1, 2, 3, 4]], delivery);
      expect(calls.every((c) => c.self === emitter)).to.equal(true);
    }
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

  it('gives every emitter the same emit, each reaching its own interceptor: no closure per server for V8 to tell apart', () => {
    const first = intercepted(() => 'deliver');
    const second = intercepted(() => 'withhold');
    expect(Reflect.get(first.emitter, 'emit')).to.equal(Reflect.get(second.emitter, 'emit'));
    expect(first.emitter.emit('request', 1)).to.equal(true);
    expect(second.emitter.emit('request', 2)).to.equal(true);
    expect(first.seen).to.deep.equal(['intercept request 1', 'listener 1']);
    expect(second.seen).to.deep.equal(['intercept request 2']);
  });

  it('calls an emit of its own that the emitter had, with the arguments as they came', () => {
    const calls: unknown[][] = [];
    class Custom extends EventEmitter {
      override emit(event: string | symbol, ...args: unknown[]): boolean {
        calls.push([event, ...args]);
        return super.emit(event, ...args);
      }
    }
    const emitter = new Custom();
    const seen: string[] = [];
    interceptEmit(emitter, {
      intercept: (event) => {
        seen.push(`intercept ${String(event)}`);
        return event === 'notify' ? 'deliver-and-notify' : 'deliver';
      },
      delivered: () => seen.push('delivered'),
    });
    emitter.on('request', (value: unknown) => seen.push(`listener ${String(value)}`));
    expect(emitter.emit('request', 1, 2)).to.equal(true);
    expect(emitter.emit('notify')).to.equal(false);
    expect(calls).to.deep.equal([['request', 1, 2], ['notify']]);
    expect(seen).to.deep.equal(['intercept request', 'listener 1', 'intercept notify', 'delivered']);
  });

  it('intercepts an emitter twice, the newer interceptor first, and restores each in turn', () => {
    const { emitter, seen, restore } = intercepted(() => 'deliver');
    const outer = interceptEmit(emitter, {
      intercept: (event) => {
        seen.push(`outer ${String(event)}`);
        return 'deliver';
      },
      delivered: () => undefined,
    });
    emitter.emit('request', 1);
    outer();
    emitter.emit('request', 2);
    restore();
    emitter.emit('request', 3);
    expect(seen).to.deep.equal([
      'outer request',
      'intercept request 1',
      'listener 1',
      'intercept request 2',
      'listener 2',
      'listener 3',
    ]);
    expect(Object.getOwnPropertySymbols(emitter)).to.deep.equal(Object.getOwnPropertySymbols(new EventEmitter()));
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

describe('interceptClose', () => {
  const servers: net.Server[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) if (server.listening) net.Server.prototype.close.call(server);
  });

  /** A plain TCP server whose close() goes to `takeOver` first. */
  function intercepted(takeOver: () => Promise<unknown> | undefined) {
    const server = net.createServer();
    servers.push(server);
    const restore = interceptClose(server, takeOver);
    return { server, restore };
  }

  it('lets takeOver have the close: the server keeps listening, and the callback runs, with no argument, once its promise has resolved', async () => {
    let finish = (): void => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let offered = 0;
    const { server } = intercepted(() => {
      offered += 1;
      return finished;
    });
    server.listen(loopback);
    await once(server, 'listening');
    const calls: unknown[][] = [];
    expect(server.close((...args: unknown[]) => calls.push(args))).to.equal(server);
    await new Promise((resolve) => setImmediate(resolve));
    expect({ offered, calls, listening: server.listening }).to.deep.equal({ offered: 1, calls: [], listening: true });
    finish();
    await finished;
    expect(calls).to.deep.equal([[]]);
  });

  it("runs Node's own close when takeOver declines: on a server that is not listening, the callback gets ERR_SERVER_NOT_RUNNING", async () => {
    const { server } = intercepted(() => undefined);
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => server.close(resolve));
    expect(error?.code).to.equal('ERR_SERVER_NOT_RUNNING');
  });

  it("puts the server's own close back on restore", async () => {
    let offered = 0;
    const { server, restore } = intercepted(() => {
      offered += 1;
      return Promise.resolve();
    });
    restore();
    expect(Object.prototype.hasOwnProperty.call(server, 'close')).to.equal(false);
    server.listen(loopback);
    await once(server, 'listening');
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect({ offered, listening: server.listening }).to.deep.equal({ offered: 0, listening: false });
  });
});
