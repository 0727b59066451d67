/**
 * Requests in flight through a shutdown, over any protocol of the harness (bench C and D): each on
 * a connection (HTTP/2: a session) of its own, opened before any request is sent; one request, then
 * the connection kept open until the server closes it, as a keep-alive client keeps it. What counts
 * is whether the response came whole, and whether the server announced the close while the request
 * was in flight: `Connection: close` on the response (HTTP/1), or a GOAWAY with NO_ERROR on the
 * session before the stream ended (HTTP/2), rather than just dropping the connection.
 */
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { testCertificate } from './certificate';
import { requestOnSession, SessionGroup } from './h2-client';
import { openHttp1, type Http1Connection } from './http1-client';
import type { Protocol } from './protocol';

/** What one in-flight request saw: a whole response (status 200, whole body), and the close announced. */
export type InFlightOutcome = { readonly whole: boolean; readonly closeAnnounced: boolean };

/** An open connection (HTTP/2: session) waiting to send its one request. */
export type InFlightConnection = {
  /** Sends request `id`, reads its response, waits for the server to close the connection, then destroys it; `deadline` (`performance.now()`, ms) bounds it all. */
  requestUntilClosed(id: string, deadline: number): Promise<InFlightOutcome>;
};

const failed: InFlightOutcome = { whole: false, closeAnnounced: false };

const left = (deadline: number): number => Math.max(0, deadline - performance.now());

/**
 * Opens a connection of its own to 127.0.0.1:`port` over `protocol` (TLS handshake included), or
 * null if it could not within `connectTimeoutMs`. The harness opens every connection before any
 * request goes out, so that the requests are in flight together whatever the handshakes cost.
 */
export async function openInFlight(
  protocol: Protocol,
  port: number,
  connectTimeoutMs: number,
): Promise<InFlightConnection | null> {
  const ca = protocol === 'https' || protocol === 'h2' ? testCertificate().cert : undefined;
  if (protocol === 'h2' || protocol === 'h2c') {
    const group = new SessionGroup(ca === undefined ? { port, connectTimeoutMs } : { port, ca, connectTimeoutMs });
    const opened = await group.session();
    return opened.kind === 'open' ? overHttp2(opened.session) : null;
  }
  const opened = await openHttp1(ca === undefined ? { port } : { port, ca }, connectTimeoutMs);
  return opened.kind === 'open' ? overHttp1(opened.connection) : null;
}

function overHttp1(connection: Http1Connection): InFlightConnection {
  return {
    async requestUntilClosed(id, deadline) {
      const outcome = await connection.request(id, left(deadline));
      await connection.whenClosed(left(deadline));
      connection.destroy('done');
      if (outcome.kind !== 'response' || outcome.status !== 200) return failed;
      return { whole: true, closeAnnounced: outcome.closeAfter };
    },
  };
}

function overHttp2(session: http2.ClientHttp2Session): InFlightConnection {
  let goaway = false;
  session.on('goaway', (code: number) => (goaway ||= code === http2.constants.NGHTTP2_NO_ERROR));
  const closed = new Promise<void>((resolve) => (session.destroyed ? resolve() : session.once('close', resolve)));
  return {
    async requestUntilClosed(id, deadline) {
      const outcome = await requestOnSession(session, id, left(deadline));
      // Announced while the stream was in flight, as `Connection: close` is on its response; a
      // GOAWAY that comes later (Node's `session.destroy()` sends one) announces nothing.
      const closeAnnounced = goaway;
      await Promise.race([closed, sleep(left(deadline), undefined, { ref: false })]);
      session.destroy();
      return { whole: outcome.kind === 'response' && outcome.status === 200, closeAnnounced };
    },
  };
}
