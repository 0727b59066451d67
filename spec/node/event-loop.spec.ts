import { expect } from 'chai';
import { once } from 'node:events';
import * as net from 'node:net';
import { acceptQueueLength, openAcceptQueue } from '../../src/node/accept-queue';
import { afterAcceptQueue, afterPoll, holdEventLoop, inSlices } from '../../src/node/event-loop';
import { listenFd } from '../../src/node/node-internals';
import { afterEachTest } from '../support/servers';
import { blockEventLoop, connectsWhileHeld, loopback, portOf, until, withDeadline } from '../support/sockets';

/** Resolves with what `check()` says when afterPoll runs its work. */
function atWork<T>(check: () => T): Promise<T> {
  return new Promise((resolve) => {
    afterPoll(() => {
      resolve(check());
    });
  });
}

/**
 * Simulates `turns` new accepted connections, one in every `every`-th turn of the loop (from the
 * next check phase on) and has `afterAcceptQueue` (with `options`) wait for the accept queue;
 * resolves with how many were accepted when it ran its work.
 */
function acceptEveryTurn(turns: number, options: Parameters<typeof afterAcceptQueue>[2], every = 1): Promise<number> {
  let accepted = 0;
  let turn = 0;
  const bump = (): void => {
    if (++turn % every === 0) accepted++;
    if (turn < turns * every) setImmediate(bump);
  };
  setImmediate(bump);
  return new Promise((resolve) =>
    afterAcceptQueue(
      () => accepted,
      () => resolve(accepted),
      options,
    ),
  );
}

