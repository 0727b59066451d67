/**
 * HTTP/2 clients, over TLS (h2) or in the clear (h2c): request loops that share one
 * `http2.connect` session per group (several streams in flight on one connection, as browsers and
 * gRPC clients do). A group opens its next session when the current one has received GOAWAY or
 * closed.
 */
import * as http2 from 'node:http2';
import type { Outcome, Requester, Verify, WholeResponse } from './loops';

/** What asking a group for a session gave: an open session, a refusal, or another failure. */
type SessionResult =
  { kind: 'open'; session: http2.ClientHttp2Session } | { kind: 'refused' } | { kind: 'failed'; reason: string };

/** What became of one stream: its whole response, a failure, or `unsent` (the session took no new stream). */
export type StreamResult = ({ kind: 'response' } & WholeResponse) | { kind: 'failed' | 'unsent'; reason: string };

/** A loop gives up a request after this many sessions that would not take its stream. */
const maxUnsent = 1_000;

/** RFC 9113 §7 names of the error codes a stream can end with. */
const rstNames: Record<number, string> = {
  [http2.constants.NGHTTP2_PROTOCOL_ERROR]: 'PROTOCOL_ERROR',
  [http2.constants.NGHTTP2_INTERNAL_ERROR]: 'INTERNAL_ERROR',
  [http2.constants.NGHTTP2_REFUSED_STREAM]: 'REFUSED_STREAM',
  [http2.constants.NGHTTP2_CANCEL]: 'CANCEL',
};

/** A refused connect, or another failure. */
export function connectFailure(error: NodeJS.ErrnoException): { kind: 'refused' } | { kind: 'failed'; reason: string } {
  if (error.code === 'ECONNREFUSED') return { kind: 'refused' };
  return { kind: 'failed', reason: `connect: ${error.code ?? error.message}` };
}

/** Where a group connects: a port of 127.0.0.1; with `ca`, over TLS trusting it (h2), without, in the clear (h2c). */
export type H2Target = { readonly port: number; readonly ca?: Buffer; readonly connectTimeoutMs: number };

/** One session at a time to 127.0.0.1:`port`, shared by the request loops of a group. */
export class SessionGroup {
  /** Sessions this group opened. */
  opened = 0;
  private current: Promise<SessionResult> | undefined;
  /** What `current` gave, once it has settled. */
  private last: SessionResult | undefined;
  private readonly usable = new WeakSet<http2.ClientHttp2Session>();

  constructor(private readonly target: H2Target) {}

  /**
   * The session to send on: the one being opened (loops that ask meanwhile share it), the open
   * one while it takes new streams, or a new one. A refused connect stays the answer: the loops
   * stop on it. A failed connect is given once to the loops waiting for it; the next ask retries.
   */
  session(): Promise<SessionResult> {
    const last = this.last;
    const keep = last === undefined || last.kind === 'refused' || (last.kind === 'open' && this.usable.has(last.session));
    if (this.current !== undefined && keep) return this.current;
    this.last = undefined;
    const attempt: Promise<SessionResult> = this.connect().then((result) => {
      if (this.current === attempt) this.last = result;
      return result;
    });
    this.current = attempt;
    return attempt;
  }

  /** Closes the open session, letting streams still open end. */
  close(): void {
    if (this.last?.kind === 'open') this.last.session.close();
  }

  private connect(): Promise<SessionResult> {
    return new Promise((resolve) => {
      const { port, ca } = this.target;
      const session =
        ca === undefined ? http2.connect(`http://127.0.0.1:${port}`) : http2.connect(`https://127.0.0.1:${port}`, { ca });
      this.opened++;
      // A promise settles once: what comes after the first outcome changes nothing.
      const settle = (result: SessionResult): void => {
        clearTimeout(timer);
        resolve(result);
      };
      const timer = setTimeout(() => {
        session.destroy();
        settle({ kind: 'failed', reason: 'connect: timeout' });
      }, this.target.connectTimeoutMs);
      const unusable = (): boolean => this.usable.delete(session);
      session.on('error', (error: NodeJS.ErrnoException) => {
        unusable();
        settle(connectFailure(error));
      });
      session.on('goaway', unusable);
      session.on('close', () => {
        unusable();
        settle({ kind: 'failed', reason: 'connect: closed' });
      });
      session.once('connect', () => {
        this.usable.add(session);
        settle({ kind: 'open', session });
      });
    });
  }
}

