import { expect } from 'chai';
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { Lifecycle, ShutdownResult } from '../../src/core/lifecycle';
import { ConnectionChange, ConnState, isTracked, Protocol, ServerState } from '../../src/core/state';
import { countingScheduler } from '../support/fake-host';

/** What happens at one frame of a generated run. */
type Step =
  | { at: number; kind: 'change'; id: number; to: ConnState }
  | { at: number; kind: 'connect' }
  | { at: number; kind: 'shutdown' }
  | { at: number; kind: 'force' }
  | { at: number; kind: 'expire' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      at: fc.integer({ min: 0, max: 300 }),
      kind: fc.constant('change' as const),
      id: fc.integer({ min: 1, max: 8 }),
      to: fc.constantFrom<ConnState>('active', 'idle', 'hijacked', 'closed'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ at: fc.integer({ min: 0, max: 300 }), kind: fc.constant('connect' as const) }) },
  { weight: 1, arbitrary: fc.record({ at: fc.integer({ min: 0, max: 300 }), kind: fc.constant('shutdown' as const) }) },
  { weight: 1, arbitrary: fc.record({ at: fc.integer({ min: 0, max: 300 }), kind: fc.constant('force' as const) }) },
  { weight: 1, arbitrary: fc.record({ at: fc.integer({ min: 0, max: 300 }), kind: fc.constant('expire' as const) }) },
);

const scenario = fc.record({
  timeout: fc.constantFrom(0, 30, 100),
  idleLinger: fc.constantFrom(0, 10),
  drainDelay: fc.constantFrom(0, 20),
  cancelAhead: fc.constantFrom(0, 10, 30, 200),
  waitForHijacked: fc.boolean(),
  cycles: fc.integer({ min: 1, max: 2 }),
  initial: fc.array(fc.constantFrom<ConnState>('new', 'idle', 'active', 'hijacked'), { maxLength: 5 }),
  steps: fc.array(step, { maxLength: 25 }),
});

/** Each connection's protocol, fixed by its id: the model's split by protocol follows from it. */
function protocolOf(id: number): Protocol {
  return id % 3 === 0 ? 'http2' : 'http1';
}

/** The legal next states of a connection, as Node produces them. */
function legal(from: ConnState, to: ConnState): boolean {
  if (from === 'closed') return false;
  if (from === 'hijacked') return to === 'closed';
  return to !== from && !(from === 'new' && to === 'idle');
}

