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
