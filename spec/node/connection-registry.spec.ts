import { expect } from 'chai';
import * as net from 'node:net';
import { asyncScheduler } from 'rxjs';
import { ConnectionRegistry, Http1Connection, Http2Connection } from '../../src/node/connection-registry';

/** A registry with no `onConnState` and nothing kept elsewhere. */
function registry(): ConnectionRegistry {
  return new ConnectionRegistry(asyncScheduler, undefined, () => undefined);
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

    it('finds a long-lived connection whose id shares its slot with thousands that came and went after it', () => {
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

    it('finds the connection that took the place of one with the same id', () => {
      const books = registry();
      const first = books.accept(unconnected(), false);
      const next = { ...first, protocol: 'http2', session: {}, onStreamClose: () => undefined } as unknown as Http2Connection;
      books.replace(next);
      expect(books.byId(first.id)).to.equal(next);
    });
  });
});
