/**
 * The one place where rx-graceful replaces a method of a Node object (the wrapped server's `emit`
 * and `close`), and can put it back.
 *
 * Why replace rather than listen: an `upgrade` listener changes Node's behaviour (upgrade requests
 * stop reaching the request handler), a `request` listener cannot keep a request from the
 * application (RFC 9112 §9.6), and nothing tells a listener that someone called `close()`.
 */

/**
 * Replaces `target[method]` with `make(original)` as an own property; returns a function that
 * restores what was there before, unless something else has replaced the method since.
 *
 * @example
 * const restore = replaceMethod(server, 'close', (close) => function (cb) { ...; return close.call(this, cb); });
 */
export function replaceMethod<T extends object, K extends keyof T>(target: T, method: K, make: (original: T[K]) => T[K]): () => void {
  const own = Object.prototype.hasOwnProperty.call(target, method);
  const original = target[method];
  const replacement = make(original);
  target[method] = replacement;
  return () => {
    if (target[method] !== replacement) return;
    if (own) target[method] = original;
    else delete target[method];
  };
}
