import { expect } from 'chai';
import { once } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { GracefulOptions, GracefulServer, RequestAbortedError, RequestAbortKind } from '../../src';
import { closeAfterTest, h2cKind, Handler, httpKind, serveKind, ServerKind, serverKinds } from '../support/server-kinds';
import { afterEachTest } from '../support/servers';
import { loopback, portOf, RawClient, until, waitForValue, withDeadline } from '../support/sockets';

/** One request as its handler saw it: the signal it asked for, and what was true when that signal aborted. */
interface Asked {
  readonly path: string;
  readonly signal: AbortSignal;
  /** The second ask gave the same signal. */
  readonly same: boolean;
  /** When it aborted: was the connection (HTTP/1 socket, HTTP/2 stream) already destroyed? */
  destroyedAtAbort?: boolean;
  /** When it aborted, in ms of `performance.now()`. */
  abortedAt?: number;
}

/**
 * The application of these specs: every handler asks for its request's signal. `/now` is answered
 * at once, `/answer-on-abort` with a 503 when its signal aborts, `/hang` never.
 */
function signalApp(): { handler: Handler; asked: Asked[]; attach: (graceful: GracefulServer) => void } {
  const asked: Asked[] = [];
  let graceful: GracefulServer | undefined;
  const handler: Handler = (req, res) => {
    if (graceful === undefined) throw new Error('a request before the server was wrapped');
    const path = String(req.url);
    const signal = graceful.abortSignal(req);
    const entry: Asked = { path, signal, same: graceful.abortSignal(req) === signal };
    asked.push(entry);
    signal.addEventListener('abort', () => {
      entry.abortedAt = performance.now();
      entry.destroyedAtAbort = 'stream' in req ? req.stream.destroyed : req.socket.destroyed;
      if (path === '/answer-on-abort') {
        res.statusCode = 503;
        res.end('gave up');
      }
    });
    if (path === '/now') res.end('ok');
  };
  return { handler, asked, attach: (g) => (graceful = g) };
}

/** `signal`'s reason, once it has aborted (within `ms`). */
async function abortReason(signal: AbortSignal, ms = 3000): Promise<unknown> {
  if (!signal.aborted) await withDeadline(once(signal, 'abort'), ms, 'the signal to abort');
  return signal.reason;
}

/** Checks that `reason` is a `RequestAbortedError` of `kind`. */
function expectAbortedFor(reason: unknown, kind: RequestAbortKind): void {
  expect(reason).to.be.instanceOf(RequestAbortedError).and.include({ name: 'RequestAbortedError', kind });
}

