import { expect } from 'chai';
import type { Socket } from 'node:net';
import { GracefulOptions } from '../../src';
import { answered, ServerKind, serverKinds, serveTestApp, shutdownOnABusyLoop } from '../support/server-kinds';
import { afterEachTest } from '../support/servers';
import { RawClient, until, waitForValue } from '../support/sockets';

/** HTTPS and HTTP/2 over TLS (src/node/tls-handoff.ts): the TLS socket is what is tracked, ended and destroyed. */
function tlsHandoffCases(kind: ServerKind): void {
  const cleanup = afterEachTest();

  async function start(options: GracefulOptions = {}) {
    const served = await serveTestApp(kind, options, cleanup);
    const tcpSockets: Socket[] = [];
    served.server.on('connection', (socket: Socket) => tcpSockets.push(socket));
    return { ...served, tcpSockets };
  }

  it('lets a request in flight finish, its TCP socket never destroyed under it', async () => {
    const { graceful, connect, tcpSockets, ran, release } = await start();
    const reply = (await connect()).request('/held');
    await until(() => ran.length === 1, 2000, 'the request reaching the application');
    graceful.shutdown();
    expect(tcpSockets).to.have.length(1);
    expect(tcpSockets[0]?.destroyed).to.equal(false);
    await waitForValue(graceful.state$, (s) => !s.accepting, 2000, 'the listener closed');
    expect(tcpSockets[0]?.destroyed, 'once the drain has begun').to.equal(false);
    release();
    expect(await reply).to.deep.equal(answered('/held', true));
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1 });
  });

  it('counts a connection stuck in its TLS handshake as new, and kills and counts it at the deadline', async () => {
    const { graceful, port } = await start({ timeout: 100 });
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

  it('serves the first request of a connection whose TLS handshake the server has not finished when shutdown() comes', async () => {
    const { graceful, connect, secured } = await start();
    const c = await connect();
    // The client has sent its Finished and connected; the server has not read it yet.
    expect(secured(), 'the server still in its side of the handshake').to.equal(0);
    const reply = c.request('/first-request');
    await shutdownOnABusyLoop(graceful, [c]);
    expect(await reply).to.deep.equal(answered('/first-request', true));
    expect(await graceful.wait()).to.include({ killed: 0, drained: 1, closedIdle: 0 });
  });
}

describe('the TLS hand-off', function () {
  this.timeout(15000);
  for (const kind of serverKinds.filter((k) => k.tls)) describe(kind.name, () => tlsHandoffCases(kind));
});
