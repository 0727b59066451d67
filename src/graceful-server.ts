import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type * as https from 'node:https';
import { AddressInfo, ListenOptions, Server as NetServer, Socket } from 'node:net';
import { EMPTY, filter, firstValueFrom, Observable, SchedulerLike, Subject, Subscription, switchMap } from 'rxjs';
import { Lifecycle, ShutdownResult } from './core/lifecycle';
import type { ConnState, Phase, ServerState } from './core/state';
import { describeValue, NotReadyError } from './errors';
import { ConnectionEvent, HttpAdapter, isHttpServer } from './node/http-adapter';
import { interceptClose } from './node/intercept';
import { shutdownPathKeptWarm$ } from './node/keep-warm';
import { unrefScheduler } from './node/unref-scheduler';
import { warmUpAdapterShutdown } from './node/warm-up';
import { OptionReader } from './options';
import { readShutdownOptions, waitForShutdown, watchTrigger } from './server-cycle';
import { ShutdownSubject, ShutdownTarget } from './shutdown-on';
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
   * their bytes say idle; never longer than the deadline (default 1000). An HTTP/2 session does not
   * linger: it has been told GOAWAY, and with no stream open Node reads nothing more from it, so it
   * is closed once the drain has begun and the loop has read what it had sent.
   */
  idleLinger?: number;
  /**
   * The signals of `abortSignal(req)` abort this long before the shutdown's deadline (which falls
   * `drainDelay + timeout` after the shutdown starts), so that handlers can still answer; at least
   * `timeout`: they abort as the drain begins. 0 aborts them at the deadline itself, just before
   * the survivors are destroyed (default 0). With `timeout` 0 there is no deadline to be ahead of.
   */
  cancelAhead?: number;
}

/** Every option name, for the `TypeError` that names an unknown one (the compiler checks the list is whole). */
const optionNames: Readonly<Record<keyof GracefulOptions, true>> = {
  timeout: true,
  syncShutdown: true,
  scheduler: true,
  onConnState: true,
  drainDelay: true,
  waitForHijacked: true,
  idleLinger: true,
  cancelAhead: true,
};

/** The servers wrapped so far: a server has one wrapper for its life. */
const wrappedServers = new WeakSet<WrappableServer>();

/** Each instance's lifecycle, for the functions of this module that are not its methods (`expireShutdown`). */
const lifecycles = new WeakMap<GracefulServer, Lifecycle>();

// The default of `GracefulOptions.idleLinger` (ms), shared with rx-graceful/testing's VirtualServer.
export { DEFAULT_IDLE_LINGER } from './server-cycle';

/**
 * A Node HTTP server that shuts down gracefully, with its connections and states as Observables.
 * After Go's `graceful.Server`: wrap the server, `serve()`, then `shutdown()` and `wait()`.
 *
 * Throws a `TypeError` for a first argument that is not a Node server, a server another
 * `GracefulServer` already wraps, an unknown option name, or a bad option value.
 *
 * @example
 * const server = new GracefulServer(http.createServer(handler), { timeout: 10_000 });
 * fromSignals('SIGTERM').pipe(take(1)).subscribe(server.shutdown$);
 * await server.serve(3000);       // settles when the server stops accepting
 * const { killed } = await server.wait();
 */
export class GracefulServer<S extends WrappableServer = WrappableServer> implements ShutdownTarget {
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
  /** Emits each time the server starts serving (a new cycle), once `phase` is `serving` and `ready$` true; hot. */
  readonly serving$: Observable<void>;

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
  private readonly adapter: HttpAdapter;
  private readonly syncShutdown: boolean;
  private listening = false;
  /** Runs the warm-ups again while the server serves (node/keep-warm.ts); for the instance's life. */
  private readonly keptWarm: Subscription;

