import type * as http from 'node:http';
import type * as https from 'node:https';
import type { Observable } from 'rxjs';
import { GracefulOptions, GracefulServer } from '../../src';
import { loopback, portOf, RawClient } from './sockets';

/** Steps to run after the current test, in order; registers the `afterEach` that runs them. */
export function afterEachTest(): Array<() => void> {
  const steps: Array<() => void> = [];
  afterEach(() => {
    for (const step of steps.splice(0)) step();
  });
  return steps;
}

/**
 * Wraps `server`, listens on 127.0.0.1 and hands back a `client()` that opens a raw keep-alive
 * connection (TLS with `tls: true`); the server and every client are closed after the test.
 */
export async function serveForTest(
  server: http.Server | https.Server,
  options: GracefulOptions,
  cleanup: Array<() => void>,
  { tls = false }: { tls?: boolean } = {},
): Promise<{ graceful: GracefulServer; port: number; client: () => Promise<RawClient> }> {
  const graceful = new GracefulServer(server, options);
  const port = portOf(await graceful.listen(loopback));
  cleanup.push(() => {
    server.closeAllConnections();
    server.close();
  });
  const client = async (): Promise<RawClient> => {
    const c = await (tls ? RawClient.connectTls(port) : RawClient.connect(port));
    cleanup.push(() => c.destroy());
    return c;
  };
  return { graceful, port, client };
}

/** Every value `source$` emits from now on, in order; the subscription ends after the test. */
export function record<T>(source$: Observable<T>, cleanup: Array<() => void>): T[] {
  const values: T[] = [];
  const subscription = source$.subscribe({
    next: (value) => values.push(value),
    error: (error: unknown) => {
      throw error;
    },
  });
  cleanup.push(() => subscription.unsubscribe());
  return values;
}
