import { of, SchedulerLike, Subject, Subscription } from 'rxjs';
import type { TrackedConnection } from './core/drain';
import { Lifecycle, LifecycleHost } from './core/lifecycle';
import type { ConnectionChange } from './core/state';

let warmedUp = false;

/** The warm-ups' time source: its clock reads 0 and nothing it is asked to schedule ever runs. */
export const neverScheduler: SchedulerLike = { now: () => 0, schedule: () => new Subscription() };

/**
 * A lifecycle for a warm-up shutdown around `host`: `neverScheduler`, a 1 ms timeout that only
 * `expire()` ends, no delay and no linger. Shared by the core's warm-up and the adapter's
 * (node/warm-up.ts).
 */
export function warmUpCycle(host: LifecycleHost): Lifecycle {
  return new Lifecycle(host, { timeout: 1, drainDelay: 0, idleLinger: 0, waitForHijacked: false, scheduler: neverScheduler });
}

/**
 * Runs two shutdowns of a server with two connections through the core, once per process, with a
 * scheduler that never fires. V8 compiles functions on their first call; without this, the first
 * real shutdown of a process (and a deploy shuts each process down once) spent about 2 ms compiling
 * the drain before it set its deadline timer, and about 1 ms more when the deadline came. The first
 * shutdown ends as drained, the second as a deadline ends one (`expire()`: the work in flight
 * cancelled, the survivor destroyed and counted). It costs a few ms once, when the first
 * GracefulServer is made, and starts no timer.
 */
export function warmUpShutdownPath(): void {
  if (warmedUp) return;
  warmedUp = true;
  runShutdownPathWarmUp();
}

/**
 * The warm-up of `warmUpShutdownPath`, run every time it is called: node/keep-warm.ts runs it again
 * while a server serves, before V8 would drop the code it compiled.
 */
export function runShutdownPathWarmUp(): void {
  const changes = new Subject<ConnectionChange | readonly ConnectionChange[]>();
  const idle: TrackedConnection = { id: 1, state: 'idle', idleSince: 0 };
  const active: TrackedConnection = { id: 2, state: 'active', idleSince: 0 };
  /** The active connection closes by itself in the first shutdown, and outlives the second. */
  let activeCloses = true;
  // Two connections, handed over in a slice as the Node side does: one idle (closed as idle, its
  // close reported in a batch as a slice of closes is) and one active, so that every step of the
  // drain runs once.
  const host: LifecycleHost = {
    changes$: new Subject<ConnectionChange>(),
    connections: () => [idle, active],
    connectionsInSlices: () => ({ slices$: of([idle, active]), rest: () => undefined }),
    drainChanges: () => changes,
    beginShutdown: () => undefined,
    stopAccepting: (closed) => {
      if (activeCloses) changes.next({ id: 2, state: 'closed', previous: 'active' });
      closed();
    },
    endShutdown: () => undefined,
    closeIdle: (ids) => {
      changes.next(ids.map((id) => ({ id, state: 'closed', previous: 'idle' })));
    },
    closeIdleNow: () => [],
    cancel: () => undefined,
    destroy: (ids) => {
      changes.next(ids.map((id) => ({ id, state: 'closed', previous: 'active' })));
    },
  };
  const cycle = warmUpCycle(host);
  const states = cycle.state$.subscribe();
  cycle.serving(undefined);
  cycle.shutdown();
  activeCloses = false;
  cycle.serving(undefined);
  cycle.shutdown();
  cycle.expire();
  states.unsubscribe();
}
