/**
 * One HTTP/1.1 keep-alive connection to 127.0.0.1 (plain or TLS), one request at a time, written
 * on a raw socket so that what Node's agent hides stays visible: a refused connect, a connection
 * that failed before the request was written, one closed or reset after it was, and a response
 * cut half-way. It reads only what the stress server sends: a head with `content-length`.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { checkResponse } from './workload';

export interface Http1Target {
  readonly port: number;
  /** Present for HTTPS: the certificate to trust. */
  readonly ca?: Buffer;
}

export type OpenResult = { kind: 'open'; connection: Http1Connection } | { kind: 'refused' } | { kind: 'failed'; reason: string };

export type RequestResult =
  | { kind: 'completed'; closeAfter: boolean }
  /** A whole response that is not the right one: a bug of the server, never a race. */
  | { kind: 'bad'; reason: string }
  | { kind: 'failed'; reason: string };

const headEnd = Buffer.from('\r\n\r\n');
const empty = Buffer.alloc(0);

/** Connects; `timeoutMs` bounds the TCP connect and (HTTPS) the TLS handshake. */
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
      settle(error.code === 'ECONNREFUSED' ? { kind: 'refused' } : { kind: 'failed', reason: `connect: ${error.code ?? error.message}` });
    };
    const onClose = (): void => settle({ kind: 'failed', reason: 'connect: closed' });
    const timer = setTimeout(() => {
      socket.destroy();
      settle({ kind: 'failed', reason: 'connect: timeout' });
    }, timeoutMs);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.once(target.ca === undefined ? 'connect' : 'secureConnect', () => settle({ kind: 'open', connection: new Http1Connection(socket) }));
  });
}

export class Http1Connection {
  /** Requests written on this connection. */
  requests = 0;
  private buffer: Buffer = empty;
  private pending: { id: string; resolve: (result: RequestResult) => void; timer: NodeJS.Timeout } | undefined;
  private closed = false;
  private error: string | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => (this.error = error.code ?? error.message));
    socket.on('close', () => {
      this.closed = true;
      const reason = this.error ?? (this.buffer.length > 0 ? 'closed mid-response' : 'closed');
      this.settle({ kind: 'failed', reason });
    });
  }

  /** A request can be written: open, and the server has not ended its side. */
  get usable(): boolean {
    return !this.closed && !this.socket.readableEnded && this.socket.writable;
  }

  /** Writes one request and reads its whole response; `timeoutMs` bounds the wait. */
  request(id: string, timeoutMs: number): Promise<RequestResult> {
    if (this.pending !== undefined) throw new Error('Http1Connection: one request at a time');
    this.requests++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.settle({ kind: 'failed', reason: 'no answer by the deadline' });
        this.socket.destroy();
      }, Math.max(0, timeoutMs));
      this.pending = { id, resolve, timer };
      this.socket.write(`GET /?id=${id} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: ${id}\r\n\r\n`);
    });
  }

  /** Closes it; nothing is pending between requests, so no byte is lost by not ending it politely. */
  destroy(): void {
    this.socket.destroy();
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
    const pending = this.pending;
    if (pending === undefined) {
      this.fail('bytes with no request pending');
      return;
    }
    const end = this.buffer.indexOf(headEnd);
    if (end < 0) return;
    const lines = this.buffer.toString('latin1', 0, end).split('\r\n');
    const status = Number((lines[0] ?? '').split(' ')[1]);
    let length = -1;
    let echoed: string | undefined;
    let closeAfter = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'x-request-id') echoed = value;
      else if (name === 'connection') closeAfter = value.toLowerCase().split(',').some((token) => token.trim() === 'close');
    }
    if (!Number.isInteger(length) || length < 0) {
      this.fail('a response without content-length');
      return;
    }
    const total = end + headEnd.length + length;
    if (this.buffer.length < total) return;
    const body = this.buffer.subarray(end + headEnd.length, total);
    this.buffer = this.buffer.subarray(total);
    const wrong = checkResponse(pending.id, status, echoed, body);
    if (wrong !== undefined) {
      this.fail(wrong);
      return;
    }
    if (this.buffer.length > 0) {
      this.fail('bytes after the response');
      return;
    }
    this.settle({ kind: 'completed', closeAfter });
  }

  /** A response that is not what the server should send: the request is bad, the connection ends. */
  private fail(reason: string): void {
    const pending = this.pending;
    if (pending !== undefined) {
      this.pending = undefined;
      clearTimeout(pending.timer);
      pending.resolve({ kind: 'bad', reason });
    }
    this.socket.destroy();
  }
}
