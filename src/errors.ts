/**
 * Thrown (as a rejection) by `listen()` and `serve()` when the server is not ready for them: it is
 * already serving (`quitting === false`), or it is shutting down (`quitting === true`). After Go's
 * `graceful.NotReadyError{Quitting}`.
 *
 * @example
 * try { await server.listen(3000); }
 * catch (error) { if (error instanceof NotReadyError && error.quitting) await server.wait(); }
 */
export class NotReadyError extends Error {
  /** Always `'NotReadyError'`. */
  override readonly name = 'NotReadyError';

  /** @param quitting `true` when the server is shutting down, `false` when it is already serving. */
  constructor(
    /** `true`: the server is shutting down (await `wait()`, then listen again); `false`: it is already serving. */
    readonly quitting: boolean,
  ) {
    super(
      quitting
        ? 'rx-graceful: cannot listen while the server is shutting down; await wait() first, then listen again'
        : 'rx-graceful: cannot listen while the server is already serving; shut it down first',
    );
  }
}

/**
 * Why a request's `AbortSignal` (from `GracefulServer#abortSignal`) aborted:
 * - `client-gone`: the client went away before the response had finished;
 * - `deadline`: the shutdown's deadline is `cancelAhead` ms away (or has come): answer now, before
 *   the connection is destroyed;
 * - `forced`: `force()` ended the shutdown; the connection is destroyed right after.
 */
export type RequestAbortKind = 'client-gone' | 'deadline' | 'forced';

const abortMessages: Record<RequestAbortKind, string> = {
  'client-gone': 'rx-graceful: the client went away before the response had finished',
  deadline: "rx-graceful: the shutdown's deadline is near; answer now, before the connection is destroyed",
  forced: 'rx-graceful: force() ended the shutdown; the connection is destroyed next',
};

/**
 * The `reason` of a request's `AbortSignal` from `GracefulServer#abortSignal`; `kind` tells the
 * causes apart. Work given the signal (`fetch`, a database query) rejects with it.
 *
 * @example
 * try { rows = await db.query(sql, { signal: graceful.abortSignal(req) }); }
 * catch (error) {
 *   if (error instanceof RequestAbortedError && error.kind === 'deadline') return void res.writeHead(503).end();
 *   throw error;
 * }
 */
export class RequestAbortedError extends Error {
  /** Always `'RequestAbortedError'`. */
  override readonly name = 'RequestAbortedError';

  /** @param kind Why the signal aborted. */
  constructor(
    /** Why the signal aborted: `'client-gone'`, `'deadline'` or `'forced'`. */
    readonly kind: RequestAbortKind,
  ) {
    super(abortMessages[kind]);
  }
}

/** How a bad argument is shown in a `TypeError` message. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  // An object made with `Object.create(null)` has no constructor.
  const constructor: unknown = Reflect.get(value, 'constructor');
  return typeof constructor === 'function' && constructor.name !== '' ? `a ${constructor.name}` : 'an object';
}
