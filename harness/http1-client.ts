/**
 * One HTTP/1.1 keep-alive connection to 127.0.0.1 (plain or TLS), one request at a time, written on
 * a raw socket so that what Node's agent hides stays visible: a refused connect, a connection that
 * failed before the request was written, one closed or reset after it was, and a response cut
 * half-way. It reads only what the harness's servers send: a head with `content-length`.
 */
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tls from 'node:tls';
import { connectFailure } from './h2-client';
import type { Outcome, Requester, Verify, WholeResponse } from './loops';

/** Where to connect: a port of 127.0.0.1, and for HTTPS the certificate to trust. */
export type Http1Target = { readonly port: number; readonly ca?: Buffer };

/** What a connect gave: an open connection, a refusal (`ECONNREFUSED`), or another failure. */
export type OpenResult = { kind: 'open'; connection: Http1Connection } | { kind: 'refused' } | { kind: 'failed'; reason: string };

/** What became of one request: its whole response, a failure (`sent`: it was written), or bytes that are no response to it. */
export type RequestResult =
  | ({ kind: 'response'; closeAfter: boolean } & WholeResponse)
  | { kind: 'failed'; sent: boolean; reason: string }
  | { kind: 'wrong'; reason: string };

const headEnd = Buffer.from('\r\n\r\n');

/** Connects to `target`; `timeoutMs` bounds the TCP connect and (HTTPS) the TLS handshake. */
export function openHttp1(target: Http1Target, timeoutMs: number): Promise<OpenResult> {
  return new Promise((resolve) => {
    const { port, ca } = target;
    const socket = ca === undefined ? net.connect({ host: '127.0.0.1', port }) : tls.connect({ host: '127.0.0.1', port, ca });
    const settle = (result: OpenResult): void => {
      clearTimeout(timer);
      socket.off('error', onError).off('close', onClose);
      if (result.kind !== 'open') socket.destroy();
      resolve(result);
    };
    const onError = (error: NodeJS.ErrnoException): void => settle(connectFailure(error));
    const onClose = (): void => settle({ kind: 'failed', reason: 'connect: closed' });
    const timer = setTimeout(() => settle({ kind: 'failed', reason: 'connect: timeout' }), timeoutMs);
    socket.once('error', onError).once('close', onClose);
    socket.once(ca === undefined ? 'connect' : 'secureConnect', () =>
      settle({ kind: 'open', connection: new Http1Connection(socket) }),
    );
  });
}

/** One open keep-alive connection: one request at a time. */
export class Http1Connection {
  private closed = false;
  private buffer: Buffer = Buffer.alloc(0);
  private pending: { resolve: (result: RequestResult) => void; timer: NodeJS.Timeout } | undefined;
  private error: string | undefined;
  private destroyReason: string | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => (this.error = error.code ?? error.message));
    socket.on('close', () => {
      this.closed = true;
      const reason = this.destroyReason ?? this.error ?? (this.buffer.length > 0 ? 'closed mid-response' : 'closed');
      this.settle({ kind: 'failed', sent: true, reason });
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
      const expire = (): void => {
        this.settle({ kind: 'failed', sent: true, reason: 'no answer by the deadline' });
        this.destroy('no answer by the deadline');
      };
      this.pending = { resolve, timer: setTimeout(expire, Math.max(0, timeoutMs)) };
      this.socket.write(`GET /?id=${id} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: ${id}\r\n\r\n`);
    });
  }

  /** Ends this side politely, as a client does after `Connection: close`. */
  end(): void {
    this.socket.end();
  }

  /** Destroys the connection; a request still pending fails with `reason`. */
  destroy(reason: string): void {
    if (this.closed) return;
    this.destroyReason ??= reason;
    this.socket.destroy();
  }

  /** True once the connection is closed, if it is within `timeoutMs`. */
  whenClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    const closed = new Promise<boolean>((resolve) => this.socket.once('close', () => resolve(true)));
    return Promise.race([closed, sleep(Math.max(0, timeoutMs), false, { ref: false })]);
  }

  private settle(result: RequestResult): void {
    if (this.pending === undefined) return;
    clearTimeout(this.pending.timer);
    this.pending.resolve(result);
    this.pending = undefined;
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const wrong = this.pending === undefined ? 'bytes with no request pending' : this.parse();
    if (wrong !== undefined) this.wrong(wrong);
  }

  /** Settles the pending request once its whole response is in; what is wrong with the bytes, if anything. */
  private parse(): string | undefined {
    const end = this.buffer.indexOf(headEnd);
    if (end < 0) return undefined;
    const [statusLine = '', ...lines] = this.buffer.toString('latin1', 0, end).split('\r\n');
    const headers = new Map(
      lines.map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    );
    const length = Number(headers.get('content-length') ?? -1);
    if (!Number.isInteger(length) || length < 0) return 'a response without content-length';
    const total = end + headEnd.length + length;
    if (this.buffer.length < total) return undefined;
    const body = this.buffer.subarray(end + headEnd.length, total);
    this.buffer = this.buffer.subarray(total);
    if (this.buffer.length > 0) return 'bytes after the response';
    const connection = headers.get('connection')?.toLowerCase().split(',');
    const closeAfter =
      connection === undefined ? statusLine.startsWith('HTTP/1.0') : connection.some((token) => token.trim() === 'close');
    const status = Number(statusLine.split(' ')[1]);
    this.settle({ kind: 'response', status, echoedId: headers.get('x-request-id'), body, closeAfter });
    return undefined;
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
  verify: Verify,
): Requester & { readonly connects: number } {
  let connection: Http1Connection | undefined;
  let connects = 0;
  return {
    get connects() {
      return connects;
    },
    async request(id, timeoutMs): Promise<Outcome> {
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
      const wrong = result.kind === 'response' ? verify(id, result) : result.kind === 'wrong' ? result.reason : undefined;
      if (result.kind === 'response' && wrong === undefined) {
        if (result.closeAfter) current.end();
        return { kind: 'completed' };
      }
      current.destroy('failed');
      connection = undefined;
      if (result.kind === 'failed') return { kind: 'failed', reason: result.reason, sent: result.sent, fresh };
      return { kind: 'wrong', reason: wrong ?? '', sent: true, fresh };
    },
    close: () => connection?.destroy('done'),
  };
}
