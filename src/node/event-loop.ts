/**
 * Runs `work` once the event loop has been through a poll phase that began after this call (two
 * check phases: the first may come right after a poll phase that was already under way). By
 * then libuv has read every socket that was readable at the call and accepted every connection
 * the kernel had queued. Returns a function that cancels it.
 *
 * @example
 * const cancel = afterPoll(() => closeWhatIsStillIdle());
 */
export function afterPoll(work: () => void): () => void {
  let second: NodeJS.Immediate | undefined;
  const first = setImmediate(() => {
    second = setImmediate(work);
  });
  return () => {
    clearImmediate(first);
    if (second !== undefined) clearImmediate(second);
  };
}

/**
 * Runs `work` once the loop has accepted every connection the kernel had completed before this
 * call: after a poll phase that began after the call, then after each further poll phase for as
 * long as the previous one accepted a connection (`accepted()` counts them). libuv accepts one
 * connection per poll phase since 1.45 (libuv/libuv#3696), so three queued connections take three
 * turns. A stream of newcomers could keep every turn busy: after `maxTurns` turns `work` runs
 * anyway. Returns a function that cancels it.
 *
 * @example
 * const cancel = afterAcceptQueue(() => accepts, () => server.close());
 */
export function afterAcceptQueue(accepted: () => number, work: () => void, maxTurns = 1024): () => void {
  let seen = accepted();
  let turns = 0;
  let next: NodeJS.Immediate | undefined;
  const check = (): void => {
    const now = accepted();
    if (now === seen || ++turns > maxTurns) {
      work();
      return;
    }
    seen = now;
    next = setImmediate(check);
  };
  const cancelFirst = afterPoll(check);
  return () => {
    cancelFirst();
    if (next !== undefined) clearImmediate(next);
  };
}

/**
 * Keeps the process alive until the returned function is called. A shutdown holds it while the
 * drain still has a connection to wait for: Node lets a process exit with an HTTP/2 session open
 * once GOAWAY is sent and no stream is open (spec/node/node-internals.spec.ts).
 *
 * @example
 * const release = holdEventLoop();
 * done$.subscribe(release);
 */
export function holdEventLoop(): () => void {
  const hold = setInterval(() => undefined, 1000); // any ref'd handle would do; this one costs a wake-up a second
  return () => {
    clearInterval(hold);
  };
}
