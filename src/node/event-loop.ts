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
 * Runs `work(from, to)` over `0 … count-1` in slices of at most `perTurn`, one slice per turn of
 * the event loop: the first once the loop has been through a poll phase that began after this
 * call (as `afterPoll`), each next one in the check phase of the turn after. Between two slices
 * the loop runs its timers and reads its sockets, so that closing thousands of connections never
 * holds a response in flight for longer than one slice takes. Returns a function that cancels the
 * slices not run yet.
 *
 * @example
 * const cancel = inSlices(ids.length, 128, (from, to) => closeEach(ids.slice(from, to)));
 */
export function inSlices(count: number, perTurn: number, work: (from: number, to: number) => void): () => void {
  let from = 0;
  let next: NodeJS.Immediate | undefined;
  const slice = (): void => {
    const to = Math.min(count, from + perTurn);
    const start = from;
    from = to;
    // The next slice is queued before this one runs: its work may cancel what is left.
    next = to < count ? setImmediate(slice) : undefined;
    work(start, to);
  };
  const cancelFirst = count > 0 ? afterPoll(slice) : () => undefined;
  return () => {
    cancelFirst();
    if (next !== undefined) clearImmediate(next);
  };
}

/**
 * Runs `work` once the loop has accepted every connection the kernel had completed before this
 * call, and the newcomers that follow them while they keep coming, within a bound. libuv accepts
 * one connection per poll phase since 1.45 (libuv/libuv#3696), so three queued connections take
 * three turns; `accepted()` counts the accepts.
 *
 * With `queueLength`, which reads the kernel's accept queue now (listener.ts), `work` runs at the
 * first check that reads it empty. Without it, `work` runs after the first poll phase that accepted
 * none, or after `maxTurns` turns that each accepted one; with `queued`, the length of the accept
 * queue at the call, not before that many have been accepted. Either way it gives up after
 * `maxTurns` plus two turns per queued connection (`queued`, or what the first check's
 * `queueLength()` reads, if more): an accept libuv never reports (EMFILE) must not keep the
 * listener open for ever. Returns a function that cancels it.
 *
 * @example
 * const cancel = afterAcceptQueue(() => accepts, () => server.close(), { queued: acceptQueueLength(fd) });
 */
export function afterAcceptQueue(
  accepted: () => number,
  work: () => void,
  {
    queued = 0,
    maxTurns = 1024,
    queueLength,
  }: {
    readonly queued?: number | undefined;
    readonly maxTurns?: number;
    readonly queueLength?: (() => number | undefined) | undefined;
  } = {},
): () => void {
  const start = accepted();
  let seen = start;
  let turns = 0;
  let bound = maxTurns + 2 * queued;
  let next: NodeJS.Immediate | undefined;
  const check = (): void => {
    const now = accepted();
    turns++;
    const length = queueLength?.();
    if (turns === 1 && length !== undefined) bound = Math.max(bound, maxTurns + 2 * length);
    const gaveUp = turns > bound;
    const served =
      length === undefined ? (now - start >= queued || gaveUp) && (now === seen || turns > maxTurns) : length === 0 || gaveUp;
    if (served) {
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