  constructor(server: S, options: GracefulOptions = {}) {
    if (!isHttpServer(server)) {
      throw new TypeError(
        `rx-graceful: new GracefulServer(server) expects a Node HTTP server (http, https or http2), got ${describeValue(server)}`,
      );
    }
    if (wrappedServers.has(server)) {
      throw new TypeError(
        'rx-graceful: new GracefulServer(server) got a server that another GracefulServer already wraps; a server has one wrapper for its life: use that one',
      );
    }
    const read = new OptionReader('new GracefulServer(server, options)', options, Object.keys(optionNames));
    const shutdownOptions = readShutdownOptions(read, unrefScheduler);
    const { scheduler } = shutdownOptions;
    const onConnState = read.callback('onConnState') as GracefulOptions['onConnState'];
    this.syncShutdown = read.flag('syncShutdown');

    wrappedServers.add(server);
    this.server = server;
    // A listen this instance did not start (Express's `app.listen()` returns before it listens):
    // the cycle begins when the server listens. Its own listen() starts the cycle itself.
    const adapter = new HttpAdapter(server, scheduler, onConnState, () => {
      if (!this.listening && this.lifecycle.phase === 'stopped') this.lifecycle.serving(server.address() ?? undefined);
    });
    this.adapter = adapter;
    this.lifecycle = new Lifecycle(adapter, shutdownOptions);
    lifecycles.set(this, this.lifecycle);
    this.connections$ = adapter.changes$;
    this.state$ = this.lifecycle.state$;
    this.done$ = this.lifecycle.done$;
    this.ready$ = this.lifecycle.ready$;
    this.serving$ = this.lifecycle.serving$;
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
    warmUpAdapterShutdown();
    // While it serves, the warm-ups run again now and then: V8 drops code that has not run for a few
    // major collections, and a process that had served for a while compiled its drain again in its
    // shutdown (node/keep-warm.ts). Ends with the instance: ready$ is its own.
    this.keptWarm = this.ready$.pipe(switchMap((ready) => (ready ? shutdownPathKeptWarm$ : EMPTY))).subscribe();
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
   * Where the serve/shutdown cycle is now: `draining` from the very call that starts a shutdown
   * (`state$` shows it once the listener has closed, or at once with a `drainDelay`).
   */
  get phase(): Phase {
    return this.lifecycle.phase;
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
    return waitForShutdown(this.lifecycle);
  }

  /**
   * Shuts down on each value of `trigger$`: the first while serving starts the shutdown, one during
   * the shutdown (its `drainDelay` included) calls `force()`. A value that comes while not serving
   * (before the first listen, or between cycles) is kept, and the shutdown starts as soon as the
   * server serves (`listen()` still resolves); with two kept values `force()` follows at once.
   * `trigger$` is subscribed from this call until the shutdown has finished, and again each time
   * the server serves again: with `fromSignals`, no process listener is left once the drain is over,
   * and Node's default action for a later signal is back. `trigger$` completing or erroring changes
   * nothing; unsubscribing the returned `Subscription` ends it all. Throws a `TypeError` if
   * `trigger$` is not an Observable.
   *
   * @example
   * graceful.shutdownOn(fromSignals('SIGTERM', 'SIGINT')); // the one line a main needs
   * await graceful.serve(3000);
   */
  shutdownOn(trigger$: Observable<unknown>): Subscription {
    return watchTrigger(this, trigger$);
  }

  /**
   * An `AbortSignal` for the work a handler does for `req` (an outgoing `fetch`, a database query).
   * It aborts when the client goes away before the response has finished, when `force()` is called,
   * and `cancelAhead` ms before the shutdown's deadline (with `timeout` 0, never for the shutdown),
   * always before anything is destroyed; its `reason` is a `RequestAbortedError` whose `kind` tells
   * the three apart. The same request always gets the same signal; a request whose handler never
   * asks costs nothing. Ask while the request is in flight: asked once its response has finished, it
   * never aborts (on a connection busy with later requests, it may abort when that connection
   * closes). Throws a `TypeError` for anything but a request this server received.
   *
   * @example
   * const graceful = new GracefulServer(server, { timeout: 10_000, cancelAhead: 2000 });
   * // in a handler:
   * try { res.end(await fetch(upstream, { signal: graceful.abortSignal(req) }).then((r) => r.text())); }
   * catch (error) { res.statusCode = 503; res.end(); } // aborted 2 s before the deadline: still answered
   */
  abortSignal(req: http.IncomingMessage | http2.Http2ServerRequest): AbortSignal {
    return this.adapter.abortSignal(req);
  }

  /**
   * Shuts down and waits for the shutdown to finish: `await using graceful = new GracefulServer(...)`.
   * On an instance that is not serving it settles at once; during a shutdown it waits for that one.
   *
   * @example
   * {
   *   await using graceful = new GracefulServer(http.createServer(handler));
   *   await graceful.listen(0);
   * } // shut down and drained here
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.lifecycle.phase === 'stopped') return;
    const finished = this.wait(); // asked before the shutdown starts, which may finish within the call
    this.lifecycle.shutdown();
    await finished;
  }
}

/**
 * Ends `server`'s shutdown in progress now, as its deadline would: request signals abort, the
 * survivors are destroyed and counted, and the result says `timedOut: true`. Outside a shutdown it
 * does nothing. For a group's one deadline; not exported from the package root.
 *
 * @example
 * timer(groupTimeout).subscribe(() => members.forEach(expireShutdown));
 */
export function expireShutdown(server: GracefulServer): void {
  lifecycles.get(server)?.expire();
}