describe('abortSignal(req)', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  async function serve<K extends ServerKind>(kind: K, options: GracefulOptions = {}) {
    const app = signalApp();
    const served = await serveKind(kind, app.handler, { timeout: 5000, idleLinger: 0, ...options }, cleanup);
    app.attach(served.graceful);
    /** The entry of the `n`-th request (from 1) once its handler has asked. */
    const nth = async (n: number): Promise<Asked> => {
      await until(() => app.asked.length >= n, 2000, `request ${n} to reach its handler`);
      const entry = app.asked[n - 1];
      if (entry === undefined) throw new Error(`no request ${n}`);
      return entry;
    };
    return { ...served, asked: app.asked, nth };
  }

  for (const kind of serverKinds) {
    describe(kind.name, () => {
      it('aborts with client-gone when the client goes away before the response has finished', async () => {
        const { connect, nth } = await serve(kind);
        const c = await connect();
        void c.request('/hang');
        const { signal, same } = await nth(1);
        expect(same, 'the same signal for the same request').to.equal(true);
        expect(signal.aborted).to.equal(false);
        c.destroy();
        expectAbortedFor(await abortReason(signal), 'client-gone');
      });

      it('never aborts for a response that has finished, even when its connection closes later', async () => {
        const { graceful, connect, nth } = await serve(kind);
        const c = await connect();
        expect(await c.request('/now')).to.deep.include({ status: 200, body: 'ok' });
        const { signal } = await nth(1);
        c.destroy();
        await waitForValue(graceful.state$, (s) => s.open === 0, 2000, 'the connection to close');
        expect(signal.aborted).to.equal(false);
      });

      it('aborts with forced on force(), before the connection is destroyed', async () => {
        const { graceful, connect, nth } = await serve(kind);
        const c = await connect();
        void c.request('/hang');
        const entry = await nth(1);
        graceful.shutdown();
        const done = graceful.wait();
        graceful.force();
        expectAbortedFor(await abortReason(entry.signal, 0), 'forced');
        expect(entry.destroyedAtAbort, 'the connection was still open when the signal aborted').to.equal(false);
        expect(await done).to.include({ forced: true, killed: 1 });
      });

      it('aborts cancelAhead before the deadline, and the 503 its handler then sends reaches the client', async () => {
        const { graceful, connect, nth } = await serve(kind, { timeout: 1500, cancelAhead: 1200 });
        const c = await connect();
        const reply = c.request('/answer-on-abort');
        const entry = await nth(1);
        const started = performance.now();
        graceful.shutdown();
        expect(await withDeadline(reply, 3000, 'the 503')).to.deep.include({ status: 503, body: 'gave up' });
        expectAbortedFor(entry.signal.reason, 'deadline');
        expect((entry.abortedAt ?? 0) - started, 'aborted 1500 - 1200 ms after the shutdown began').to.be.within(290, 1400);
        expect(await graceful.wait()).to.include({ killed: 0, timedOut: false, drained: 1 });
      });
    });
  }

  describe(httpKind.name, () => {
    it('counts the deadline from the end of drainDelay, and aborts as the drain begins when cancelAhead ≥ timeout', async () => {
      const { graceful, connect, nth } = await serve(httpKind, { drainDelay: 300, timeout: 500, cancelAhead: 800 });
      const c = await connect();
      void c.request('/hang');
      const entry = await nth(1);
      const started = performance.now();
      graceful.shutdown();
      expectAbortedFor(await abortReason(entry.signal), 'deadline');
      expect((entry.abortedAt ?? 0) - started, 'aborted when the 300 ms delay ended, before the deadline at 800').to.be.within(
        290,
        780,
      );
      expect(await graceful.wait()).to.include({ killed: 1, timedOut: true });
    });

    it('with timeout 0, a shutdown alone does not abort: only force() does', async () => {
      const { graceful, connect, nth } = await serve(httpKind, { timeout: 0, cancelAhead: 1000 });
      const c = await connect();
      void c.request('/hang');
      const entry = await nth(1);
      graceful.shutdown();
      await waitForValue(graceful.state$, (s) => s.phase === 'draining' && !s.accepting, 2000, 'the listener to close');
      expect(entry.signal.aborted, 'not aborted by the shutdown').to.equal(false);
      graceful.force();
      expectAbortedFor(await abortReason(entry.signal, 0), 'forced');
    });

    it('gives a request that asks once the work was cancelled a signal aborted for the same reason', async () => {
      const { graceful, connect, nth } = await serve(httpKind, { timeout: 2000, cancelAhead: 2000, idleLinger: 1000 });
      const idle = await connect();
      expect(await idle.request('/now')).to.deep.include({ status: 200 });
      const busy = await connect();
      void busy.request('/hang');
      const inFlight = await nth(2);
      graceful.shutdown();
      expectAbortedFor(await abortReason(inFlight.signal), 'deadline');
      const late = idle.request('/now'); // served during the idle linger, with Connection: close
      const asked = await nth(3);
      expect(await late).to.deep.include({ status: 200, closing: true });
      expectAbortedFor(asked.signal.reason, 'deadline');
      busy.destroy();
      await graceful.wait();
    });

    it('follows its exchange again in the next cycle: no reason left over from the last shutdown', async () => {
      const { graceful, connect, nth } = await serve(httpKind, { timeout: 100, cancelAhead: 100 });
      const first = await connect();
      void first.request('/hang');
      graceful.shutdown();
      expectAbortedFor(await abortReason((await nth(1)).signal), 'deadline');
      await graceful.wait();
      const port = portOf(await graceful.listen(loopback));
      const c = await httpKind.connect(port);
      cleanup.push(() => c.destroy());
      expect(await c.request('/now')).to.deep.include({ status: 200 });
      expect((await nth(2)).signal.aborted).to.equal(false);
    });

    it('aborts with client-gone a request whose response is queued behind another on its connection (pipelined)', async () => {
      const { connect, nth } = await serve(httpKind);
      const c = await connect();
      c.raw.send('GET /hang HTTP/1.1\r\nHost: x\r\n\r\nGET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
      const [first, second] = [await nth(1), await nth(2)];
      c.destroy();
      expectAbortedFor(await abortReason(first.signal), 'client-gone');
      expectAbortedFor(await abortReason(second.signal), 'client-gone');
    });

    it('throws a TypeError for something that is not a request, naming it', async () => {
      const { graceful } = await serve(httpKind);
      expect(() => graceful.abortSignal('GET /' as never)).to.throw(
        TypeError,
        /expects an http\.IncomingMessage or an http2\.Http2ServerRequest, got "GET \/"/,
      );
      expect(() => graceful.abortSignal(undefined as never)).to.throw(TypeError, /got undefined/);
    });

    it('throws a TypeError for a request that another server received', async () => {
      const { graceful } = await serve(httpKind);
      let thrown: unknown;
      const other = http.createServer((req, res) => {
        try {
          graceful.abortSignal(req);
        } catch (error) {
          thrown = error;
        }
        res.end('ok');
      });
      closeAfterTest(other, cleanup);
      await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
      const c = await RawClient.connect(portOf(other.address() ?? ''));
      cleanup.push(() => c.destroy());
      c.get('/');
      await c.read();
      expect(thrown).to.be.instanceOf(TypeError);
      expect((thrown as Error).message).to.match(/that this GracefulServer's server did not receive/);
    });
  });

  describe(h2cKind.name, () => {
    it('aborts with client-gone when the client cancels the stream (RST_STREAM CANCEL), the session staying open', async () => {
      const { connect, nth } = await serve(h2cKind);
      const client = await connect();
      const stream = client.session.request({ ':path': '/hang' });
      stream.on('error', () => undefined);
      stream.end();
      const { signal } = await nth(1);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      expectAbortedFor(await abortReason(signal), 'client-gone');
      expect(client.session.closed).to.equal(false);
    });
  });
});
