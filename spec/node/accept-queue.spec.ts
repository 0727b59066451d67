import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import { acceptQueueLength, warmUpAcceptQueue } from '../../src/node/accept-queue';
import { listenFd } from '../../src/node/node-internals';
import { recordFsCalls } from '../support/fs-calls';
import { loopback } from '../support/sockets';

describe('accept-queue', () => {
  it('reads only the table of the family it is given: a listener on 127.0.0.1 is found as IPv4, and not in the IPv6 table', async function () {
    if (process.platform !== 'linux') this.skip(); // the accept queue is read on Linux only
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(loopback, resolve));
    try {
      const fd = listenFd(server) as number;
      const recorder = recordFsCalls();
      let asIPv4: number | undefined;
      let asIPv6: number | undefined;
      try {
        asIPv4 = acceptQueueLength(fd, 'IPv4');
        asIPv6 = acceptQueueLength(fd, 'IPv6');
      } finally {
        recorder.restore();
      }
      expect(asIPv4).to.equal(0);
      expect(asIPv6).to.equal(undefined);
      const opened = recorder.calls.filter(({ name }) => name === 'openSync').map(({ first }) => first);
      expect(opened).to.deep.equal(['/proc/net/tcp', '/proc/net/tcp6']);
    } finally {
      server.close();
    }
  });

  it("warmUpAcceptQueue runs Node's open, fstat, read and close of a descriptor once each, and leaves no descriptor open", function () {
    if (process.platform !== 'linux') this.skip();
    const before = fs.readdirSync('/proc/self/fd').length;
    const recorder = recordFsCalls();
    try {
      warmUpAcceptQueue();
    } finally {
      recorder.restore();
    }
    expect(recorder.calls.map(({ name }) => name)).to.deep.equal(['openSync', 'fstatSync', 'readSync', 'closeSync']);
    expect(fs.readdirSync('/proc/self/fd').length, 'descriptors open').to.equal(before);
  });
});