describe('the core against a reference model (fast-check)', () => {
  it('holds every invariant over 1,000 random runs of connection events, shutdowns and time', () => {
    const seed = Number(process.env['MODEL_SEED'] ?? 20261201);
    fc.assert(
      fc.property(scenario, (s) => {
        const testScheduler = new TestScheduler(() => undefined);
        testScheduler.maxFrames = Infinity;
        const { scheduler, pending } = countingScheduler(testScheduler);
        // The reference model: every connection's state, as the simple truth.
        const states = new Map<number, ConnState>();
        // Every change in order: the log the expected counts are computed from.
        let seq = 0;
        const log: Array<{ seq: number; frame: number; id: number; state: ConnState }> = [];
        const changes = new Subject<ConnectionChange>();
        const calls: Array<{ frame: number; seq: number; kind: 'closeIdle' | 'destroy'; ids: number[]; states: ConnState[] }> =
          [];
        const setState = (id: number, to: ConnState): void => {
          const previous = states.get(id);
          states.set(id, to);
          log.push({ seq: ++seq, frame: testScheduler.now(), id, state: to });
          // Like the Node side: the protocol comes with `closed`, once a connection.
          changes.next(to === 'closed' ? { id, state: to, previous, protocol: protocolOf(id) } : { id, state: to, previous });
        };
        /** What the host is asked to close (as idle) or destroy: recorded with the states it found, then closed. */
        const closeAndRecord = (kind: 'closeIdle' | 'destroy', ids: readonly number[]): void => {
          calls.push({
            frame: testScheduler.now(),
            seq: ++seq,
            kind,
            ids: [...ids],
            states: ids.map((id) => states.get(id) ?? 'closed'),
          });
          for (const id of ids) setState(id, 'closed');
        };
        const cancels: Array<{ frame: number; seq: number; reason: 'deadline' | 'forced' }> = [];
        let nextId = 0;
        const cycle = new Lifecycle(
          {
            changes$: changes,
            mixedProtocols: true,
            protocolOf,
            connections: () =>
              [...states].filter(([, st]) => st !== 'closed').map(([id, state]) => ({ id, state, idleSince: 0 })),
            beginShutdown: () => undefined,
            stopAccepting: (closed) => closed(),
            endShutdown: () => undefined,
            closeIdle: (ids) => {
              closeAndRecord('closeIdle', ids);
            },
            closeIdleNow: (ids) => {
              closeAndRecord('closeIdle', ids);
              return [];
            },
            destroy: (ids) => {
              closeAndRecord('destroy', ids);
            },
            cancel: (reason) => cancels.push({ frame: testScheduler.now(), seq: ++seq, reason }),
          },
          {
            timeout: s.timeout,
            idleLinger: s.idleLinger,
            drainDelay: s.drainDelay,
            waitForHijacked: s.waitForHijacked,
            cancelAhead: s.cancelAhead,
            scheduler,
          },
        );
        const emitted: Array<{ frame: number; state: ServerState }> = [];
        const watching = cycle.state$.subscribe((state) => emitted.push({ frame: testScheduler.now(), state }));
        const results: Array<{ frame: number; seq: number; result: ShutdownResult }> = [];
        watching.add(cycle.done$.subscribe((result) => results.push({ frame: testScheduler.now(), seq: ++seq, result })));
        const starts: Array<{ frame: number; seq: number; ok: boolean; cycle: number }> = [];
        const shutdown = (k: number): void => {
          const at = ++seq; // before the call: the drain may close connections inside it
          const ok = cycle.shutdown();
          starts.push({ frame: testScheduler.now(), seq: at, ok, cycle: k });
        };

        const cycleLength = 400;
        for (let k = 0; k < s.cycles; k++) {
          const base = k * cycleLength;
          testScheduler.schedule(() => {
            cycle.serving('pipe');
            for (const state of s.initial) {
              const id = ++nextId;
              setState(id, 'new');
              if (state === 'idle') setState(id, 'active');
              if (state !== 'new') setState(id, state);
            }
          }, base);
          for (const st of s.steps) {
            testScheduler.schedule(
              () => {
                if (st.kind === 'shutdown') shutdown(k);
                else if (st.kind === 'force') cycle.force();
                else if (st.kind === 'expire') cycle.expire();
                else if (st.kind === 'connect') {
                  if (cycle.phase === 'serving') setState(++nextId, 'new');
                } else {
                  const id = nextId - 8 + st.id;
                  const from = states.get(id);
                  if (from !== undefined && legal(from, st.to)) setState(id, st.to);
                }
              },
              base + 1 + st.at,
            );
          }
          // End every cycle: shut down, then let the clients close what is left.
          testScheduler.schedule(() => shutdown(k), base + 150);
          testScheduler.schedule(() => {
            for (const [id, st] of states) if (st !== 'closed') setState(id, 'closed');
          }, base + 390);
        }
        testScheduler.flush();

        // done$ emits exactly once per cycle, and shutdownOK is true exactly once per cycle.
        expect(results, 'one result per cycle').to.have.length(s.cycles);
        for (let k = 0; k < s.cycles; k++) {
          expect(
            starts.filter((x) => x.cycle === k && x.ok),
            `cycle ${k}: one true shutdownOK`,
          ).to.have.length(1);
        }
        // Counts are never negative, always add up, and match the model at every emission.
        for (const { state } of emitted) {
          expect(state.open).to.be.at.least(0);
          expect(state.active).to.be.at.least(0).and.at.most(state.open);
          expect(state.idle).to.equal(state.open - state.active);
        }
        const last = emitted[emitted.length - 1]?.state;
        const modelOpen = [...states.values()].filter((st) => isTracked(st)).length;
        expect(last?.open, 'the fold agrees with the model at the end').to.equal(modelOpen);
        // killed equals the survivors destroyed at the deadline (or force), none of them idle.
        const destroyed = calls.filter((c) => c.kind === 'destroy');
        const killed = results.reduce((sum, r) => sum + r.result.killed, 0);
        expect(
          destroyed.reduce((sum, c) => sum + c.ids.length, 0),
          'killed = destroyed',
        ).to.equal(killed);
        for (const call of destroyed) {
          for (const st of call.states) expect(['active', 'hijacked'], 'only busy survivors are killed').to.include(st);
        }
        for (const call of calls.filter((c) => c.kind === 'closeIdle')) {
          for (const st of call.states) expect(['new', 'idle'], 'only idle connections are closed as idle').to.include(st);
        }
        // Nothing is asked of the host after that cycle's done$, and no timer outlives the drain.
        for (const { frame, result } of results) {
          const cycleIndex = Math.floor(frame / cycleLength);
          const sameCycleAfter = (f: number): boolean => f > frame && Math.floor(f / cycleLength) === cycleIndex;
          expect(
            calls.filter((c) => sameCycleAfter(c.frame)),
            'no decision after done$',
          ).to.deep.equal([]);
          const after = emitted.filter((e) => sameCycleAfter(e.frame));
          expect(
            after.filter((e) => e.state.phase !== 'stopped'),
            'stopped after done$',
          ).to.deep.equal([]);
          expect(result.killed + result.closedIdle + result.drained).to.be.at.least(0);
          if (result.timedOut) {
            const expired = s.steps.some((x) => x.kind === 'expire');
            expect(s.timeout > 0 || expired, 'timed out by a deadline, or by expire()').to.equal(true);
          }
        }
        expect(pending(), 'no scheduled action left').to.equal(0);
        watching.unsubscribe();

        // Every connection that closed during a shutdown (delay included) counts in exactly one of
        // closedIdle (no work in progress during the shutdown), drained, or killed; hijacked ones in none.
        for (let k = 0; k < s.cycles; k++) {
          const start = starts.find((x) => x.cycle === k && x.ok);
          const done = results[k];
          if (start === undefined || done === undefined) continue;
          const killedIds = new Set(
            calls.filter((c) => c.kind === 'destroy' && c.seq > start.seq && c.seq < done.seq).flatMap((c) => c.ids),
          );
          let closedIdle = 0;
          let drained = 0;
          const split = {
            http1: { closedIdle: 0, drained: 0, killed: 0 },
            http2: { closedIdle: 0, drained: 0, killed: 0 },
          };
          for (const id of killedIds) split[protocolOf(id)].killed++;
          let lastIdleClose: number | undefined;
          let lastDrainedClose: number | undefined;
          for (const id of new Set(log.map((e) => e.id))) {
            const entries = log.filter((e) => e.id === id);
            const closed = entries.find((e) => e.state === 'closed');
            if (closed === undefined || closed.seq < start.seq || closed.seq > done.seq) continue;
            if (entries.some((e) => e.state === 'hijacked' && e.seq < closed.seq)) continue;
            if (killedIds.has(id)) continue;
            const before = entries.filter((e) => e.seq < start.seq).pop();
            const worked =
              before?.state === 'active' || entries.some((e) => e.state === 'active' && e.seq > start.seq && e.seq < closed.seq);
            const since = closed.frame - start.frame;
            if (worked) {
              drained++;
              split[protocolOf(id)].drained++;
              lastDrainedClose = Math.max(lastDrainedClose ?? 0, since);
            } else {
              closedIdle++;
              split[protocolOf(id)].closedIdle++;
              lastIdleClose = Math.max(lastIdleClose ?? 0, since);
            }
          }
          const endedInDelay = s.steps.some((x) => {
            const frame = k * cycleLength + 1 + x.at;
            return (x.kind === 'force' || x.kind === 'expire') && frame >= start.frame && frame < start.frame + s.drainDelay;
          });
          if (!endedInDelay) {
            const early = calls.filter((c) => c.seq > start.seq && c.frame < start.frame + s.drainDelay);
            expect(early, `cycle ${k}: nothing closed during the delay`).to.deep.equal([]);
          }
          expect(done.result, `cycle ${k}: the counts of the model`).to.include({ killed: killedIds.size, closedIdle, drained });
          expect(done.result.byProtocol, `cycle ${k}: the counts of the model by protocol`).to.deep.equal(split);
          const lastGracefulClose =
            lastIdleClose === undefined ? lastDrainedClose : Math.max(lastIdleClose, lastDrainedClose ?? 0);
          expect(
            [done.result.lastIdleCloseMs, done.result.lastDrainedCloseMs, done.result.lastGracefulCloseMs],
            `cycle ${k}: the times of the last closes in the model`,
          ).to.deep.equal([lastIdleClose, lastDrainedClose, lastGracefulClose]);
          expect(done.result.durationMs, `cycle ${k}: the duration in the model`).to.equal(done.frame - start.frame);

          // The work in flight is cancelled at most once a shutdown: always when the deadline, expire()
          // or force() ends it, before anything is destroyed; otherwise only at the moment to cancel.
          const cancelled = cancels.filter((c) => c.seq > start.seq && c.seq < done.seq);
          expect(cancelled.length, `cycle ${k}: at most one cancel`).to.be.at.most(1);
          const [cancel] = cancelled;
          const firstDestroy = calls.find((c) => c.kind === 'destroy' && c.seq > start.seq && c.seq < done.seq);
          if (done.result.timedOut || done.result.forced) {
            expect(cancel, `cycle ${k}: cancelled before the end`).not.to.equal(undefined);
            if (firstDestroy !== undefined) expect(cancel?.seq).to.be.below(firstDestroy.seq);
          }
          if (cancel?.reason === 'forced') expect(done.result.forced).to.equal(true);
          if (cancel !== undefined && !done.result.timedOut && !done.result.forced) {
            const moment = start.frame + s.drainDelay + Math.max(0, s.timeout - s.cancelAhead);
            expect(s.timeout, `cycle ${k}: a cancel for time needs a deadline`).to.be.above(0);
            expect(cancel, `cycle ${k}: cancelled at the moment to cancel`).to.deep.include({
              reason: 'deadline',
              frame: moment,
            });
          }
        }
      }),
      { numRuns: 1000, seed },
    );
  });
});