/** One request for `id` on `session`: its whole response, or how it failed; `timeoutMs` bounds the wait. */
export function requestOnSession(session: http2.ClientHttp2Session, id: string, timeoutMs: number): Promise<StreamResult> {
  return new Promise((resolve) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ':path': `/?id=${id}`, 'x-request-id': id }, { endStream: true });
    } catch (error) {
      resolve({ kind: 'unsent', reason: (error as NodeJS.ErrnoException).code ?? String(error) });
      return;
    }
    const response = { status: 0, echoedId: undefined as string | undefined, chunks: [] as Buffer[], ended: false };
    let error: string | undefined;
    // At the deadline: RST_STREAM CANCEL, then the stream ends here. `close()` alone only marks it
    // closed; its 'close' waits for nghttp2 to close the stream once that frame is out, and on a
    // session whose connection stays open but moves nothing more (E hammer over h2 under
    // http-terminator) it never came, so the loop never ended. `destroy()` keeps the code `close()`
    // set (same reason, same class) and emits 'close' without the network; a peer that still reads
    // gets the RST_STREAM CANCEL as before.
    const cancel = (): void => {
      error = 'no answer by the deadline';
      stream.close(http2.constants.NGHTTP2_CANCEL);
      stream.destroy();
    };
    const timer = setTimeout(cancel, Math.max(0, timeoutMs));
    stream.on('response', (headers) => {
      response.status = Number(headers[':status']);
      const echoed = headers['x-request-id'];
      response.echoedId = typeof echoed === 'string' ? echoed : undefined;
    });
    stream.on('data', (chunk: Buffer) => response.chunks.push(chunk));
    stream.on('end', () => (response.ended = true));
    stream.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    stream.on('close', () => {
      clearTimeout(timer);
      const code = stream.rstCode;
      if (code !== http2.constants.NGHTTP2_NO_ERROR) error = `${error ?? 'closed'}, RST_STREAM ${rstNames[code] ?? String(code)}`;
      if (error === undefined && !response.ended) error = 'closed before the end';
      const { status, echoedId, chunks } = response;
      if (error !== undefined) resolve({ kind: 'failed', reason: error });
      else resolve({ kind: 'response', status, echoedId, body: Buffer.concat(chunks) });
    });
  });
}

/**
 * The group's session, or a connect timeout once `deadline` (ms since the epoch) has passed: the
 * group's connect may run up to `connectTimeoutMs` for the other loops, a loop waits no longer than
 * its request may (as HTTP/1's `openHttp1` within the request's timeout).
 */
function sessionBy(group: SessionGroup, deadline: number): Promise<SessionResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<SessionResult>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'failed', reason: 'connect: timeout' }), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([group.session(), late]).finally(() => clearTimeout(timer));
}

/** A request loop's stream on its group's session; a stream the session would not take goes out, same id, on the next one. */
export function h2Requester(group: SessionGroup, verify: Verify): Requester {
  let lastSession: http2.ClientHttp2Session | undefined;
  return {
    async request(id, timeoutMs): Promise<Outcome> {
      const deadline = Date.now() + timeoutMs;
      for (let unsent = 1; ; unsent++) {
        const opened = await sessionBy(group, deadline);
        if (opened.kind === 'refused') return opened;
        if (opened.kind === 'failed') return { kind: 'failed', reason: opened.reason, sent: false, fresh: true };
        const fresh = opened.session !== lastSession;
        lastSession = opened.session;
        const result = await requestOnSession(opened.session, id, deadline - Date.now());
        if (result.kind === 'failed') return { kind: 'failed', reason: result.reason, sent: true, fresh };
        if (result.kind === 'response') {
          const wrong = verify(id, result);
          return wrong === undefined ? { kind: 'completed' } : { kind: 'wrong', reason: wrong, sent: true, fresh };
        }
        if (unsent >= maxUnsent) return { kind: 'failed', reason: `unsent: ${result.reason}`, sent: false, fresh: true };
        if (Date.now() >= deadline) return { kind: 'failed', reason: 'unsent by the deadline', sent: false, fresh: true };
      }
    },
    close: () => undefined,
  };
}
