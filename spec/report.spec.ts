import { expect } from 'chai';
import type { GroupShutdownResult, MemberResult } from '../src/group';
import { result } from './support/fake-host';
import { ShutdownResult, shutdownReport, shutdownSummary } from '../src';

/** A group's result over `members` (index, result), its totals given by `total`. */
const groupOf = (total: ShutdownResult, ...members: Array<[number, ShutdownResult]>): GroupShutdownResult => ({
  ...total,
  results: members.map(([index, own]) => ({ index, result: own }) as MemberResult),
});

/** The example of the docs: 180 idle closed at once, 58 drained, 2 killed at the deadline. */
const deploy = result({
  closedIdle: 180,
  drained: 58,
  killed: 2,
  timedOut: true,
  durationMs: 5000,
  lastIdleCloseMs: 1,
  lastDrainedCloseMs: 412,
  lastGracefulCloseMs: 412,
});

describe('shutdownSummary', () => {
  it('says how many connections ended, how, and when the last of each kind closed, on one line', () => {
    expect(shutdownSummary(deploy)).to.equal(
      'shutdown: 240 connections in 5000 ms, timed out — 180 idle closed by +1 ms, 58 drained by +412 ms, 2 killed at +5000 ms',
    );
  });

  it('says "at" for a count of 1, and leaves out what did not happen', () => {
    const drained = result({ drained: 1, durationMs: 451, lastDrainedCloseMs: 450, lastGracefulCloseMs: 450 });
    expect(shutdownSummary(drained)).to.equal('shutdown: 1 connection in 451 ms — 1 drained at +450 ms');
  });

  it('says forced when force() ended it', () => {
    expect(shutdownSummary(result({ killed: 3, forced: true, durationMs: 1200 }))).to.equal(
      'shutdown: 3 connections in 1200 ms, forced — 3 killed at +1200 ms',
    );
  });

  it('says 0 connections for a shutdown that had none', () => {
    expect(shutdownSummary(result({ durationMs: 2 }))).to.equal('shutdown: 0 connections in 2 ms');
  });

  it('adds the hijacked connections and the split by protocol when the result has one', () => {
    const split = result({
      closedIdle: 1,
      drained: 2,
      killed: 1,
      hijacked: 2,
      forced: true,
      durationMs: 63,
      lastIdleCloseMs: 2,
      lastDrainedCloseMs: 40,
      lastGracefulCloseMs: 40,
      byProtocol: {
        http1: { closedIdle: 0, drained: 1, killed: 1 },
        http2: { closedIdle: 1, drained: 1, killed: 0 },
      },
    });
    expect(shutdownSummary(split)).to.equal(
      'shutdown: 4 connections in 63 ms, forced — 1 idle closed at +2 ms, 2 drained by +40 ms, 1 killed at +63 ms; ' +
        '2 hijacked; HTTP/1: 1 drained, 1 killed; HTTP/2: 1 idle closed, 1 drained',
    );
  });

  it('says none for a protocol that had no connection', () => {
    const split = result({
      closedIdle: 1,
      lastIdleCloseMs: 0,
      lastGracefulCloseMs: 0,
      byProtocol: { http1: { closedIdle: 0, drained: 0, killed: 0 }, http2: { closedIdle: 1, drained: 0, killed: 0 } },
    });
    expect(shutdownSummary(split)).to.match(/; HTTP\/1: none; HTTP\/2: 1 idle closed$/);
  });

  it("rounds every time to whole ms (a clock's fractions are noise in a log)", () => {
    const fractional = result({ drained: 2, durationMs: 411.6, lastDrainedCloseMs: 410.4, lastGracefulCloseMs: 410.4 });
    expect(shutdownSummary(fractional)).to.equal('shutdown: 2 connections in 412 ms — 2 drained by +410 ms');
  });

  it("summarizes a group's totals, naming how many servers took part; what the members killed, by the group's end", () => {
    const api = result({ killed: 1, timedOut: true, durationMs: 30 });
    const admin = result({
      killed: 1,
      drained: 1,
      timedOut: true,
      durationMs: 100,
      lastDrainedCloseMs: 20,
      lastGracefulCloseMs: 20,
    });
    const group = groupOf(
      result({ killed: 2, drained: 1, timedOut: true, durationMs: 100, lastDrainedCloseMs: 20, lastGracefulCloseMs: 20 }),
      [0, api],
      [2, admin],
    );
    expect(shutdownSummary(group)).to.equal(
      'shutdown of 2 servers: 3 connections in 100 ms, timed out — 1 drained at +20 ms, 2 killed by +100 ms',
    );
  });
});

describe('shutdownReport', () => {
  it('gives every field of a server, with null for the times and the split that do not apply', () => {
    expect(shutdownReport(result({ killed: 1, timedOut: true, durationMs: 100.4 }))).to.deep.equal({
      connections: 1,
      closedIdle: 0,
      drained: 0,
      killed: 1,
      hijacked: 0,
      timedOut: true,
      forced: false,
      durationMs: 100,
      lastIdleCloseMs: null,
      lastDrainedCloseMs: null,
      lastGracefulCloseMs: null,
      byProtocol: null,
    });
  });

  it('keeps the same field names, whatever the shutdown did', () => {
    const split = result({
      byProtocol: { http1: { closedIdle: 0, drained: 0, killed: 0 }, http2: { closedIdle: 0, drained: 0, killed: 0 } },
    });
    expect(Object.keys(shutdownReport(deploy))).to.deep.equal(Object.keys(shutdownReport(result())));
    expect(Object.keys(shutdownReport(split))).to.deep.equal(Object.keys(shutdownReport(result())));
    expect(shutdownReport(deploy)).to.deep.include({
      connections: 240,
      lastIdleCloseMs: 1,
      lastDrainedCloseMs: 412,
      lastGracefulCloseMs: 412,
    });
  });

  it("gives a group's totals and one report per member that took part, and prints no server in JSON", () => {
    const api = result({ closedIdle: 1, durationMs: 10, lastIdleCloseMs: 3, lastGracefulCloseMs: 3 });
    const admin = result({ drained: 1, durationMs: 20, lastDrainedCloseMs: 20, lastGracefulCloseMs: 20 });
    const total = result({
      closedIdle: 1,
      drained: 1,
      durationMs: 21,
      lastIdleCloseMs: 3,
      lastDrainedCloseMs: 20,
      lastGracefulCloseMs: 20,
    });
    const report = shutdownReport(groupOf(total, [0, api], [1, admin]));
    expect(report).to.deep.include({ connections: 2, durationMs: 21, lastGracefulCloseMs: 20 });
    expect(report.members).to.deep.equal([
      { index: 0, ...shutdownReport(api) },
      { index: 1, ...shutdownReport(admin) },
    ]);
    expect(JSON.parse(JSON.stringify(report))).to.deep.equal(report);
  });
});