describe('the event loop as the adapter uses it', () => {
  const cleanup = afterEachTest();

  async function tcpServer(): Promise<{ server: net.Server; port: number; accepted: net.Socket[] }> {
    const accepted: net.Socket[] = [];
    const server = net.createServer((socket) => accepted.push(socket));
    server.listen(loopback);
    await withDeadline(once(server, 'listening'), 2000, 'the server listening');
    cleanup.push(() => {
      for (const socket of accepted) socket.destroy();
      server.close();
    });
    return { server, port: portOf(server.address() ?? ''), accepted };
  }

  async function connect(port: number): Promise<net.Socket> {
    const client = net.connect({ host: '127.0.0.1', port });
    cleanup.push(() => client.destroy());
    await withDeadline(once(client, 'connect'), 2000, 'a connection');
    return client;
  }

  it('afterPoll runs its work after the loop has read bytes that arrived before the call, even on a blocked loop', async () => {
    const { server, port } = await tcpServer();
    const connection = once(server, 'connection') as Promise<[net.Socket]>;
    const client = await connect(port);
    const [socket] = await withDeadline(connection, 2000, 'the server accepting');
    const received: string[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk.toString()));
    client.write('request');
    blockEventLoop(30); // the bytes wait in the kernel, unread
    expect(await atWork(() => received.join(''))).to.equal('request');
  });

  it('afterPoll runs its work after the loop has accepted a connection the kernel completed before the call', async () => {
    const { port, accepted } = await tcpServer();
    const client = net.connect({ host: '127.0.0.1', port });
    cleanup.push(() => client.destroy());
    blockEventLoop(30); // the kernel completes the handshake; the loop has not accepted it yet
    expect(await atWork(() => accepted.length)).to.equal(1);
  });

  it('the loop accepts one queued connection per poll phase, so afterPoll alone misses the rest of a queue', async () => {
    const { port, accepted } = await tcpServer();
    for (let i = 0; i < 4; i++)
      cleanup.push(
        (
          (c: net.Socket) => () =>
            c.destroy()
        )(net.connect({ host: '127.0.0.1', port })),
      );
    blockEventLoop(30); // four connections complete in the kernel; none is accepted yet
    expect(await atWork(() => accepted.length)).to.be.below(4);
  });

  it('afterAcceptQueue runs its work once every connection queued before the call is accepted, on a blocked loop', async () => {
    const { server, port, accepted } = await tcpServer();
    let count = 0;
    server.on('connection', () => count++);
    for (let i = 0; i < 4; i++)
      cleanup.push(
        (
          (c: net.Socket) => () =>
            c.destroy()
        )(net.connect({ host: '127.0.0.1', port })),
      );
    blockEventLoop(30);
    const atClose = await new Promise<number>((resolve) => {
      afterAcceptQueue(
        () => count,
        () => {
          resolve(accepted.length);
        },
      );
    });
    expect(atClose).to.equal(4);
  });

  it('afterAcceptQueue stops waiting after maxTurns turns that each accepted a connection', async () => {
    // A new "accept" every turn, as a stream of newcomers would give.
    const ran = await withDeadline(acceptEveryTurn(100, { maxTurns: 3 }), 2000, 'afterAcceptQueue to give up');
    expect(ran).to.be.within(3, 10);
  });

  it('acceptQueueLength reads how many connections the kernel holds for the listener, then 0 once they are accepted', async function () {
    if (process.platform !== 'linux') this.skip(); // /proc/net/tcp is Linux's
    const { server, port, accepted } = await tcpServer();
    const fd = listenFd(server);
    expect(fd).to.be.a('number');
    expect(acceptQueueLength(fd as number)).to.equal(0);
    expect(connectsWhileHeld(port, 3, 5000), 'connections completed').to.equal(3);
    expect(acceptQueueLength(fd as number)).to.equal(3);
    await withDeadline(
      new Promise<void>((resolve) => afterAcceptQueue(() => accepted.length, resolve, { queued: 3 })),
      2000,
      'the three queued connections accepted',
    );
    expect(accepted.length).to.equal(3);
    expect(acceptQueueLength(fd as number)).to.equal(0);
  });

  it('openAcceptQueue reads the queue afresh at every call, with its table kept open', async function () {
    if (process.platform !== 'linux') this.skip(); // /proc/net/tcp is Linux's
    const { server, port, accepted } = await tcpServer();
    const queue = openAcceptQueue(listenFd(server) as number);
    if (queue === undefined) throw new Error('the listener not found in /proc/net/tcp');
    try {
      expect(queue.atOpen).to.equal(0);
      expect(queue.length()).to.equal(0);
      expect(connectsWhileHeld(port, 2, 5000), 'connections completed').to.equal(2);
      expect(queue.length()).to.equal(2);
      expect(queue.length(), 'read again').to.equal(2);
      expect(connectsWhileHeld(port, 1, 5000), 'one more completed').to.equal(1);
      expect(queue.length()).to.equal(3);
      await until(() => accepted.length === 3, 2000, 'the three queued connections accepted');
      expect(queue.length()).to.equal(0);
    } finally {
      queue.close();
    }
  });

  it('acceptQueueLength is undefined for a descriptor that is no listening TCP socket', () => {
    expect(acceptQueueLength(0)).to.equal(undefined);
    expect(acceptQueueLength(-1)).to.equal(undefined);
  });

  it('afterAcceptQueue with the queue length waits for that many accepts, though turns with none and maxTurns come first', async () => {
    // One accept every other turn: a loop too busy to accept the queue in one go.
    const ran = await withDeadline(acceptEveryTurn(20, { queued: 5, maxTurns: 1 }, 2), 2000, 'afterAcceptQueue to run its work');
    expect(ran).to.be.within(5, 6);
  });

  it('afterAcceptQueue gives up waiting for queued connections the loop never reports, after maxTurns and two turns each', async () => {
    const ran = await withDeadline(acceptEveryTurn(1, { queued: 5, maxTurns: 3 }, 1000), 2000, 'afterAcceptQueue to give up');
    expect(ran).to.equal(0);
  });

  /** Counts turns from the next check phase on, `accept(turn)` in each; resolves with the turn at which afterAcceptQueue ran its work. */
  function turnOfWork(options: Parameters<typeof afterAcceptQueue>[2], accept: (turn: number) => void): Promise<number> {
    let turn = 0;
    let running = true;
    const next = (): void => {
      accept(++turn);
      if (running && turn < 2000) setImmediate(next);
    };
    setImmediate(next);
    return new Promise((resolve) =>
      afterAcceptQueue(
        () => turn,
        () => {
          running = false;
          resolve(turn);
        },
        options,
      ),
    );
  }

  it('afterAcceptQueue with queueLength runs its work at the first check that reads the queue empty, though every turn accepts', async () => {
    // A newcomer accepted in every turn would keep the other rule waiting for maxTurns.
    let length = 4;
    const ran = await withDeadline(
      turnOfWork({ queued: 4, queueLength: () => length }, () => (length = Math.max(0, length - 1))),
      2000,
      'afterAcceptQueue to run its work',
    );
    expect(ran).to.be.within(4, 6);
  });

  it('afterAcceptQueue with queueLength gives up after maxTurns and two turns per queued connection when the queue never reads empty', async () => {
    const ran = await withDeadline(
      turnOfWork({ queued: 2, maxTurns: 3, queueLength: () => 1 }, () => undefined),
      2000,
      'afterAcceptQueue to give up',
    );
    expect(ran).to.be.within(8, 10);
  });

  it('afterAcceptQueue with queueLength and no queued count takes two turns per connection its first read finds for the bound', async () => {
    // The listener reads a queue it shrinks first at the first check (listener.ts): 6 then, 1 for ever after.
    let reads = 0;
    const ran = await withDeadline(
      turnOfWork({ maxTurns: 3, queueLength: () => (reads++ === 0 ? 6 : 1) }, () => undefined),
      2000,
      'afterAcceptQueue to give up',
    );
    expect(ran).to.be.within(16, 18);
  });

  it('afterPoll runs nothing once cancelled', async () => {
    let ran = false;
    const cancel = afterPoll(() => (ran = true));
    cancel();
    await atWork(() => undefined);
    await atWork(() => undefined);
    expect(ran).to.equal(false);
  });

  it('inSlices runs its work over the whole range, one slice of at most perTurn per turn of the loop', async () => {
    const slices: Array<[number, number, number]> = [];
    let turn = 0;
    const count = (): void => {
      turn++;
      if (turn < 50) setImmediate(count);
    };
    setImmediate(count);
    await withDeadline(
      new Promise<void>((resolve) =>
        inSlices(10, 4, (from, to) => {
          slices.push([from, to, turn]);
          if (to === 10) resolve();
        }),
      ),
      2000,
      'the last slice',
    );
    expect(slices.map(([from, to]) => [from, to])).to.deep.equal([
      [0, 4],
      [4, 8],
      [8, 10],
    ]);
    const turns = slices.map(([, , at]) => at);
    expect(turns[1]).to.be.greaterThan(turns[0] ?? Infinity);
    expect(turns[2]).to.be.greaterThan(turns[1] ?? Infinity);
  });

  it('inSlices runs no slice after it is cancelled, even from within a slice', async () => {
    const ran: number[] = [];
    const cancel = inSlices(10, 2, (from) => {
      ran.push(from);
      if (from === 2) cancel();
    });
    for (let turn = 0; turn < 8; turn++) await atWork(() => undefined);
    expect(ran).to.deep.equal([0, 2]);
  });

  it('holdEventLoop keeps one more resource keeping the loop alive until it is released', () => {
    const before = process.getActiveResourcesInfo().length;
    const release = holdEventLoop();
    expect(process.getActiveResourcesInfo().length).to.equal(before + 1);
    release();
    expect(process.getActiveResourcesInfo().length).to.equal(before);
  });
});
