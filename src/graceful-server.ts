import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type * as https from 'node:https';
import { AddressInfo, ListenOptions, Server as NetServer, Socket } from 'node:net';
import { filter, firstValueFrom, Observable, SchedulerLike, Subject } from 'rxjs';
import { Lifecycle, ShutdownResult } from './core/lifecycle';
import type { ConnState, ServerState } from './core/state';
import { describeValue, NotReadyError } from './errors';
import { ConnectionEvent, HttpAdapter, isHttpServer } from './node/http-adapter';
import { interceptClose } from './node/intercept';
import { unrefScheduler } from './node/unref-scheduler';
import { warmUpShutdownPath } from './warm-up';

/** Any server `GracefulServer` wraps. */
export type WrappableServer = http.Server | https.Server | http2.Http2Server | http2.Http2SecureServer;

/** Options of `GracefulServer`. Every duration is in milliseconds. */
export interface GracefulOptions {
  /** How long survivors may live once the drain begins; 0 = wait forever (default 0), at most 2^31 - 1. Go's `Timeout`. */
  timeout?: number;
  /** `serve()` settles only once the drain has finished, not when accepting stops (default false). */
  syncShutdown?: boolean;
  /** Time source of every timer the library starts (default: `asyncScheduler`'s clock, timers unref'd). */
  scheduler?: SchedulerLike;
  /** Called on every state change of every connection: the plain-callback twin of `connections$`. */
  onConnState?: (socket: Socket, state: ConnState) => void;
  /** Keep accepting and serving (with `Connection: close`, `ready$` false) this long before the drain (default 0). */
  drainDelay?: number;
  /** Let the drain wait for hijacked (upgraded) sockets, and destroy and count them at the deadline (default false). */
  waitForHijacked?: boolean;
  /**
   * During a drain, an idle keep-alive connection (or one that has sent nothing yet) stays open
   * this long, counted from the start of the drain (or from when it became idle, if later), so
   * that a request its client sends on it meanwhile is served with `Connection: close` rather
   * than cut; then it is closed, once the process has read everything the kernel holds for it.
   * Pooled clients (Node's `fetch`, load balancers) keep writing onto idle connections for
   * hundreds of ms after a shutdown starts. At most 1000; 0 closes idle connections as soon as
   * their bytes say idle; never longer than the deadline (default 1000).
   */
  idleLinger?: number;
}

/** Default of `GracefulOptions.idleLinger`, in ms. */
export const DEFAULT_IDLE_LINGER = 1000;
const MAX_IDLE_LINGER = 1000;
/** Node's timers overflow past 2^31 - 1 ms (about 24.8 days) and would fire at once. */
const MAX_TIMER = 2 ** 31 - 1;

/**
 * A Node HTTP server that shuts down gracefully, with its connections and states as Observables.
 * After Go's `graceful.Server`: wrap the server, `serve()`, then `shutdown()` and `wait()`.
 *
 * Throws a `TypeError` for a first argument that is not a Node server, or a bad option.
 *
 * @example
 * const server = new GracefulServer(http.createServer(handler), { timeout: 10_000 });
 * fromSignals('SIGTERM').pipe(take(1)).subscribe(server.shutdown$);
 * await server.serve(3000);       // settles when the server stops accepting
 * const { killed } = await server.wait();
 */
export class GracefulServer<S extends WrappableServer = WrappableServer> {
  /** The wrapped server, usable as before. */
  readonly server: S;
  /** Every state change of every connection; hot (no replay). */
  readonly connections$: Observable<ConnectionEvent>;
  /** Replays the current state, then each change. */
  readonly state$: Observable<ServerState>;
  /**
   * `next(anything)` starts a shutdown, like `shutdown()`. A piped source that completes or errors
   * does not close it, so `signal$.pipe(take(1)).subscribe(server.shutdown$)` works every cycle.
   */
  // eslint-disable-next-line rxjs-x/no-exposed-subjects -- the contract makes shutdown$ a public Subject; ShutdownSubject ignores complete() and error()
  readonly shutdown$: Subject<unknown>;
  /** One value per finished shutdown; hot. */
  readonly done$: Observable<ShutdownResult>;
  /** `false` before the first listen, `true` while serving, `false` from the start of a shutdown; replays. */
  readonly ready$: Observable<boolean>;

