/**
 * One HTTP/1.1 keep-alive connection to 127.0.0.1 (plain or TLS), one request at a time, written on
 * a raw socket so that what Node's agent hides stays visible: a refused connect, a connection that
 * failed before the request was written, one closed or reset after it was, and a response cut
 * half-way. It reads only what the harness's servers send: a head with `content-length`.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Outcome, Requester, Verify, WholeResponse } from './request-loops';

/** Where to connect: a port of 127.0.0.1, and for HTTPS the certificate to trust. */
export interface Http1Target {
  readonly port: number;
  readonly ca?: Buffer;
}

/** What a connect gave: an open connection, a refusal (`ECONNREFUSED`), or another failure. */
export type OpenResult = { kind: 'open'; connection: Http1Connection } | { kind: 'refused' } | { kind: 'failed'; reason: string };

/** What became of one request: its whole response, a failure (`sent`: it was written), or bytes that are no response to it. */
export type RequestResult =
  | ({ kind: 'response'; closeAfter: boolean } & WholeResponse)
  | { kind: 'failed'; sent: boolean; reason: string }
  | { kind: 'wrong'; reason: string };

const headEnd = Buffer.from('\r\n\r\n');
const empty = Buffer.alloc(0);

/** Connects to `target`; `timeoutMs` bounds the TCP connect and (HTTPS) the TLS handshake. */
export function openHttp1(target: Http1Target, timeoutMs: number): Promise<OpenResult> {
  return new Promise((resolve) => {
    const socket =
      target.ca === undefined
        ? net.connect({ host: '127.0.0.1', port: target.port })
        : tls.connect({ host: '127.0.0.1', port: target.port, ca: target.ca });
    const settle = (result: OpenResult): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('close', onClose);
      resolve(result);
    };
    const onError = (error: NodeJS.ErrnoException): void => {
      socket.destroy();
      settle(
        error.code === 'ECONNREFUSED'
          ? { kind: 'refused' }
          : { kind: 'failed', reason: `connect: ${error.code ?? error.message}` },
      );
    };
    const onClose = (): void => {
      settle({ kind: 'failed', reason: 'connect: closed' });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      settle({ kind: 'failed', reason: 'connect: timeout' });
    }, timeoutMs);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.once(target.ca === undefined ? 'connect' : 'secureConnect', () => {
      settle({ kind: 'open', connection: new Http1Connection(socket) });
    });
  });
}

/** One open keep-alive connection: one request at a time, and who closed it. */
export class Http1Connection {
  /** The server ended or reset the connection before this side closed it. */
  closedByServer = false;
  private closed = false;
  /** This side ended or destroyed it. */
  private closing = false;
  private buffer: Buffer = empty;
  private pending: { resolve: (result: RequestResult) => void; timer: NodeJS.Timeout } | undefined;
  private error: string | undefined;
  private destroyReason: string | undefined;
  private readonly closeWaiters = new Set<() => void>();

  constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.receive(chunk);
    });
    socket.on('end', () => {
      if (!this.closing) this.closedByServer = true;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.error = error.code ?? error.message;
      if (!this.closing) this.closedByServer = true;
    });
    socket.on('close', () => {
      this.closed = true;
      this.settle({
        kind: 'failed',
        sent: true,
        reason: this.destroyReason ?? this.error ?? (this.buffer.length > 0 ? 'closed mid-response' : 'closed'),
      });
      for (const wake of [...this.closeWaiters]) wake();
    });
  }

  /** A request can be written: open, and the server has not ended its side. */
  get usable(): boolean {
    return !this.closed && !this.socket.readableEnded && this.socket.writable;
  }

  /** Writes one request for `id` and reads its whole response; `timeoutMs` bounds the wait. */
  request(id: string, timeoutMs: number): Promise<RequestResult> {
    if (this.pending !== undefined) throw new Error('Http1Connection: one request at a time');
    if (!this.usable) return Promise.resolve({ kind: 'failed', sent: false, reason: 'closed before send' });
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.settle({ kind: 'failed', sent: true, reason: 'no answer by the deadline' });
          this.destroy('no answer by the deadline');
        },
        Math.max(0, timeoutMs),
      );
      this.pending = { resolve, timer };
      this.socket.write(`GET /?id=${id} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: ${id}\r\n\r\n`);
    });
  }

  /** Ends this side politely, as a client does after `Connection: close`. */
  end(): void {
    this.closing = true;
    this.socket.end();
  }

  /** Destroys the connection; a request still pending fails with `reason`. */
  destroy(reason: string): void {
    if (this.closed) return;
    this.closing = true;
    this.destroyReason ??= reason;
    this.socket.destroy();
  }

  /** True once the connection is closed, if it is within `timeoutMs`. */
  whenClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.closeWaiters.delete(wake);
        resolve(this.closed);
      };
      const timer = setTimeout(wake, Math.max(0, timeoutMs));
      this.closeWaiters.add(wake);
    });
  }

  private settle(result: RequestResult): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve(result);
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.pending === undefined) {
      this.wrong('bytes with no request pending');
      return;
    }
    const end = this.buffer.indexOf(headEnd);
    if (end < 0) return;
    const lines = this.buffer.toString('latin1', 0, end).split('\r\n');
    const statusLine = lines[0] ?? '';
    let length = -1;
    let echoedId: string | undefined;
    let closeAfter = statusLine.startsWith('HTTP/1.0');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'x-request-id') echoedId = value;
      else if (name === 'connection')
        closeAfter = value
          .toLowerCase()
          .split(',')
          .some((token) => token.trim() === 'close');
    }
    if (!Number.isInteger(length) || length < 0) {
      this.wrong('a response without content-length');
      return;
    }
    const total = end + headEnd.length + length;
    if (this.buffer.length < total) return;
    const body = this.buffer.subarray(end + headEnd.length, total);
    this.buffer = this.buffer.subarray(total);
    if (this.buffer.length > 0) this.wrong('bytes after the response');
    else this.settle({ kind: 'response', status: Number(statusLine.split(' ')[1]), echoedId, body, closeAfter });
  }

  /** Bytes that are no right response: the request (if any) gets `reason`, and the connection ends. */
  private wrong(reason: string): void {
    this.settle({ kind: 'wrong', reason });
    this.destroy(reason);
  }
}

/** A request loop's keep-alive connection, opened when needed and replaced after `Connection: close` or a failure. */
export function http1Requester(
  target: Http1Target,
  connectTimeoutMs: number,
  verify?: Verify,
): Requester & { readonly connects: number } {
  let connection: Http1Connection | undefined;
  let connects = 0;
  return {
    get connects() {
      return connects;
    },
    async request(id: string, timeoutMs: number): Promise<Outcome> {
      let fresh = false;
      if (connection === undefined || !connection.usable) {
        connection?.destroy('replaced');
        connection = undefined;
        connects++;
        const opened = await openHttp1(target, Math.max(1, Math.min(connectTimeoutMs, timeoutMs)));
        if (opened.kind === 'refused') return opened;
        if (opened.kind === 'failed') return { kind: 'failed', reason: opened.reason, sent: false, fresh: true };
        connection = opened.connection;
        fresh = true;
      }
      const current = connection;
      const result = await current.request(id, timeoutMs);
      const wrong = result.kind === 'response' ? verify?.(id, result) : undefined;
      if (result.kind === 'response' && wrong === undefined) {
        if (result.closeAfter) current.end();
        return { kind: 'completed' };
      }
      current.destroy('failed');
      connection = undefined;
      if (result.kind === 'failed') return { kind: 'failed', reason: result.reason, sent: result.sent, fresh };
      return { kind: 'wrong', reason: result.kind === 'wrong' ? result.reason : (wrong as string), sent: true, fresh };
    },
    close: () => connection?.destroy('done'),
  };
}
