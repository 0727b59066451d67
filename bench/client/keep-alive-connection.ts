import net from 'node:net';

/**
 * A minimal HTTP/1.1 keep-alive client connection to 127.0.0.1, one request at a time, that
 * tells apart what Node's agent hides: a refused connect, a connection closed before the
 * request was written, a reset after it was written, an incomplete response.
 * It understands the benchmark server's responses only (always `content-length`).
 */

export type RequestOutcome =
  | { kind: 'response'; status: number; closeAfter: boolean }
  | { kind: 'failed'; sent: boolean; reason: string };

export type OpenOutcome =
  | { kind: 'open'; connection: KeepAliveConnection }
  | { kind: 'refused' }
  | { kind: 'error'; reason: string };

const headEnd = Buffer.from('\r\n\r\n');
const noBytes = Buffer.alloc(0);

export function openConnection(port: number, timeoutMs: number): Promise<OpenOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const onError = (error: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      resolve(error.code === 'ECONNREFUSED' ? { kind: 'refused' } : { kind: 'error', reason: error.code ?? error.message });
    };
    const timer = setTimeout(() => {
      socket.off('error', onError);
      socket.destroy();
      resolve({ kind: 'error', reason: 'connect timeout' });
    }, timeoutMs);
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve({ kind: 'open', connection: new KeepAliveConnection(socket) });
    });
  });
}

export class KeepAliveConnection {
  /** Requests written on this connection. */
  requestsSent = 0;
  closed = false;
  /** The server ended or reset the connection before this side closed it. */
  closedByServer = false;

  private buffer: Buffer = noBytes;
  private pending: ((outcome: RequestOutcome) => void) | null = null;
  private closingOurselves = false;
  private abortReason: string | null = null;
  private lastError: string | null = null;
  private readonly closeWaiters: (() => void)[] = [];

  constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => {
      if (!this.closingOurselves) this.closedByServer = true;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.lastError = error.code ?? error.message;
      if (!this.closingOurselves && this.abortReason === null) this.closedByServer = true;
    });
    socket.on('close', () => this.onClose());
  }

  /** True while a request can be written: open, and the server has not ended its side. */
  get usable(): boolean {
    return !this.closed && !this.socket.readableEnded && this.socket.writable;
  }

  request(id: string): Promise<RequestOutcome> {
    if (this.pending) throw new Error('KeepAliveConnection: one request at a time');
    if (!this.usable) return Promise.resolve({ kind: 'failed', sent: false, reason: 'closed before send' });
    this.requestsSent++;
    return new Promise((resolve) => {
      this.pending = resolve;
      this.socket.write(`GET /?id=${id} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: ${id}\r\n\r\n`);
    });
  }

  /** Ends this side gracefully (after a `Connection: close` response, or when done). */
  close(): void {
    this.closingOurselves = true;
    this.socket.end();
  }

  /** Destroys the connection; a pending request fails with `reason`. */
  abort(reason: string): void {
    if (this.closed) return;
    this.abortReason = reason;
    this.closingOurselves = true;
    this.socket.destroy();
  }

  /** True if the connection is (or becomes) closed within `timeoutMs`. */
  whenClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.closeWaiters.splice(this.closeWaiters.indexOf(wake), 1);
        resolve(false);
      }, Math.max(0, timeoutMs));
      this.closeWaiters.push(wake);
    });
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const resolve = this.pending;
    if (!resolve) return;
    const end = this.buffer.indexOf(headEnd);
    if (end < 0) return;
    const lines = this.buffer.toString('latin1', 0, end).split('\r\n');
    const statusLine = lines[0] ?? '';
    let contentLength = -1;
    let closeAfter = statusLine.startsWith('HTTP/1.0');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === 'content-length') contentLength = Number(value);
      else if (name === 'connection') closeAfter = value.split(',').some((token) => token.trim() === 'close');
    }
    if (!(contentLength >= 0)) {
      this.pending = null;
      resolve({ kind: 'failed', sent: true, reason: 'response without content-length' });
      this.abort('protocol');
      return;
    }
    const total = end + headEnd.length + contentLength;
    if (this.buffer.length < total) return;
    this.buffer = this.buffer.subarray(total);
    this.pending = null;
    resolve({ kind: 'response', status: Number(statusLine.split(' ')[1]), closeAfter });
  }

  private onClose(): void {
    this.closed = true;
    const resolve = this.pending;
    if (resolve) {
      this.pending = null;
      const reason = this.abortReason ?? this.lastError ?? (this.buffer.length > 0 ? 'closed mid-response' : 'closed');
      resolve({ kind: 'failed', sent: true, reason });
    }
    for (const wake of this.closeWaiters.splice(0)) wake();
  }
}
