import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { GracefulServer, NotReadyError, fromSignals } from '../src';
import { loopback, portOf, RawClient, waitForValue } from './support/sockets';

/**
 * Bad input, entry point by entry point: each row here is a row of README's bad-input table.
 * Every error is thrown (or rejected) at the call that made it, and leaves nothing half-started.
 */
describe('bad input', function () {
  this.timeout(10000);

  describe('new GracefulServer(server)', () => {
    const notServers: Array<[string, unknown]> = [
      ['undefined', undefined],
      ['null', null],
      ['a plain object', {}],
      ['a port number', 3000],
      ['a string', 'server'],
      ['an object with a listen method', { listen() {} }],
      ['an EventEmitter', new EventEmitter()],
      ['a plain net.Server (not HTTP)', net.createServer()],
      ['a tls.Server (not HTTPS)', tls.createServer()],
    ];
    for (const [what, value] of notServers) {
      it(`throws a TypeError for ${what}`, () => {
        expect(() => new GracefulServer(value as never)).to.throw(TypeError, /expects a Node HTTP server/);
      });
    }
  });

  describe('options', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['options that are not an object', 'fast', /options must be an object/],
      ['options that are null', null, /options must be an object/],
      [
        'a negative timeout',
        { timeout: -1 },
        /options\.timeout must be a finite number of milliseconds from 0 to 2147483647, got -1/,
      ],
      ['a NaN timeout', { timeout: NaN }, /options\.timeout.*got NaN/],
      ['an infinite timeout', { timeout: Infinity }, /options\.timeout.*got Infinity/],
      ['a string timeout', { timeout: '5' }, /options\.timeout.*got "5"/],
      ['a null timeout', { timeout: null }, /options\.timeout.*got null/],
      ['a timeout past what Node timers hold (2^31 ms)', { timeout: 2 ** 31 }, /options\.timeout/],
      ['a negative drainDelay', { drainDelay: -5 }, /options\.drainDelay/],
      ['a huge drainDelay', { drainDelay: 1e12 }, /options\.drainDelay/],
      ['an idleLinger over 1000 ms', { idleLinger: 5000 }, /options\.idleLinger.*from 0 to 1000/],
      ['a negative idleLinger', { idleLinger: -1 }, /options\.idleLinger/],
      ['a non-boolean syncShutdown', { syncShutdown: 'yes' }, /options\.syncShutdown must be a boolean/],
      ['a non-boolean waitForHijacked', { waitForHijacked: 1 }, /options\.waitForHijacked must be a boolean/],
      ['an onConnState that is not a function', { onConnState: 42 }, /options\.onConnState must be a function/],
      ['a scheduler that is not a SchedulerLike', { scheduler: {} }, /options\.scheduler must be an RxJS SchedulerLike/],
      ['a null scheduler', { scheduler: null }, /options\.scheduler/],
      [
        'a negative cancelAhead',
        { cancelAhead: -1 },
        /options\.cancelAhead must be a finite number of milliseconds from 0 to 2147483647, got -1/,
      ],
      ['a NaN cancelAhead', { cancelAhead: NaN }, /options\.cancelAhead.*got NaN/],
      ['a string cancelAhead', { cancelAhead: '100' }, /options\.cancelAhead.*got "100"/],
      ['a cancelAhead past what Node timers hold (2^31 ms)', { cancelAhead: 2 ** 31 }, /options\.cancelAhead/],
      [
        'a misspelt option name, suggesting the right one',
        { timout: 5000 },
        /unknown option "timout" \(did you mean "timeout"\?\)/,
      ],
      [
        'a misspelt option name in another case',
        { DrainDelay: 10 },
        /unknown option "DrainDelay" \(did you mean "drainDelay"\?\)/,
      ],
      ['an unknown option name even when its value is undefined', { signal: undefined }, /unknown option "signal"/],
      [
        'an option name far from any, listing the known ones',
        { port: 3000 },
        /unknown option "port"; the options are timeout, syncShutdown/,
      ],
    ];
    for (const [what, options, message] of cases) {
      it(`throws a TypeError for ${what}, leaving the server untouched`, () => {
        const server = http.createServer();
        expect(() => new GracefulServer(server, options as never)).to.throw(TypeError, message);
        const replaced = ['emit', 'close'].filter((method) => Object.hasOwn(server, method));
        expect(replaced, 'nothing half-started: no method of the server replaced').to.deep.equal([]);
      });
    }
  });

  describe('wrapping a server twice', () => {
    it('throws a TypeError for a server another GracefulServer already wraps, leaving the first one working', async () => {
      const server = http.createServer((_, res) => res.end('ok'));
      const first = new GracefulServer(server);
      expect(() => new GracefulServer(server)).to.throw(TypeError, /a server that another GracefulServer already wraps/);
      const c = await RawClient.connect(portOf(await first.listen(loopback)));
      c.get('/');
      expect(await c.read()).to.deep.include({ status: 200, body: 'ok' });
      c.destroy();
      first.shutdown();
      expect(await first.wait()).to.include({ killed: 0 });
    });

    it('still accepts a server whose first wrapping failed for a bad option', () => {
      const server = http.createServer();
      expect(() => new GracefulServer(server, { timeout: -1 })).to.throw(TypeError);
      expect(() => new GracefulServer(server)).not.to.throw();
    });

    it('refuses a second wrapper even after the first has shut down', async () => {
      const server = http.createServer();
      const first = new GracefulServer(server);
      await first.listen(loopback);
      first.shutdown();
      await first.wait();
      expect(() => new GracefulServer(server)).to.throw(TypeError, /one wrapper for its life/);
    });
  });

  describe('listen() and serve()', () => {
    for (const port of [-1, 70000, 3.5]) {
      it(`rejects port ${port} with Node's RangeError and stays stopped`, async () => {
        const graceful = new GracefulServer(http.createServer());
        const error = await graceful.listen(port).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(RangeError);
        expect((error as NodeJS.ErrnoException).code).to.equal('ERR_SOCKET_BAD_PORT');
        const state = await waitForValue(graceful.state$, () => true, 100, 'the state');
        expect(state.phase).to.equal('stopped');
        const address = await graceful.listen(loopback);
        graceful.shutdown();
        await graceful.wait();
        expect(portOf(address)).to.be.above(0);
      });
    }

    it('rejects a second listen while serving with NotReadyError (quitting false)', async () => {
      const graceful = new GracefulServer(http.createServer());
      const first = graceful.listen(loopback);
      const second = await graceful.listen(loopback).catch((e: unknown) => e);
      expect(second).to.be.instanceOf(NotReadyError).and.include({ quitting: false });
      await first;
      expect(await graceful.serve(loopback).catch((e: unknown) => e)).to.be.instanceOf(NotReadyError);
      graceful.shutdown();
      await graceful.wait();
    });

    it('rejects listen while draining with NotReadyError (quitting true)', async () => {
      const server = http.createServer(() => undefined);
      const graceful = new GracefulServer(server, { timeout: 100 });
      const c = await RawClient.connect(portOf(await graceful.listen(loopback)));
      c.get('/');
      await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the request in flight');
      graceful.shutdown();
      expect(await graceful.listen(loopback).catch((e: unknown) => e))
        .to.be.instanceOf(NotReadyError)
        .and.include({ quitting: true });
      await graceful.wait();
      c.destroy();
    });

    it('accepts a server that was closed before it was wrapped, and listens again', async () => {
      const server = http.createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => server.close(() => resolve())));
      const graceful = new GracefulServer(server);
      expect((await waitForValue(graceful.state$, () => true, 100, 'the state')).phase).to.equal('stopped');
      await graceful.listen(loopback);
      graceful.shutdown();
      await graceful.wait();
    });
  });

  describe('calls in the wrong order', () => {
    it('shutdown(), shutdownOK() and force() before listen do nothing', async () => {
      const graceful = new GracefulServer(http.createServer());
      graceful.shutdown();
      graceful.force();
      expect(graceful.shutdownOK()).to.equal(false);
      expect((await waitForValue(graceful.state$, () => true, 100, 'the state')).phase).to.equal('stopped');
      expect(graceful.connectionsKilled).to.equal(0);
    });

    for (const end of ['complete', 'error'] as const) {
      it(`shutdown$.${end}() leaves shutdown$ working`, async () => {
        const graceful = new GracefulServer(http.createServer());
        if (end === 'complete') graceful.shutdown$.complete();
        else graceful.shutdown$.error(new Error('a broken signal stream'));
        await graceful.listen(loopback);
        graceful.shutdown$.next('SIGTERM');
        expect(await graceful.wait()).to.include({ killed: 0 });
      });
    }

    it('wait() after a finished shutdown resolves at once with that result', async () => {
      const graceful = new GracefulServer(http.createServer());
      await graceful.listen(loopback);
      graceful.shutdown();
      const first = await graceful.wait();
      expect(await graceful.wait()).to.equal(first);
    });
  });

  describe('fromSignals()', () => {
    const cases: Array<[string, unknown[], RegExp]> = [
      ['an unknown signal name', ['SIGFOO'], /"SIGFOO".*not a signal name/],
      ['a signal number', [15], /15.*not a signal name/],
      ['no signal at all', [], /at least one signal/],
      ['SIGKILL, which no process can catch', ['SIGKILL'], /"SIGKILL".*no process can catch/],
      ['SIGSTOP, which no process can catch', ['SIGSTOP'], /"SIGSTOP".*no process can catch/],
    ];
    for (const [what, args, message] of cases) {
      it(`throws a TypeError for ${what}`, () => {
        expect(() => fromSignals(...(args as NodeJS.Signals[]))).to.throw(TypeError, message);
      });
    }
  });

  it('names NotReadyError and gives quitting to branch on', () => {
    const error = new NotReadyError(true);
    expect(error).to.be.instanceOf(Error).and.include({ name: 'NotReadyError', quitting: true });
    expect(error.message).to.match(/shutting down/);
  });
});
