import { expect } from 'chai';
import * as http from 'node:http';
import { announcedClose } from '../../src/node/node-internals';
import { loopback, portOf, RawClient } from '../support/sockets';

describe('announcedClose (reads Node 20 OutgoingMessage#_last)', () => {
  async function headOf(prepare: (req: http.IncomingMessage, res: http.ServerResponse) => void, request: string) {
    let seen: { before: boolean; after: boolean } | undefined;
    const server = http.createServer((req, res) => {
      const before = announcedClose(res);
      prepare(req, res);
      res.writeHead(200, { 'content-length': 2 });
      seen = { before, after: announcedClose(res) };
      res.end('ok');
    });
    server.listen(loopback);
    await new Promise((resolve) => server.once('listening', resolve));
    const client = await RawClient.connect(portOf(server.address() ?? ''));
    client.send(request);
    await client.read();
    client.destroy();
    server.close();
    return seen;
  }

  it('is false before the head and for a keep-alive head', async () => {
    expect(await headOf(() => undefined, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).to.deep.equal({ before: false, after: false });
  });

  it('is true for a head written with shouldKeepAlive = false', async () => {
    const seen = await headOf((_, res) => (res.shouldKeepAlive = false), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(seen).to.deep.equal({ before: false, after: true });
  });

  it('is true when the client asked for Connection: close', async () => {
    const seen = await headOf(() => undefined, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(seen?.after).to.equal(true);
  });

  it('is true when the application set a Connection: close header itself', async () => {
    const seen = await headOf((_, res) => res.setHeader('connection', 'close'), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(seen?.after).to.equal(true);
  });
});
