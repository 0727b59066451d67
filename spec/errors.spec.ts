import { expect } from 'chai';
import * as http from 'node:http';
import { GracefulServer, NotReadyError } from '../src';

describe('bad input', () => {
  it('throws a TypeError naming timeout for a negative, NaN, infinite or non-number value', () => {
    for (const timeout of [-1, NaN, Infinity, '5', null]) {
      const server = http.createServer();
      const emit = server.emit;
      expect(() => new GracefulServer(server, { timeout } as never), String(timeout)).to.throw(TypeError, /options\.timeout/);
      expect(server.emit, 'nothing half-started: the server is untouched').to.equal(emit);
    }
  });

  it('throws a TypeError for a first argument that is not a Node server', () => {
    for (const value of [undefined, null, {}, 3000, 'server', { listen() {} }]) {
      expect(() => new GracefulServer(value as never), String(value)).to.throw(TypeError, /expects a Node server/);
    }
  });

  it('throws a TypeError for bad drainDelay, idleLinger, syncShutdown, onConnState and scheduler', () => {
    const cases: Array<[object, RegExp]> = [
      [{ drainDelay: -5 }, /drainDelay/],
      [{ idleLinger: 5000 }, /idleLinger.*0 to 1000/],
      [{ syncShutdown: 'yes' }, /syncShutdown/],
      [{ onConnState: 42 }, /onConnState/],
      [{ scheduler: {} }, /scheduler/],
    ];
    for (const [options, message] of cases) {
      expect(() => new GracefulServer(http.createServer(), options as never)).to.throw(TypeError, message);
    }
  });

  it('names NotReadyError and gives quitting to branch on', () => {
    const error = new NotReadyError(true);
    expect(error).to.be.instanceOf(Error).and.include({ name: 'NotReadyError', quitting: true });
    expect(error.message).to.match(/shutting down/);
  });
});
