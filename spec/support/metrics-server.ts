import { EventEmitter, once } from 'node:events';
import * as http from 'node:http';
import { Observable } from 'rxjs';
import type { GracefulOptions, GracefulServer } from '../../src';
import { serveForTest } from './servers';
import { loopback, portOf, RawClient, withDeadline } from './sockets';

/** A request the handler holds, on a connection of its own. */
export interface HeldRequest {
  readonly client: RawClient;
  /** Answers the held request with `200 released`. */
  release(): void;
}

/** A wrapped HTTP server on 127.0.0.1 for the metrics specs, with the two kinds of connection a drain treats apart. */
export interface MetricsServer {
  readonly graceful: GracefulServer;
  /** Opens a keep-alive connection, asks `GET /quick` on it and reads the answer: an idle connection. */
  readonly idleConnection: () => Promise<RawClient>;
  /** Opens a connection and sends `GET /hold`; resolves once the handler holds the request: an active connection. */
  readonly heldRequest: () => Promise<HeldRequest>;
  /** Listens again on a new port of 127.0.0.1, after a shutdown; the connections above then go there. */
  readonly listenAgain: () => Promise<void>;
}

/**
 * Serves on 127.0.0.1 with a handler that answers `GET /quick` at once and holds `GET /hold` until
 * released; the server and every client are closed after the test (`cleanup`).
 */
export async function metricsServer(options: GracefulOptions, cleanup: Array<() => void>): Promise<MetricsServer> {
  const holds = new EventEmitter();
  const server = http.createServer((req, res) => {
    if (req.url === '/hold') holds.emit('held', () => res.end('released'));
    else res.end('quick');
  });
  const served = await serveForTest(server, options, cleanup);
  const { graceful } = served;
  let port = served.port;
  const connect = async (): Promise<RawClient> => {
    const client = await RawClient.connect(port);
    cleanup.push(() => client.destroy());
    return client;
  };
  return {
    graceful,
    idleConnection: async () => {
      const client = await connect();
      client.get('/quick');
      const answer = await client.read();
      if (answer.status !== 200) throw new Error(`GET /quick answered ${answer.status}`);
      return client;
    },
    heldRequest: async () => {
      const client = await connect();
      const held = once(holds, 'held') as Promise<[() => void]>;
      client.get('/hold');
      const [release] = await withDeadline(held, 3000, 'the handler to hold GET /hold');
      return { client, release };
    },
    listenAgain: async () => {
      port = portOf(await graceful.listen(loopback));
    },
  };
}

/**
 * Replaces the stream `key` of `target` with one that counts its live subscriptions, and returns
 * the count: to see what a binding keeps subscribed between two collections, and after `unbind()`.
 */
export function countSubscriptions<T extends object>(target: T, key: keyof T & string): () => number {
  const source$ = target[key] as Observable<unknown>;
  let live = 0;
  const counted$ = new Observable<unknown>((subscriber) => {
    live++;
    const inner = source$.subscribe(subscriber);
    return () => {
      live--;
      inner.unsubscribe();
    };
  });
  Object.defineProperty(target, key, { value: counted$ });
  return () => live;
}
