import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import { acceptQueueLength, listenerQueue, type ReadAt, warmUpAcceptQueue } from '../../src/node/accept-queue';
import { listenFd } from '../../src/node/node-internals';
import { recordFsCalls } from '../support/fs-calls';
import { loopback } from '../support/sockets';

/** A line of a TCP table as Linux pads it (149 characters and a newline), with its state, accept queue (rx_queue) and inode. */
function line(sl: number, state: string, rxQueue: string, inode: string): string {
  const text = `   ${sl}: 0100007F:1F90 00000000:0000 ${state} 00000000:${rxQueue} 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0`;
  return `${text.padEnd(149)}\n`;
}
const header = `${'  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'.padEnd(149)}\n`;

/** Reads `table` as a positioned read of a file would, and records where each read began. */
function tableReader(table: string): { readAt: ReadAt; positions: number[] } {
  const bytes = Buffer.from(table, 'latin1');
  const positions: number[] = [];
  return {
    positions,
    readAt: (chunk, position) => {
      positions.push(position);
      return bytes.copy(chunk, 0, Math.min(position, bytes.length));
    },
  };
}

describe('accept-queue', () => {
  it('finds a listener whose line the second read of 512 bytes completes, and reads its rx_queue as hexadecimal', () => {
    const { readAt, positions } = tableReader(
      header +
        line(0, '0A', '00000000', '1001') +
        line(1, '0A', '00000000', '1002') +
        line(2, '0A', '0000000A', '77') +
        line(3, '01', '00000000', '1003'),
    );
    expect(listenerQueue(readAt, '77', Buffer.alloc(512))).to.equal(10);
    expect(positions).to.deep.equal([0, 512]);
  });

  it('stops at the first line that is no listener, and at the end of a table of listeners only, without the inode', () => {
    const withConnection = tableReader(
      header + line(0, '0A', '00000000', '1001') + line(1, '01', '00000000', '77') + line(2, '0A', '00000002', '77'),
    );
    expect(listenerQueue(withConnection.readAt, '77', Buffer.alloc(512))).to.equal(undefined);
    const listenersOnly = tableReader(header + line(0, '0A', '00000000', '1001'));
    expect(listenerQueue(listenersOnly.readAt, '77', Buffer.alloc(512))).to.equal(undefined);
    expect(listenersOnly.positions).to.deep.equal([0, 300]);
  });

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
