import { merge, Observable, SchedulerAction, SchedulerLike, Subject, Subscription } from 'rxjs';
import type { TrackedConnection } from '../../src/core/drain';
import type { LifecycleHost, ShutdownResult } from '../../src/core/lifecycle';
import type { ConnectionChange, ConnState, Protocol } from '../../src/core/state';

/** A change as marble values: `change(1, 'closed', 'idle')`. */
export function change(id: number, state: ConnState, previous?: ConnState): ConnectionChange {
  return { id, state, previous };
}

/**
 * A host with no sockets: it records what the core asks of it and, like the Node adapter, reports
 * `closed` at once for what it closes or destroys, naming the connection's protocol when
 * `protocols` has one for it (`protocolOf` answers from it too).
 */
export interface FakeHost extends LifecycleHost {
  readonly calls: string[];
  /** Ids that `closeIdle` reports as busy (a request head arriving). */
  busy: Set<number>;
  open: TrackedConnection[];
  /** The protocol of each connection, by id; `protocolOf` answers `http1` for one missing here. */
  readonly protocols: Map<number, Protocol>;
  protocolOf(id: number): Protocol;
}

export function fakeHost(changes$: Observable<ConnectionChange>, open: TrackedConnection[] = []): FakeHost {
  const closes = new Subject<ConnectionChange>();
  const close = (ids: readonly number[]): void => {
    for (const id of ids) {
      const closed = change(id, 'closed', host.open.find((c) => c.id === id)?.state);
      const protocol = host.protocols.get(id);
      closes.next(protocol === undefined ? closed : { ...closed, protocol });
    }
  };
  const host: FakeHost = {
    calls: [],
    busy: new Set(),
    open,
    protocols: new Map(),
    protocolOf: (id) => {
      host.calls.push(`protocolOf ${id}`);
      return host.protocols.get(id) ?? 'http1';
    },
    changes$: merge(changes$, closes),
    connections: () => host.open,
    beginShutdown: () => host.calls.push('beginShutdown'),
    stopAccepting: (closed) => {
      host.calls.push('stopAccepting');
      closed();
    },
    endShutdown: () => host.calls.push('endShutdown'),
    closeIdle: (ids, refused) => refused(host.closeIdleNow(ids)),
    closeIdleNow: (ids) => {
      host.calls.push(`closeIdle ${ids.join(',')}`);
      close(ids.filter((id) => !host.busy.has(id)));
      return ids.filter((id) => host.busy.has(id));
    },
    destroy: (ids) => {
      host.calls.push(`destroy ${ids.join(',')}`);
      close(ids);
    },
  };
  return host;
}

/** Wraps a scheduler to tell how many of the actions it scheduled are still pending. */
export function countingScheduler(inner: SchedulerLike): { scheduler: SchedulerLike; pending: () => number } {
  const live = new Set<Subscription>();
  const scheduler: SchedulerLike = {
    now: () => inner.now(),
    schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay?: number, state?: T): Subscription {
      const action = inner.schedule(work, delay, state);
      live.add(action);
      action.add(() => live.delete(action));
      return action;
    },
  };
  return { scheduler, pending: () => live.size };
}

/** A result that drained with nothing to do, changed by `r`. */
export function result(r: Partial<ShutdownResult> = {}): ShutdownResult {
  return { killed: 0, timedOut: false, forced: false, durationMs: 0, closedIdle: 0, drained: 0, hijacked: 0, ...r };
}
