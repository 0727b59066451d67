import { expect } from 'chai';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { GracefulServer } from '../../src';
import { afterEachTest, serveForTest } from '../support/servers';
import {
  blockEventLoop,
  connectOutcome,
  loopback,
  portOf,
  RawClient,
  testCertificate,
  waitForValue,
  withDeadline,
} from '../support/sockets';

/**
 * The drain judged on bytes, not on the clock (DESIGN.md, "Drain semantics" point 2): a request
 * that the client sent before the shutdown, and that sat unread in the socket's receive buffer
 * while the event loop was busy, is served with `Connection: close`, never cut. Every case runs
 * with `idleLinger: 0`, so that nothing but the bytes can save the request, and blocks the loop
 * for 100 ms right after the request is written and `shutdown()` is called.
 */

const rounds = 5;
const blockMs = 100;

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.end(`body of ${req.url}`);
}

describe('the drain on a busy event loop: idle is judged on bytes (HTTP/1.1 and HTTPS)', function () {
  this.timeout(30000);
  const cleanup = afterEachTest();

  for (const kind of [
    { name: 'HTTP/1.1', make: () => http.createServer(handler), tls: false },
    { name: 'HTTPS', make: () => https.createServer(testCertificate, handler), tls: true },
  ]) {
    it(`${kind.name}: serves with Connection: close a request sent on a reused keep-alive connection just before shutdown()`, async () => {
      for (let round = 0; round < rounds; round++) {
        const { graceful, client } = await serveForTest(kind.make(), { timeout: 5000, idleLinger: 0 }, cleanup, {
          tls: kind.tls,
        });
        const c = await client();
        c.get('/first');
        expect((await c.read()).headers.connection).to.equal('keep-alive');
        await waitForValue(graceful.state$, (s) => s.idle === 1 && s.active === 0, 2000, 'the connection idle');
        c.get('/sent-before-shutdown');
        graceful.shutdown();
        blockEventLoop(blockMs);
        const response = await c.read();
        expect(response, `round ${round}`).to.deep.include({ status: 200, body: 'body of /sent-before-shutdown' });
        expect(response.headers.connection).to.equal('close');
        expect(await graceful.wait()).to.include({ killed: 0, drained: 1, closedIdle: 0 });
      }
    });

    it(`${kind.name}: serves with Connection: close the first request of a fresh connection sent just before shutdown()`, async () => {
      for (let round = 0; round < rounds; round++) {
        const { graceful, client } = await serveForTest(kind.make(), { timeout: 5000, idleLinger: 0 }, cleanup, {
          tls: kind.tls,
        });
        const c = await client();
        await waitForValue(graceful.state$, (s) => s.open === 1, 2000, 'the fresh connection accepted');
        c.get('/first-request');
        graceful.shutdown();
        blockEventLoop(blockMs);
        const response = await c.read();
        expect(response, `round ${round}`).to.deep.include({ status: 200, body: 'body of /first-request' });
        expect(response.headers.connection).to.equal('close');
        expect(await graceful.wait()).to.include({ killed: 0, drained: 1, closedIdle: 0 });
      }
    });
  }

  it('serves a connection the kernel completed before the listener closed (the accept queue), then refuses newcomers', async () => {
    for (let round = 0; round < rounds; round++) {
      const { graceful, port } = await serveForTest(http.createServer(handler), { timeout: 5000, idleLinger: 0 }, cleanup);
      // The handshake completes in the kernel at once; the server's loop has not accepted it yet.
      const c = await withDeadline(RawClient.connect(port), 2000, 'the connection');
      c.get('/queued');
      graceful.shutdown();
      blockEventLoop(blockMs);
      const response = await c.read();
      cleanup.push(() => c.destroy());
      expect(response, `round ${round}`).to.deep.include({ status: 200, body: 'body of /queued' });
      expect(response.headers.connection).to.equal('close');
      await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
      expect(await connectOutcome(port)).to.equal('ECONNREFUSED');
      await graceful.wait();
    }
  });

  it('keeps the connection of a request still arriving (half a head) open, and serves it when it completes', async () => {
    const { graceful, client } = await serveForTest(http.createServer(handler), { timeout: 5000, idleLinger: 0 }, cleanup);
    const c = await client();
    await waitForValue(graceful.state$, (s) => s.open === 1, 2000, 'the fresh connection accepted');
    c.send('GET /half HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    graceful.shutdown();
    blockEventLoop(blockMs);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(c.closed, 'closed under a request head').to.equal(false);
    c.send('x-id: half\r\n\r\n');
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'body of /half' });
    expect(response.headers.connection).to.equal('close');
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });
});

/** Opens a stream on `session` and resolves with its status and body, or the error that ended it. */
function request(session: http2.ClientHttp2Session, path: string): Promise<{ status?: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    let status: number | undefined;
    let body = '';
    const stream = session.request({ ':path': path });
    stream.setEncoding('utf8');
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('error', (error: NodeJS.ErrnoException) => resolve({ body, error: error.code ?? error.message }));
    stream.on('close', () =>
      resolve(status === undefined ? { body, error: `closed with RST_STREAM ${stream.rstCode}` } : { status, body }),
    );
    stream.end();
  });
}

describe('the drain on a busy event loop: idle is judged on bytes (HTTP/2)', function () {
  this.timeout(30000);
  const cleanup = afterEachTest();

  async function start(): Promise<{ graceful: GracefulServer; session: http2.ClientHttp2Session }> {
    const server = http2.createServer((req, res) => res.end(`body of ${req.url}`));
    const graceful = new GracefulServer(server, { timeout: 5000, idleLinger: 0 });
    const port = portOf(await graceful.listen(loopback));
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    cleanup.push(() => {
      session.destroy();
      server.close();
    });
    await waitForValue(graceful.state$, (s) => s.open === 1, 2000, 'the session accepted');
    return { graceful, session };
  }

  /**
   * Node's client writes a stream's frames from a native immediate, which runs before the
   * JavaScript immediates of the same check phase: the shutdown and the busy-wait below come
   * after the frames are in the kernel and before the server's next poll phase reads them.
   */
  function shutdownAfterTheFramesAreSent(graceful: GracefulServer): Promise<void> {
    return new Promise((resolve) =>
      setImmediate(() => {
        graceful.shutdown();
        blockEventLoop(blockMs);
        resolve();
      }),
    );
  }

  it('serves a stream opened on a reused idle session just before shutdown()', async () => {
    for (let round = 0; round < rounds; round++) {
      const { graceful, session } = await start();
      expect(await request(session, '/first')).to.include({ status: 200 });
      await waitForValue(graceful.state$, (s) => s.idle === 1 && s.active === 0, 2000, 'the session idle');
      const answered = request(session, '/sent-before-shutdown');
      await shutdownAfterTheFramesAreSent(graceful);
      expect(await answered, `round ${round}`).to.deep.equal({ status: 200, body: 'body of /sent-before-shutdown' });
      expect(await graceful.wait()).to.include({ killed: 0, drained: 1, closedIdle: 0 });
    }
  });

  it('serves the first stream of a fresh session sent just before shutdown()', async () => {
    for (let round = 0; round < rounds; round++) {
      const { graceful, session } = await start();
      const answered = request(session, '/first-stream');
      await shutdownAfterTheFramesAreSent(graceful);
      expect(await answered, `round ${round}`).to.deep.equal({ status: 200, body: 'body of /first-stream' });
      expect(await graceful.wait()).to.include({ killed: 0, drained: 1, closedIdle: 0 });
    }
  });
});
