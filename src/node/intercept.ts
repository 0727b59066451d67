import { EventEmitter } from 'node:events';
import type { Server as NetServer } from 'node:net';

/**
 * The one place where rx-graceful replaces a method of a Node object (the wrapped server's `emit`
 * and `close`), and can put it back. Beside the `emit` it puts on a server, it keeps one
 * symbol-keyed record there: which interceptor that server's events go to (see `interceptEmit`).
 *
 * Why replace rather than listen: an `upgrade` listener changes Node's behaviour (upgrade requests
 * stop reaching the request handler), a `request` listener cannot keep a request from the
 * application (RFC 9112 §9.6), a listener runs after the ones Node added itself (an HTTP/2 server
 * makes its session in its own `connection` listener), and nothing tells a listener that someone
 * called `close()`. Node emits every server event through the server's `emit` property, so an own
 * property sees them all (spec/node/node-internals.spec.ts fails if that changes).
 *
 * Why `close` too: frameworks end a server with its own `close()` (NestJS's `app.close()`,
 * Fastify's), and Node's `close()` is not graceful. On Node 20 it destroys every idle keep-alive
 * socket at once (`httpServerPreClose`), with no linger for a request already on its way, keeps
 * serving a connection that sends a request meanwhile with `keep-alive`, and calls back only once
 * every connection is gone, hijacked ones included (never, with an open WebSocket).
 */

/**
 * Replaces `target[method]` with `make(original)` as an own property; returns a function that
 * restores what was there before, unless something else has replaced the method since.
 *
 * @example
 * const restore = replaceMethod(server, 'close', (close) => function (cb) { ...; return close.call(this, cb); });
 */
export function replaceMethod<T extends object, K extends keyof T>(
  target: T,
  method: K,
  make: (original: T[K]) => T[K],
): () => void {
  const own = Object.prototype.hasOwnProperty.call(target, method);
  const original = target[method];
  const replacement = make(original);
  target[method] = replacement;
  return () => {
    if (target[method] !== replacement) return;
    if (own) target[method] = original;
    else Reflect.deleteProperty(target, method);
  };
}

/**
 * What happens to an intercepted event: `deliver` hands it to the listeners; `withhold` keeps it
 * from them (the emit returns `true`, as if a listener had taken it); `deliver-and-notify` hands it
 * to them and then calls `delivered()`, once they have returned or thrown.
 */
export type Delivery = 'deliver' | 'withhold' | 'deliver-and-notify';

/** Sees a server's events before any listener does. */
export interface EmitInterceptor {
  intercept(event: string | symbol, first: unknown, second: unknown): Delivery;
  delivered(): void;
}

/** Node's own `emit`, which nearly every server has; called through this constant, V8 inlines it. */
// eslint-disable-next-line @typescript-eslint/unbound-method -- always called with the server as `this`
const nodeEmit = EventEmitter.prototype.emit;

/** Where a server whose `emit` is `interceptedEmit` keeps its interceptor and the `emit` it had. */
const interception = Symbol('rx-graceful interception');

interface Interception {
  readonly interceptor: EmitInterceptor;
  readonly emit: EventEmitter['emit'];
}

type InterceptedServer = EventEmitter & { [interception]?: Interception };

/**
 * Replaces `server.emit` so that `interceptor` sees every event first and decides its delivery;
 * returns a function that puts the server's own `emit` back.
 *
 * Every server gets the same function, `interceptedEmit`, which finds its interceptor on the
 * server (a symbol-keyed property, next to the `emit` this module puts there), not a closure per
 * server. V8's optimizing compiler specializes a function to its closure's variables only while
 * the function has made a single closure: with a closure per server, a second wrapped server in
 * the process made every request of the first cost about 650 more instructions (bench A, one
 * server plus one that never listens: 59,771 instructions against 59,140-59,182 for one alone,
 * 2026-12-03). With one shared function that calls Node's `emit` through a constant: 59,058 alone
 * and 59,171 beside a second (1.017 and 1.020 × bare).
 * A second interception of the same server (only tests do it) gets a closure of its own.
 *
 * @example
 * const restore = interceptEmit(server, { intercept: (event) => (event === 'request' ? 'withhold' : 'deliver'), delivered: () => undefined });
 */
