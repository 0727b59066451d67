import type { BenchContext } from '../context';
import type { DoneEvent, MemoryMark } from '../protocol';

const timeoutMs = 10_000;
/** Long enough that no idle connection times out while the others are being opened. */
export const idleKeepAliveTimeoutMs = 60_000;
export const idleTimeoutMs = timeoutMs;
export const openConcurrency = 100;

export interface IdleTrial {
  system: string;
  round: number;
  open: number;
  /** Server memory after gc(), before and after the connections were opened. */
  before: MemoryMark;
  after: MemoryMark;
  done: DoneEvent;
}

const cache = new WeakMap<BenchContext, Map<number, Promise<IdleTrial[]>>>();

/**
 * The trials B and F share, once per size and run: open `size` idle keep-alive connections
 * (one request each), measure the server's memory around that, then shut down with a 10 s
 * timeout and time it. F reads the memory of the 10,000 trials, B the shutdown of every size.
 */
export function idleTrials(context: BenchContext, size: number): Promise<IdleTrial[]> {
  let bySize = cache.get(context);
  if (!bySize) {
    bySize = new Map();
    cache.set(context, bySize);
  }
  let trials = bySize.get(size);
  if (!trials) {
    trials = runIdleTrials(context, size);
    bySize.set(size, trials);
  }
  return trials;
}

async function runIdleTrials(context: BenchContext, size: number): Promise<IdleTrial[]> {
  const trials: IdleTrial[] = [];
  await context.eachTrial(`B/F ${size.toLocaleString('en-US')} idle`, async (system, round) => {
    await context.withServer(
      system,
      {
        handler: { kind: 'trivial' },
        trigger: { kind: 'command' },
        timeoutMs,
        keepAliveTimeoutMs: idleKeepAliveTimeoutMs,
        exitBySelf: false,
      },
      async ({ peer, port }) => {
        const before = await peer.call('memory', {}, 10_000);
        const parts = context.spread(size);
        try {
          const opened = await Promise.all(
            parts.map(({ load, count }) => load.call('idle', { port, count, concurrency: openConcurrency }, 60_000)),
          );
          const open = opened.reduce((sum, part) => sum + part.opened, 0);
          if (open !== size) throw new Error(`opened ${open} of ${size} connections`);
          const after = await peer.call('memory', {}, 10_000);
          const { accepted } = await peer.call('shutdown', {}, 5_000);
          if (!accepted) throw new Error('the server did not start a shutdown');
          const done = await peer.next('done', timeoutMs + 5_000);
          const trial: IdleTrial = { system, round, open, before, after, done };
          trials.push(trial);
          context.record({ scenario: 'B/F', size, ...trial });
        } finally {
          await Promise.all(parts.map(({ load }) => load.call('release', {}, 10_000)));
        }
      },
      // B is the cost of closing idle connections, not of the linger (whose default is chosen by
      // what pooled clients see: npm run e2e -- --only=fetch).
      { idleLinger: 0 },
    );
  });
  return trials;
}
