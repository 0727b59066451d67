import { expect } from 'chai';
import { once } from 'node:events';
import * as net from 'node:net';
import { asyncScheduler } from 'rxjs';
import { ConnectionRegistry, Http1Connection, Http2Connection } from '../../src/node/connection-registry';
import { afterEachTest } from '../support/servers';
import { until } from '../support/sockets';

/** A registry with no `onConnState` and nothing kept elsewhere, rounds of `settleIdle` every `settleIdleMs`. */
function registry(settleIdleMs?: number): ConnectionRegistry {
  return new ConnectionRegistry(asyncScheduler, undefined, () => undefined, settleIdleMs);
}

/** A socket that is not connected: enough for the books, which only watch and read it. */
function unconnected(): net.Socket {
  return new net.Socket();
}

describe('ConnectionRegistry (src/node/connection-registry.ts)', () => {
  describe('connections by id', () => {
    it('finds every open connection by its id and none that is gone, as thousands come and go', () => {
      const books = registry();
      const open = new Map<number, Http1Connection>();
      const gone: number[] = [];
      // A fixed pseudo-random order, so that a failure can be replayed.
      let seed = 7;
      const random = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647;
      for (let step = 0; step < 20_000; step++) {
        if (open.size > 0 && random() < (open.size > 3_000 ? 0.7 : 0.45)) {
          const ids = [...open.keys()];
          const id = ids[Math.floor(random() * ids.length)] as number;
          books.forget(open.get(id) as Http1Connection);
          open.delete(id);
          gone.push(id);
        } else {
          const c = books.accept(unconnected(), false);
          open.set(c.id, c);
        }
      }
      for (const [id, c] of open) expect(books.byId(id), `open connection ${id}`).to.equal(c);
      for (const id of gone) expect(books.byId(id), `closed connection ${id}`).to.equal(undefined);
    });

    it('finds a long-lived connection after thousands that came and went after it, in a table of few slots', () => {
      const books = registry();
      const old = books.accept(unconnected(), false);
      for (let i = 0; i < 5_000; i++) {
        const neighbour = books.accept(unconnected(), false);
        if (i % 3 === 0) books.forget(books.accept(unconnected(), false));
        books.forget(neighbour);
      }
      expect(books.byId(old.id)).to.equal(old);
      books.forget(old);
      expect(books.byId(old.id)).to.equal(undefined);
    });

    it('keeps its table through the closes of a shutdown and shrinks it to fit when the shutdown ends', () => {
      const books = registry();
      /** The slots of the id table: private, read here to see when it shrinks. */
      const slots = (): number => (books as unknown as { ids: { slots: unknown[] } }).ids.slots.length;
      const open = Array.from({ length: 1_000 }, () => books.accept(unconnected(), false));
      const full = slots();
      books.beginShutdown(() => undefined);
      const kept = open.splice(0, 10);
      for (const c of open) books.forget(c);
      expect(slots(), 'slots during the shutdown').to.equal(full);
      for (const c of kept) expect(books.byId(c.id), `open connection ${c.id}`).to.equal(c);
      books.endShutdown();
      // As deletes shrink it: halved while it holds fewer than one connection for 8 slots.
      expect(slots(), 'slots after the shutdown').to.equal(64);
      for (const c of kept) expect(books.byId(c.id), `open connection ${c.id}`).to.equal(c);
      for (const c of open) expect(books.byId(c.id), `closed connection ${c.id}`).to.equal(undefined);
      for (const c of kept) books.forget(c);
      expect(slots(), 'slots once every connection is gone').to.equal(16);
    });

    it('finds the connection that took the place of one with the same id', () => {
      const books = registry();
      const first = books.accept(unconnected(), false);
      const next = { ...first, protocol: 'http2', session: {}, onStreamClose: () => undefined } as unknown as Http2Connection;
      books.replace(next);
      expect(books.byId(first.id)).to.equal(next);
    });
  });

  describe("rebuilding an idle socket's close listeners", () => {
    const cleanup = afterEachTest();

    /** Stands for Node's own `close` listener on a server socket (`socketOnClose`). */
    const socketOnClose = (): void => undefined;

    /** A server socket of a real connection, with a listener of its own for `close` as Node's HTTP server has. */
    async function serverSocket(): Promise<net.Socket> {
      const server = net.createServer();
      cleanup.push(() => server.close());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const accepted = once(server, 'connection') as Promise<[net.Socket]>;
      const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      cleanup.push(() => client.destroy());
      const [socket] = await accepted;
      cleanup.push(() => socket.destroy());
      return socket;
    }

    /** What Node does to the socket's `close` listeners for each response (`onServerResponseClose`). */
    function serveOneResponse(books: ConnectionRegistry, c: Http1Connection): void {
      const onServerResponseClose = (): void => undefined;
      books.change(c, 'active');
      c.socket.on('close', onServerResponseClose);
      c.socket.off('close', onServerResponseClose);
      books.idle(c);
    }

    /** The registry's private timer: nothing else shows that no round is due (an unref'd timer keeps nothing alive). */
    const timerOf = (books: ConnectionRegistry): unknown => (books as unknown as { settleTimer: unknown }).settleTimer;

    /** The socket's own array of `close` listeners (Node 20.20: `_events.close`), whose identity tells whether it was rebuilt. */
    function closeListeners(socket: net.Socket): unknown {
      return (socket as net.Socket & { _events: Record<string, unknown> })._events.close;
    }

    /**
     * A connection of a registry with rounds of 10 ms, idle after one response, as Node leaves it: the
     * registry's `close` listener, then Node's, in a grown array.
     */
    async function idleAfterOneResponse() {
      const books = registry(10);
      const socket = await serverSocket();
      const c = books.accept(socket, true);
      socket.on('close', socketOnClose); // after the registry's, as Node adds it after the `connection` event
      serveOneResponse(books, c);
      return { books, socket, c, listeners: closeListeners(socket) };
    }

    it('rebuilds them once a connection has stayed idle for a round, and still reports its close', async () => {
      const { books, socket, listeners } = await idleAfterOneResponse();
      expect(listeners).to.be.an('array').with.length(2);
      await until(() => closeListeners(socket) !== listeners, 1000, 'the close listeners rebuilt');
      expect(socket.listeners('close')).to.have.length(2);
      expect(socket.listeners('close')[1], "the registry's listener still comes first").to.equal(socketOnClose);
      const closed: string[] = [];
      const subscription = books.changes$.subscribe((change) => closed.push(change.state));
      cleanup.push(() => subscription.unsubscribe());
      socket.destroy();
      await until(() => closed.includes('closed'), 1000, 'the close reported');
      expect(books.get(socket)).to.equal(undefined);
    });

    it('leaves them alone while the connection goes active again within each round', async () => {
      const { books, socket, c, listeners } = await idleAfterOneResponse();
      const end = Date.now() + 100;
      while (Date.now() < end) {
        serveOneResponse(books, c);
        // A response each turn of the loop: each round's timer comes in a turn of its own, so no
        // round goes by without one, however late the timers run.
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(closeListeners(socket)).to.equal(listeners);
    });

    it('keeps no timer for its rounds once no idle connection waits for one', async () => {
      const { books, socket } = await idleAfterOneResponse();
      expect(timerOf(books), 'while the connection waits for its round').to.not.equal(undefined);
      socket.destroy();
      await until(() => books.get(socket) === undefined, 1000, 'the close seen');
      expect(timerOf(books), 'once it has closed').to.equal(undefined);
      const other = await idleAfterOneResponse();
      other.books.beginShutdown(() => undefined);
      other.books.endShutdown();
      expect(timerOf(other.books), 'once a shutdown has ended').to.equal(undefined);
    });

    it('leaves them alone during a shutdown, which closes the idle connections itself', async () => {
      const { books, socket, listeners } = await idleAfterOneResponse();
      books.beginShutdown(() => undefined);
      // No timer is left once the round in which it would have been rebuilt has run, however late.
      await until(() => timerOf(books) === undefined, 2000, 'the rounds of the idle connection');
      expect(closeListeners(socket)).to.equal(listeners);
    });
  });
});
