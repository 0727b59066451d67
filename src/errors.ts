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

/** How a bad argument is shown in a `TypeError` message. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  // An object made with `Object.create(null)` has no constructor.
  const constructor: unknown = Reflect.get(value, 'constructor');
  return typeof constructor === 'function' && constructor.name !== '' ? `a ${constructor.name}` : 'an object';
}