export function interceptEmit(server: EventEmitter, interceptor: EmitInterceptor): () => void {
  const target = server as InterceptedServer;
  if (target[interception] !== undefined) {
    return replaceMethod(
      server,
      'emit',
      (emit) =>
        function nestedEmit(this: EventEmitter, event: string | symbol, first?: unknown, second?: unknown): boolean {
          const delivery = interceptor.intercept(event, first, second);
          // eslint-disable-next-line prefer-rest-params
          return delivery === 'withhold' ? true : deliverThrough(interceptor, emit, this, arguments, delivery);
        } as EventEmitter['emit'],
    );
  }
  const restoreEmit = replaceMethod(server, 'emit', (emit) => {
    target[interception] = { interceptor, emit };
    return interceptedEmit as EventEmitter['emit'];
  });
  return () => {
    if (server.emit !== interceptedEmit) return; // replaced since: whoever did may still call it
    restoreEmit();
    Reflect.deleteProperty(target, interception);
  };
}

function interceptedEmit(this: InterceptedServer, event: string | symbol, first?: unknown, second?: unknown): boolean {
  /* eslint-disable prefer-rest-params */
  const own = this[interception];
  if (own === undefined) return Reflect.apply(nodeEmit, this, arguments) as boolean; // called on another emitter
  const delivery = own.interceptor.intercept(event, first, second);
  if (delivery === 'withhold') return true;
  if (delivery === 'deliver' && own.emit === nodeEmit) {
    // The listeners get the arguments as they came, passed one by one for the counts Node's
    // events have: V8 then inlines `emit` into Node's caller (`request` on every request);
    // through `Reflect.apply` with `arguments` it called a baseline `emit` that made its rest
    // array again. No array is made per event (STYLE.md, point 6).
    switch (arguments.length) {
      case 1:
        return nodeEmit.call(this, event);
      case 2:
        return nodeEmit.call(this, event, first);
      case 3:
        return nodeEmit.call(this, event, first, second);
    }
  }
  return deliverThrough(own.interceptor, own.emit, this, arguments, delivery);
  /* eslint-enable prefer-rest-params */
}

/** Hands an event to `emit` as it came; after a `deliver-and-notify` one's listeners, tells `interceptor`. */
function deliverThrough(
  interceptor: EmitInterceptor,
  emit: EventEmitter['emit'],
  self: EventEmitter,
  args: IArguments,
  delivery: Delivery,
): boolean {
  if (delivery === 'deliver') return Reflect.apply(emit, self, args) as boolean;
  try {
    return Reflect.apply(emit, self, args) as boolean;
  } finally {
    interceptor.delivered();
  }
}

/**
 * Replaces `server.close` so that a `close(callback)` called by anyone (NestJS's `app.close()`,
 * Fastify, user code) is offered to `takeOver` first; returns a function that puts the server's own
 * `close` back.
 *
 * `takeOver(notify)` either starts (or joins) a graceful shutdown and returns a promise that resolves when
 * it has finished (`notify` says whether a callback waits for it) (then `close` returns the server, and calls `callback` with no argument once
 * that promise has resolved, as Node calls it once every connection is gone) or returns `undefined`
 * to decline (then Node's own `close` runs: its callback gets `ERR_SERVER_NOT_RUNNING` if the server
 * is not listening).
 *
 * @example
 * const restore = interceptClose(server, () => (serving ? startShutdownAndWait() : undefined));
 */
export function interceptClose(server: NetServer, takeOver: (notify: boolean) => Promise<unknown> | undefined): () => void {
  return replaceMethod(
    server,
    'close',
    (close) =>
      function gracefulClose(this: NetServer, callback?: (error?: Error) => void): NetServer {
        const notify = typeof callback === 'function';
        const finished = takeOver(notify);
        if (finished === undefined) return close.call(this, callback);
        if (notify) void finished.then(() => callback());
        return this;
      },
  );
}