  /**
   * A readiness endpoint for load balancers and Kubernetes: answers `200` while `ready$` is true,
   * and `503` from the first instant of a shutdown (with `Connection: close` on HTTP/1, so the
   * prober's connection does not hold the drain; HTTP/2 relies on GOAWAY). A bound function: use it
   * detached, as a plain handler or a route.
   *
   * @example
   * app.get('/ready', graceful.readinessProbe);                         // Express
   * http.createServer((req, res) => req.url === '/ready' ? graceful.readinessProbe(req, res) : app(req, res));
   */
  readonly readinessProbe: (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => void;

  private readonly lifecycle: Lifecycle;
  private readonly syncShutdown: boolean;
  private listening = false;

  constructor(server: S, options: GracefulOptions = {}) {
    if (!isHttpServer(server)) {
      throw new TypeError(
        `rx-graceful: new GracefulServer(server) expects a Node HTTP server (http, https or http2), got ${describeValue(server)}`,
      );
    }
    if (!isObject(options)) {
      throw new TypeError(`rx-graceful: options must be an object, got ${describeValue(options)}`);
    }
    const timeout = duration(options.timeout, 'timeout', 0, MAX_TIMER);
    const drainDelay = duration(options.drainDelay, 'drainDelay', 0, MAX_TIMER);
    const idleLinger = duration(options.idleLinger, 'idleLinger', DEFAULT_IDLE_LINGER, MAX_IDLE_LINGER);
    const scheduler = options.scheduler === undefined ? unrefScheduler : options.scheduler;
    if (!isScheduler(scheduler)) {
      throw new TypeError(`rx-graceful: options.scheduler must be an RxJS SchedulerLike, got ${describeValue(scheduler)}`);
    }
    if (options.onConnState !== undefined && typeof options.onConnState !== 'function') {
      throw new TypeError(`rx-graceful: options.onConnState must be a function, got ${describeValue(options.onConnState)}`);
    }
    this.syncShutdown = flag(options.syncShutdown, 'syncShutdown');
    const waitForHijacked = flag(options.waitForHijacked, 'waitForHijacked');

    this.server = server;
    // A listen this instance did not start (Express's `app.listen()` returns before it listens):
    // the cycle begins when the server listens. Its own listen() starts the cycle itself.
    const adapter = new HttpAdapter(server, scheduler, options.onConnState, () => {
      if (!this.listening && this.lifecycle.phase === 'stopped') this.lifecycle.serving(server.address() ?? undefined);
    });
    this.lifecycle = new Lifecycle(adapter, { timeout, drainDelay, idleLinger, waitForHijacked, scheduler });
    this.connections$ = adapter.changes$;
    this.state$ = this.lifecycle.state$;
    this.done$ = this.lifecycle.done$;
    this.ready$ = this.lifecycle.ready$;
    this.shutdown$ = new ShutdownSubject(() => this.lifecycle.shutdown());
    if (server.listening) this.lifecycle.serving(server.address() ?? undefined);
    interceptClose(server, (notify) => this.takeOverClose(notify));
    this.readinessProbe = (req, res) => {
      const ready = this.lifecycle.ready;
      res.statusCode = ready ? 200 : 503;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.setHeader('cache-control', 'no-store');
      if (!ready && req.httpVersionMajor < 2) res.setHeader('connection', 'close');
      res.end(ready ? 'ready\n' : 'shutting down\n');
    };
    warmUpShutdownPath();
  }

  /**
   * `server.close()`, called by anyone (NestJS's `app.close()`, Fastify, user code), starts the same
   * graceful shutdown as `shutdown()`, and its callback runs once the drain has finished; a
   * `close()` during a shutdown joins it. A server that is not serving gets Node's own `close()`
   * (its callback receives `ERR_SERVER_NOT_RUNNING`). See `interceptClose`.
   */
  private takeOverClose(notify: boolean): Promise<unknown> | undefined {
    if (this.lifecycle.phase === 'stopped') return undefined;
    // Asked before the shutdown starts, which may finish within the call.
    const finished = notify ? this.wait() : Promise.resolve();
    this.lifecycle.shutdown();
    return finished;
  }

  /**
   * Connections destroyed with work in progress by the last finished shutdown (Go's
   * `ConnectionsKilled`): it keeps that value until the next shutdown has finished. (`state$`'s
   * `killed` starts each new serving cycle from 0.)
   */
  get connectionsKilled(): number {
    return this.lifecycle.lastResult?.killed ?? 0;
  }

  /**
   * Starts listening (`server.listen(options)`) and resolves with the address once it listens.
   * Rejects with `NotReadyError` while serving or shutting down, or with the listen error itself
   * (`EADDRINUSE`), which leaves the instance stopped and usable.
   */
  listen(options?: number | ListenOptions): Promise<AddressInfo | string> {
    const phase = this.lifecycle.phase;
    if (phase === 'draining') return Promise.reject(new NotReadyError(true));
    if (phase === 'serving' || this.listening) return Promise.reject(new NotReadyError(false));
    this.listening = true;
    return new Promise<AddressInfo | string>((resolve, reject) => {
      const server = this.server as NetServer;
      const onError = (error: Error): void => {
        server.off('listening', onListening);
        this.listening = false;
        reject(error);
      };
      const onListening = (): void => {
        server.off('error', onError);
        this.listening = false;
        const address = server.address() ?? '';
        this.lifecycle.serving(address);
        resolve(address);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      try {
        server.listen(options);
      } catch (error) {
        server.off('error', onError);
        server.off('listening', onListening);
        this.listening = false;
        throw error; // the executor's throw rejects the promise with it
      }
    });
  }

  /**
   * Go's `Serve`: listens, then resolves when the server stops accepting (with `syncShutdown`,
   * when the drain has finished). Rejects only with `NotReadyError` or a listen error.
   */
  async serve(options?: number | ListenOptions): Promise<void> {
    await this.listen(options);
    const servingEnds$: Observable<unknown> = this.syncShutdown
      ? this.done$
      : this.lifecycle.lifecycle$.pipe(filter((s) => !s.accepting && s.phase !== 'serving'));
    // Neither stream completes; if one ever did, serving would be over all the same.
    await firstValueFrom(servingEnds$, { defaultValue: undefined });
  }

  /** Starts a graceful shutdown and returns at once; only the first call of a cycle has an effect. */
  shutdown(): void {
    this.lifecycle.shutdown();
  }

  /** Like `shutdown()`, and true only for the call that started the shutdown. */
  shutdownOK(): boolean {
    return this.lifecycle.shutdown();
  }

  /** Ends the current shutdown now: destroys and counts the survivors. Outside a shutdown, nothing. */
  force(): void {
    this.lifecycle.force();
  }

  /**
   * Settles with the result of the current shutdown once it has finished; while stopped, with the
   * last one's; while serving (or before any shutdown), with the next one's.
   */
  wait(): Promise<ShutdownResult> {
    const last = this.lifecycle.lastResult;
    if (this.lifecycle.phase === 'stopped' && last !== undefined) return Promise.resolve(last);
    // eslint-disable-next-line rxjs-x/no-ignored-default-value -- done$ never completes (the lifecycle never completes its Subject): there is no empty case to default
    return firstValueFrom(this.done$);
  }
}

/** `shutdown$`: every `next` asks for a shutdown; `complete` and `error` leave it open. */
// eslint-disable-next-line rxjs-x/no-subclass -- the contract's shutdown$ is a Subject that complete() and error() must not close: only a subclass is both
class ShutdownSubject extends Subject<unknown> {
  constructor(private readonly trigger: () => void) {
    super();
  }

  override next(value: unknown): void {
    this.trigger();
    super.next(value);
  }

  override error(): void {
    // A failing source (a signal stream that errors) must not disable shutdowns for good.
  }

  override complete(): void {
    // `take(1)` completes its subscriber: the next serve cycle must still be able to shut down.
  }
}

function isObject(value: unknown): value is object {
  return value !== null && typeof value === 'object';
}

function isScheduler(value: unknown): value is SchedulerLike {
  return (
    isObject(value) && typeof Reflect.get(value, 'now') === 'function' && typeof Reflect.get(value, 'schedule') === 'function'
  );
}

function duration(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
    throw new TypeError(
      `rx-graceful: options.${name} must be a finite number of milliseconds from 0 to ${max}, got ${describeValue(value)}`,
    );
  }
  return value;
}

function flag(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') {
    throw new TypeError(`rx-graceful: options.${name} must be a boolean, got ${describeValue(value)}`);
  }
  return value;
}
