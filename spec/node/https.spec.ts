import { expect } from 'chai';
import * as https from 'node:https';
import { afterEachTest, serveForTest } from '../support/servers';
import { RawClient, testCertificate, until, waitForValue } from '../support/sockets';

describe('GracefulServer over HTTPS (TLS on 127.0.0.1)', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  async function start(timeout = 5000, idleLinger?: number) {
    const rawSockets: import('node:net').Socket[] = [];
    const server = https.createServer(testCertificate, (req, res) => {
      if (req.url === '/hang') return;
      setTimeout(() => res.end(`body of ${req.url}`), req.url === '/slow' ? 500 : 0);
    });
    server.on('connection', (socket: import('node:net').Socket) => rawSockets.push(socket));
    const served = await serveForTest(server, idleLinger === undefined ? { timeout } : { timeout, idleLinger }, cleanup, {
      tls: true,
    });
    return { server, rawSockets, ...served };
  }

  it('closes idle TLS keep-alive connections promptly', async () => {
    const { graceful, client } = await start(5000, 0);
    const clients = await Promise.all(Array.from({ length: 10 }, () => client()));
    for (const c of clients) c.get('/');
    await Promise.all(clients.map((c) => c.read()));
    await waitForValue(graceful.state$, (s) => s.idle === 10, 2000, '10 idle TLS connections');
    graceful.shutdown();
    const result = await graceful.wait();
    await Promise.all(clients.map((c) => c.waitClosed(1000)));
    expect(result).to.include({ killed: 0, closedIdle: 10 });
    expect(result.durationMs).to.be.below(200);
  });

  it('lets a 500 ms HTTPS request finish during the drain, its TCP socket never destroyed under it', async () => {
    const { graceful, client, rawSockets } = await start();
    const c = await client();
    c.get('/slow');
    await waitForValue(graceful.state$, (s) => s.active === 1, 2000, 'the HTTPS request in flight');
    graceful.shutdown();
    expect(rawSockets).to.have.length(1);
    expect(rawSockets[0]?.destroyed).to.equal(false);
    const response = await c.read(3000);
    expect(response).to.deep.include({ status: 200, body: 'body of /slow' });
    expect(response.headers.connection).to.equal('close');
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('destroys hanging HTTPS requests at the timeout and counts them', async () => {
    const { graceful, client } = await start(200);
    const clients = await Promise.all([client(), client()]);
    for (const c of clients) c.get('/hang');
    await waitForValue(graceful.state$, (s) => s.active === 2, 2000, 'two hanging requests');
    graceful.shutdown();
    expect(await graceful.wait()).to.include({ killed: 2, timedOut: true });
    await Promise.all(clients.map((c) => c.waitClosed()));
  });

  it('counts a connected, silent socket as new and idle, and closes it at once', async () => {
    const { graceful, port } = await start(5000, 0);
    const silent = await RawClient.connect(port);
    cleanup.push(() => silent.destroy());
    const state = await waitForValue(graceful.state$, (s) => s.open === 1, 2000, 'the silent connection');
    expect(state).to.include({ active: 0, idle: 1 });
    graceful.shutdown();
    await silent.waitClosed(1000);
    expect(await graceful.wait()).to.include({ killed: 0, closedIdle: 1 });
  });

  it('counts a connection stuck in its TLS handshake as new, and kills and counts it at the deadline', async () => {
    const { graceful, port } = await start(200);
    const connected = waitForValue(graceful.connections$, (e) => e.state === 'new', 2000, 'the connection');
    const stuck = await RawClient.connect(port);
    cleanup.push(() => stuck.destroy());
    const { socket } = await connected;
    // The header of a TLS handshake record, and never the rest of the ClientHello.
    stuck.send('\x16\x03\x01\x02\x00');
    await until(() => socket.bytesRead === 5, 2000, 'the server reading the partial handshake');
    const state = await waitForValue(graceful.state$, () => true, 100, 'the state');
    expect(state).to.include({ open: 1, idle: 1, active: 0 });
    graceful.shutdown();
    const result = await graceful.wait();
    expect(result).to.include({ killed: 1, timedOut: true, closedIdle: 0 });
    await stuck.waitClosed(1000);
  });
});
