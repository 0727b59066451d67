import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { closeListenerAfterQueue } from '../../src/node/listener';
import { FsCall, recordFsCalls } from '../support/fs-calls';
import { loopback, withDeadline } from '../support/sockets';

/**
 * The tables of `/proc` opened by the recorded calls. Only those: while the close waits for its turns,
 * anything else in this worker process may open a file (a module loaded late, say).
 */
function opened(calls: readonly FsCall[]): unknown[] {
  return calls
    .filter(({ name, first }) => name === 'openSync' && typeof first === 'string' && first.startsWith('/proc/'))
    .map(({ first }) => first);
}

/**
 * Listens on `where`, closes the listener as a shutdown does, and returns the paths it opened within
 * the call and in all.
 */
async function pathsOpenedByClose(where: net.ListenOptions): Promise<{ inCall: unknown[]; all: unknown[] }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(where, resolve));
  const recorder = recordFsCalls();
  let inCall: unknown[] = [];
  try {
    await withDeadline(
      new Promise<void>((resolve) => {
        closeListenerAfterQueue(server, () => 0, resolve);
        inCall = opened(recorder.calls);
      }),
      5000,
      'the listener closed',
    );
  } finally {
    recorder.restore();
    if (server.listening) server.close();
  }
  expect(server.listening, 'listening after the close').to.equal(false);
  return { inCall, all: opened(recorder.calls) };
}

describe('closeListenerAfterQueue', () => {
  it('reads the accept queue of a listener on 127.0.0.1 in the IPv4 table only, opened at its first check and not within the call', async function () {
    if (process.platform !== 'linux') this.skip(); // the accept queue is read on Linux only
    expect(await pathsOpenedByClose(loopback)).to.deep.equal({ inCall: [], all: ['/proc/net/tcp'] });
  });

  it('reads no table for a listener on a Unix domain socket, which no TCP table lists, and still closes it', async function () {
    if (process.platform !== 'linux') this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rx-graceful-'));
    try {
      expect(await pathsOpenedByClose({ path: path.join(dir, 'listener.sock') })).to.deep.equal({ inCall: [], all: [] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
