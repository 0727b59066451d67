/**
 * What the two metrics adapters (rx-graceful/prometheus, rx-graceful/opentelemetry) read from a
 * server or a group, in one place: the state now, read at scrape time, and the totals kept from
 * connection and shutdown events. It loads neither adapter's optional peer.
 */
import type { EventEmitter } from 'node:events';
import { fromEvent, merge, Observable, Subscription, tap } from 'rxjs';
import type { ShutdownResult } from './core/lifecycle';
import type { Phase } from './core/state';
import { describeValue } from './errors';
import { GracefulServer } from './graceful-server';
import { GracefulGroup, GroupState } from './group';

/** Every phase, in the order the metrics list them. */
export const PHASES: readonly Phase[] = ['stopped', 'serving', 'draining'];
/** The buckets of the shutdown-duration histograms, in seconds: drains last from milliseconds to minutes. */
export const DURATION_BUCKETS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Counted since the binding: connections accepted, and what finished shutdowns did to connections; shutdowns. */
export interface MetricsTotals {
  readonly accepted: number;
  readonly closedIdle: number;
  readonly drained: number;
  readonly killed: number;
  readonly shutdowns: number;
}

/** A server or a group as the metrics read it. */
export interface MetricsSource {
  /** The state now (a group's: its members' combined). */
  readonly state: () => GroupState;
  /**
   * Starts counting: `totals` stays current until `subscription` is unsubscribed. `onShutdown` gets
   * the duration of each finished shutdown of the target itself, in seconds.
   */
  count(onShutdown: (durationS: number) => void): { readonly totals: MetricsTotals; readonly subscription: Subscription };
}

/** `target` as a `MetricsSource`; a `TypeError` naming `call` for anything but a `GracefulServer` or a `GracefulGroup`. */
export function metricsSourceOf(target: unknown, call: string): MetricsSource {
  if (isGracefulServer(target)) return source(target.state$, acceptedBy(target), target.done$, target.done$);
  if (target instanceof GracefulGroup) {
    const closings$ = merge(...target.members.map((member) => member.done$));
    return source(target.state$, merge(...target.members.map(acceptedBy)), closings$, target.done$);
  }
  throw new TypeError(`rx-graceful: ${call} expects a GracefulServer or a GracefulGroup, got ${describeValue(target)}`);
}

/**
 * `accepted$`: one value per connection accepted (by any member, for a group); `closings$`: one
 * result per finished shutdown of a server (of each member), for its connection counts;
 * `shutdowns$`: one per finished shutdown of the target itself, for the count and the duration.
 */
function source(
  state$: Observable<GroupState>,
  accepted$: Observable<unknown>,
  closings$: Observable<ShutdownResult>,
  shutdowns$: Observable<ShutdownResult>,
): MetricsSource {
  return {
    state: () => currentState(state$),
    count(onShutdown) {
      const totals = { accepted: 0, closedIdle: 0, drained: 0, killed: 0, shutdowns: 0 };
      const subscription = merge(
        accepted$.pipe(tap(() => totals.accepted++)),
        closings$.pipe(
          tap(({ closedIdle, drained, killed }) => {
            totals.closedIdle += closedIdle;
            totals.drained += drained;
            totals.killed += killed;
          }),
        ),
        shutdowns$.pipe(
          tap(({ durationMs }) => {
            totals.shutdowns++;
            onShutdown(durationMs / 1000);
          }),
        ),
      ).subscribe({
        // The streams are the library's own and never fail: an error here is a bug, and surfaces.
        error: (error: unknown) => {
          throw error;
        },
      });
      return { totals, subscription };
    },
  };
}

/** A type guard: `instanceof` alone narrows a generic class to `GracefulServer<any>`. */
function isGracefulServer(value: unknown): value is GracefulServer {
  return value instanceof GracefulServer;
}

/**
 * One value per connection `server` accepts: the listener's `connection` event, at which
 * `connections$` reports the connection `new`. Not `connections$` itself, which also carries every
 * request's `active` and `idle`: subscribed, it would make each request pay for an event.
 */
function acceptedBy(server: GracefulServer): Observable<unknown> {
  return fromEvent(server.server as EventEmitter, 'connection');
}

/**
 * The current value of a `state$` that replays it (the contract of `GracefulServer.state$` and
 * `GracefulGroup.state$`): subscribed for the one synchronous replay, then unsubscribed. Keeping a
 * subscription instead would run the state fold on every request between scrapes.
 */
function currentState(state$: Observable<GroupState>): GroupState {
  let current: GroupState | undefined;
  state$
    .subscribe({
      next: (state) => (current = state),
      error: (error: unknown) => {
        throw error;
      },
    })
    .unsubscribe();
  if (current === undefined) throw new Error('rx-graceful: state$ did not replay the current state when subscribed');
  return current;
}
