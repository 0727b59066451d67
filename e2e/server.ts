/**
 * The server process of the haproxy, fetch and h2load scenarios: a `GracefulServer` around
 * `http.createServer` or `http2.createServer` (h2c) on 127.0.0.1, shut down by SIGTERM, that
 * answers `/ready` with its readiness probe and anything else after a short random delay. It prints
 * `listening <port>`, `shutdown <signal>`, then `done <ShutdownResult as JSON>` once `wait()`
 * settles, and must then exit by itself. Its one argument is a `ServerConfig` as JSON.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tap, take } from 'rxjs/operators';
import { fromSignals, GracefulServer } from '../src';
import type { GracefulOptions } from '../src';

/** What the orchestrator asks of a server process. */
export interface ServerConfig {
  readonly protocol: 'http' | 'h2';
  /** `GracefulServer`'s `timeout`, ms. */
  readonly timeout: number;
  /** `GracefulServer`'s `drainDelay`, ms; absent: the library's default. */
  readonly drainDelay?: number;
  /** Each answer waits a random 0 to this many ms. */
  readonly maxDelayMs: number;
  /** Answer `GET /ready` with `graceful.readinessProbe` (HTTP/1 only). */
  readonly readiness: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ServerConfig;
const body = Buffer.from(`ok from ${process.pid}\n`);

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

function answer(res: Response): void {
  res.setHeader('content-type', 'text/plain');
  res.setHeader('content-length', body.length);
  res.setHeader('x-server-pid', process.pid);
  res.end(body);
}

function handle(req: Request, res: Response): void {
  if (config.readiness && req.url === '/ready') {
    graceful.readinessProbe(req as http.IncomingMessage, res as http.ServerResponse);
    return;
  }
  const delayMs = Math.floor(Math.random() * (config.maxDelayMs + 1));
  if (delayMs === 0) answer(res);
  else setTimeout(() => answer(res), delayMs);
}

const options: GracefulOptions =
  config.drainDelay === undefined ? { timeout: config.timeout } : { timeout: config.timeout, drainDelay: config.drainDelay };
const graceful = new GracefulServer(config.protocol === 'h2' ? http2.createServer(handle) : http.createServer(handle), options);

if (config.readiness && typeof (graceful as { readinessProbe?: unknown }).readinessProbe !== 'function') {
  console.log('fatal: GracefulServer has no readinessProbe(req, res) method');
  process.exit(2);
}

graceful.listen({ port: 0, host: '127.0.0.1' }).then(
  (address) => {
    console.log(`listening ${(address as AddressInfo).port}`);
    fromSignals('SIGTERM')
      .pipe(
        take(1),
        tap((signal) => console.log(`shutdown ${signal}`)),
      )
      .subscribe(graceful.shutdown$);
    return graceful.wait().then((result) => console.log(`done ${JSON.stringify(result)}`));
  },
  (error: unknown) => {
    console.log(`fatal: ${String(error)}`);
    process.exitCode = 2;
  },
);
