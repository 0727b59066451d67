import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { filter, firstValueFrom, map, Observable, takeUntil, timer } from 'rxjs';

/** A self-signed certificate for localhost and 127.0.0.1, valid until 2126, made for the tests. */
export const testCertificate = {
  key: readFileSync(join(__dirname, '..', 'fixtures', 'tls', 'key.pem')),
  cert: readFileSync(join(__dirname, '..', 'fixtures', 'tls', 'cert.pem')),
};

/** One whole HTTP/1.1 response as a client read it. */
export interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * A raw keep-alive client on 127.0.0.1: it writes bytes as given (so tests can pipeline or send
 * half a head) and parses whole responses (Content-Length or chunked) off the socket in order.
 */
export class RawClient {
  readonly socket: net.Socket;
  private buffer = Buffer.alloc(0);
  private ended = false;
  private error: Error | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (error) => {
      this.error = error;
      this.wake();
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await withDeadline(once(socket, 'connect'), 2000, `a connection to 127.0.0.1:${port}`);
    return new RawClient(socket);
  }

  /** The same over TLS, trusting the test certificate (spec/fixtures/tls). */
  static async connectTls(port: number): Promise<RawClient> {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: testCertificate.cert });
    await withDeadline(once(socket, 'secureConnect'), 2000, `a TLS connection to 127.0.0.1:${port}`);
    return new RawClient(socket);
  }

  /** True once the server closed or reset the connection. */
  get closed(): boolean {
    return this.ended;
  }

  send(data: string): void {
    this.socket.write(data);
  }

  /** Sends `GET path` with an `x-id` header on this connection. */
  get(path: string, id = path): void {
    this.send(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-id: ${id}\r\n\r\n`);
  }

  /** Reads the next whole response; rejects if the connection ends first or after `ms`. */
  async read(ms = 3000): Promise<Response> {
    const deadline = Date.now() + ms;
    for (;;) {
      const response = this.parse();
      if (response !== undefined) return response;
      if (this.ended || this.error) {
        throw new Error(`the connection ended before a whole response (${this.buffer.length} bytes unread)`);
      }
      await this.change(deadline, 'a whole response');
    }
  }

  /** Resolves when the server has closed the connection; rejects after `ms`. */
  async waitClosed(ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.ended) await this.change(deadline, 'the server closing the connection');
  }

  /** Bytes received and not consumed as a response. */
  get unread(): number {
    return this.buffer.length;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private change(deadline: number, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(
        () => {
          this.waiters.delete(wake);
          reject(new Error(`timed out waiting for ${what}`));
        },
        Math.max(0, deadline - Date.now()),
      );
      const wake = (): void => {
        clearTimeout(timeout);
        this.waiters.delete(wake);
        resolve();
      };
      this.waiters.add(wake);
    });
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }

  private parse(): Response | undefined {
    const headEnd = this.buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return undefined;
    const [statusLine = '', ...lines] = this.buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const status = Number(statusLine.split(' ')[1]);
    let offset = headEnd + 4;
    let body: Buffer;
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = this.buffer.indexOf('\r\n', offset);
        if (lineEnd < 0) return undefined;
        const size = parseInt(this.buffer.subarray(offset, lineEnd).toString('latin1'), 16);
        if (this.buffer.length < lineEnd + 2 + size + 2) return undefined;
        parts.push(this.buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        offset = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (this.buffer.length < offset + length) return undefined;
      body = this.buffer.subarray(offset, offset + length);
      offset += length;
    }
    this.buffer = this.buffer.subarray(offset);
    return { status, headers, body: body.toString('utf8') };
  }
}

/** Rejects with a message naming what did not happen if `promise` takes longer than `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timeout: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timeout = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timeout));
}

/** The first value of `source$` that satisfies `predicate`, or a rejection naming `what` after `ms`. */
export async function waitForValue<T>(
  source$: Observable<T>,
  predicate: (value: T) => boolean,
  ms: number,
  what: string,
): Promise<T> {
  // Boxed, so that a value `undefined` is told apart from none before the deadline.
  const found$ = source$.pipe(
    filter(predicate),
    map((value) => ({ value })),
    takeUntil(timer(ms)),
  );
  const found = await firstValueFrom(found$, { defaultValue: undefined });
  if (found === undefined) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  return found.value;
}

/** Tries to connect and resolves with the error code (`ECONNREFUSED`) or 'connected'. */
export async function connectOutcome(port: number): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  try {
    await withDeadline(once(socket, 'connect'), 2000, 'connect or refusal');
    return 'connected';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  } finally {
    socket.destroy();
  }
}

/**
 * Has another process open `count` connections to `port`, and returns how many the kernel completed
 * within `waitMs` (all of them, or fewer when the listener's queue is full). This process's loop is
 * held meanwhile: what connects waits in the listener's accept queue. The other process then exits.
 */
export function connectsWhileHeld(port: number, count: number, waitMs: number): number {
  const client = `const net = require('node:net'); let open = 0;
    const report = () => { console.log(String(open)); process.exit(0); };
    for (let i = 0; i < ${count}; i++) net.connect(${port}, '127.0.0.1', () => ++open === ${count} && report()).on('error', () => undefined);
    setTimeout(report, ${waitMs});`;
  const { status, stdout } = spawnSync(process.execPath, ['-e', client], { timeout: waitMs + 10_000, encoding: 'utf8' });
  if (status !== 0) throw new Error(`the client process connecting to port ${port} ended with status ${String(status)}`);
  return Number(stdout.trim());
}

/** The port of an `AddressInfo | string` from `listen()`. */
export function portOf(address: net.AddressInfo | string): number {
  if (typeof address === 'string') throw new Error(`expected a TCP address, got ${address}`);
  return address.port;
}

export const loopback = { port: 0, host: '127.0.0.1' } as const;

/**
 * Resolves once `predicate()` holds, checking after each turn of the event loop; rejects with a
 * message naming `what` after `ms`. For conditions no event announces (a handler has run).
 */
export async function until(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** A synchronous busy-wait of `ms`: the event loop reads nothing meanwhile, as on a loaded machine. */
export function blockEventLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}
