import { expect } from 'chai';
import * as http2 from 'node:http2';
import { GracefulServer } from '../../src';
import { loopback, portOf, RawClient, testCertificate, until, waitForValue, withDeadline } from '../support/sockets';

type H2Server = http2.Http2Server | http2.Http2SecureServer;

/** A stream's outcome as the client saw it. */
interface StreamResult {
  status?: number | undefined;
  body: string;
  error?: string;
}

function request(client: http2.ClientHttp2Session, path: string): Promise<StreamResult> {
  return new Promise((resolve) => {
    let status: number | undefined;
    let body = '';
    let stream: http2.ClientHttp2Stream;
    try {
      stream = client.request({ ':path': path });
    } catch (error) {
      resolve({ body, error: (error as NodeJS.ErrnoException).code ?? String(error) });
      return;
    }
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    let error: string | undefined;
    stream.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    stream.on('close', () => {
      // A stream reset by the server ends with a non-zero RST_STREAM code (8 is CANCEL).
      if (error === undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) error = `RST_STREAM ${stream.rstCode}`;
      resolve(error === undefined ? { status, body } : { status, body, error });
    });
    stream.end();
  });
}

describe('GracefulServer over HTTP/2', function () {
  this.timeout(15000);
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const step of cleanup.splice(0)) step();
  });

  const kinds: Array<{ name: string; make: () => H2Server; url: string }> = [
    { name: 'cleartext h2c (createServer)', make: () => http2.createServer(), url: 'http' },
    { name: 'createSecureServer', make: () => http2.createSecureServer(testCertificate), url: 'https' },
    {
      name: 'createSecureServer with allowHTTP1',
      make: () => http2.createSecureServer({ ...testCertificate, allowHTTP1: true }),
      url: 'https',
    },
  ];

  async function start(make: () => H2Server, url: string, timeout = 5000) {
    const server = make();
    const ran: string[] = [];
    server.on('stream', (stream, headers) => {
      const path = String(headers[':path']);
      ran.push(path);
      if (path === '/hang') return;
      setTimeout(
        () => {
          if (stream.destroyed) return;
          stream.respond({ ':status': 200 });
          stream.end(`body of ${path}`);
        },
        path === '/slow' ? 500 : 0,
      );
    });
    const graceful = new GracefulServer(server, { timeout });
    const port = portOf(await graceful.listen(loopback));
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (session) => sessions.add(session));
    cleanup.push(() => {
      for (const session of sessions) session.destroy();
      server.close();
    });
    const connect = (): http2.ClientHttp2Session => {
      const client = http2.connect(`${url}://127.0.0.1:${port}`, { ca: testCertificate.cert, servername: 'localhost' });
      client.on('error', () => undefined);
      cleanup.push(() => client.destroy());
      return client;
    };
    return { server, graceful, port, connect, ran };
  }

  for (const { name, make, url } of kinds) {
    describe(name, () => {
      it('counts a session as one connection, active while any stream is open', async () => {
        const { graceful, connect } = await start(make, url);
        const client = connect();
        const both = Promise.all([request(client, '/slow'), request(client, '/slow')]);
        const busy = await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the session active');
        expect(busy).to.include({ open: 1, active: 1 });
        await both;
        const idle = await waitForValue(graceful.state$, (s) => s.idle === 1, 2000, 'the session idle');
        expect(idle).to.include({ open: 1, active: 0 });
        graceful.shutdown();
        expect(await graceful.wait()).to.include({ killed: 0, closedIdle: 1 });
      });

      it('sends GOAWAY to an idle session when the shutdown begins, so a client that keeps opening streams cannot hold the drain', async () => {
        const { graceful, connect } = await start(make, url, 3000);
        const client = connect();
        await request(client, '/warm-up');
        await waitForValue(graceful.state$, (s) => s.idle === 1, 2000, 'the session idle');
        graceful.shutdown();
        // A busy client: a new stream as soon as the last one ends, for at most 2 s or 500 streams.
        const loopEnds = Date.now() + 2000;
        let answered = 0;
        for (let i = 0; i < 500 && Date.now() < loopEnds; i++) {
          const result = await request(client, `/loop-${i}`);
          if (result.error !== undefined) break;
          answered++;
        }
        const result = await graceful.wait();
        expect(result, `${answered} streams answered after the shutdown: ${JSON.stringify(result)}`).to.include({
          killed: 0,
          timedOut: false,
        });
        expect(result.durationMs).to.be.below(2500);
      });

      it('lets a 500 ms stream finish after a two-step GOAWAY, then refuses new streams through the protocol', async () => {
        const { graceful, connect, ran } = await start(make, url);
        const client = connect();
        const goaways: number[] = [];
        client.on('goaway', (_code, lastStreamId) => goaways.push(lastStreamId));
        await request(client, '/warm-up');
        const slow = request(client, '/slow');
        await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the slow stream open');
        graceful.shutdown();
        await until(() => goaways.length >= 2, 2000, 'the final GOAWAY');
        const refused = await request(client, '/after-goaway');
        expect(refused.error, 'a new stream fails with an error').to.be.a('string');
        expect(await withDeadline(slow, 3000, 'the slow stream')).to.deep.equal({ status: 200, body: 'body of /slow' });
        expect(goaways[0]).to.equal(2 ** 31 - 1);
        expect(goaways[1]).to.equal(3);
        expect(ran).to.deep.equal(['/warm-up', '/slow']);
        expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
      });

      it('destroys a session with a stream that never ends at the timeout, and counts it', async () => {
        const { graceful, connect } = await start(make, url, 200);
        const client = connect();
        const hanging = request(client, '/hang');
        await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the hanging stream');
        graceful.shutdown();
        const result = await graceful.wait();
        expect(result).to.include({ killed: 1, timedOut: true });
        const outcome = await hanging;
        expect(outcome.status).to.equal(undefined);
        expect(outcome.error).to.be.a('string');
      });
    });
  }

  it('follows the HTTP/1 rules for HTTP/1 connections on an allowHTTP1 server', async () => {
    const server = http2.createSecureServer({ ...testCertificate, allowHTTP1: true }, (req, res) => {
      setTimeout(() => res.end(`body of ${req.url}`), 300);
    });
    const graceful = new GracefulServer(server, { timeout: 5000 });
    const port = portOf(await graceful.listen(loopback));
    cleanup.push(() => server.close());
    const c = await RawClient.connectTls(port);
    cleanup.push(() => c.destroy());
    c.get('/h1');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the HTTP/1 request in flight');
    graceful.shutdown();
    const response = await c.read();
    expect(response).to.deep.include({ status: 200, body: 'body of /h1' });
    expect(response.headers.connection).to.equal('close');
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('wraps an HTTP/2 server that is already listening, with a session opened before the wrap', async () => {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      setTimeout(() => {
        stream.respond({ ':status': 200 });
        stream.end('late');
      }, 300);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = portOf(server.address() ?? '');
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', () => undefined);
    cleanup.push(() => {
      client.destroy();
      server.close();
    });
    await request(client, '/before'); // the session exists before the wrap
    const graceful = new GracefulServer(server, { timeout: 5000 });
    const slow = request(client, '/after');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the stream on the old session');
    graceful.shutdown();
    expect(await withDeadline(slow, 3000, 'the stream')).to.deep.equal({ status: 200, body: 'late' });
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });
});
