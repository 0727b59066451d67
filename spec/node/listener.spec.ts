import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { closeListenerAfterQueue } from '../../src/node/listener';
import { recordFsCalls } from '../support/fs-calls';
import { loopback, withDeadline } from '../support/sockets';

/** Listens on `where`, closes the listener as a shutdown does, and returns the paths it opened meanwhile. */
async function pathsOpenedByClose(where: net.ListenOptions): Promise<unknown[]> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(where, resolve));
  const recorder = recordFsCalls();
  try {
    await withDeadline(
      new Promise<void>((resolve) => closeListenerAfterQueue(server, () => 0, resolve)),
      5000,
      'the listener closed',
    );
  } finally {
    recorder.restore();
    if (server.listening) server.close();
  }
  expect(server.listening, 'listening after the close').to.equal(false);
  return recorder.calls.filter(({ name }) => name === 'openSync').map(({ first }) => first);
}

describe('closeListenerAfterQueue', () => {
  it('reads the accept queue of a listener on 127.0.0.1 in the IPv4 table only', async function () {
    if (process.platform !== 'linux') this.skip(); // the accept queue is read on Linux only
    expect(await pathsOpenedByClose(loopback)).to.deep.equal(['/proc/net/tcp']);
  });

  it('reads no table for a listener on a Unix domain socket, which no TCP table lists, and still closes it', async function () {
    if (process.platform !== 'linux') this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rx-graceful-'));
    try {
      expect(await pathsOpenedByClose({ path: path.join(dir, 'listener.sock') })).to.deep.equal([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
