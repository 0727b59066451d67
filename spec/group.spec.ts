import { expect } from 'chai';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { Subject, take } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { GracefulOptions, GracefulServer, ShutdownResult } from '../src';
import { GracefulGroup, GroupShutdownResult, GroupState, MemberResult, totalOf } from '../src/group';
import { countingScheduler } from './support/fake-host';
import { closeAfterTest, Http2Client, testApp } from './support/server-kinds';
import { afterEachTest, record, serveForTest } from './support/servers';
import { loopback, portOf, RawClient, testCertificate, waitForValue, withDeadline } from './support/sockets';

/** A member's result after `durationMs`, ended by its own or the group's deadline unless told otherwise. */
const ended = (durationMs: number, r: Partial<ShutdownResult> = {}): ShutdownResult => ({
  killed: 0,
  timedOut: true,
  forced: false,
  durationMs,
  closedIdle: 0,
  drained: 0,
  hijacked: 0,
  ...r,
});

/** A group's result: the members' totals over `results`, given as [index, result] pairs. */
const groupResult = (durationMs: number, ...results: [number, ShutdownResult][]): GroupShutdownResult => ({
  killed: results.reduce((sum, [, r]) => sum + r.killed, 0),
  timedOut: results.some(([, r]) => r.timedOut),
  forced: results.some(([, r]) => r.forced),
  durationMs,
  closedIdle: results.reduce((sum, [, r]) => sum + r.closedIdle, 0),
  drained: results.reduce((sum, [, r]) => sum + r.drained, 0),
  hijacked: results.reduce((sum, [, r]) => sum + r.hijacked, 0),
  results: results.map(([index, result]) => ({ index, result }) as GroupShutdownResult['results'][number]),
});

describe('GracefulGroup', function () {
  this.timeout(15000);
  const cleanup = afterEachTest();

  describe('totals (totalOf)', () => {
    const member = (index: number, result: ShutdownResult): MemberResult => ({ index, result }) as MemberResult;
    const counts = (closedIdle: number, drained: number, killed: number) => ({ closedIdle, drained, killed });

    it("sums the members' splits by protocol, a member without one counted as HTTP/1, and keeps each member's own result", () => {
      const api = ended(100, { closedIdle: 2, drained: 1, killed: 1 });
      const feed = ended(80, {
        closedIdle: 1,
        drained: 3,
        killed: 2,
        byProtocol: { http1: counts(1, 1, 0), http2: counts(0, 2, 2) },
      });
      const total = totalOf([member(0, api), member(1, feed)], 120);
      expect(total).to.deep.include({ closedIdle: 3, drained: 4, killed: 3, durationMs: 120 });
      expect(total.byProtocol).to.deep.equal({ http1: counts(3, 2, 1), http2: counts(0, 2, 2) });
      expect(total.results.map((r) => r.result)).to.deep.equal([api, feed]);
      expect(api).not.to.have.property('byProtocol');
    });

    it("takes the latest of the members' times, each one separately, and leaves out a time no member has", () => {
      const api = ended(100, { closedIdle: 1, lastIdleCloseMs: 40, lastGracefulCloseMs: 40 });
      const feed = ended(80, {
        closedIdle: 1,
        drained: 1,
        lastIdleCloseMs: 5,
        lastDrainedCloseMs: 30,
        lastGracefulCloseMs: 30,
      });
      expect(totalOf([member(0, api), member(1, feed)], 120)).to.deep.include({
        lastIdleCloseMs: 40,
        lastDrainedCloseMs: 30,
        lastGracefulCloseMs: 40,
      });
      const none = totalOf([member(0, ended(10, { killed: 1 })), member(1, ended(20))], 20);
      for (const field of ['byProtocol', 'lastIdleCloseMs', 'lastDrainedCloseMs', 'lastGracefulCloseMs']) {
        expect(none, 'no member has it').not.to.have.property(field);
      }
    });
  });

  /**
   * The members listen on 127.0.0.1 for real, with no connection; their deadlines and the group's
   * run on the TestScheduler, so that a shutdown ends by a deadline in virtual time.
   */
  describe('in virtual time', () => {
    let testScheduler: TestScheduler;
    beforeEach(() => {
      testScheduler = new TestScheduler((actual, expected) => {
        expect(actual).to.deep.equal(expected);
      });
    });

    async function member(options: GracefulOptions = {}): Promise<GracefulServer> {
      const server = http.createServer((_req, res) => res.end('ok'));
      return (await serveForTest(server, { scheduler: testScheduler, ...options }, cleanup)).graceful;
    }

    /** A group on the test scheduler, with a deadline of `timeout` virtual ms. */
    function groupOf(members: GracefulServer[], timeout = 100): GracefulGroup {
      return new GracefulGroup(members, { timeout, scheduler: testScheduler });
    }

    /** A member that never listens: stopped when the group shuts down. */
    function stoppedMember(): GracefulServer {
      return new GracefulServer(http.createServer(), { scheduler: testScheduler });
    }

    it('ends every member still draining at the one group deadline, counted from the group shutdown, as timedOut', async () => {
      const api = await member();
      const admin = await member();
      const group = groupOf([api, admin]);
      testScheduler.run(({ expectObservable }) => {
        testScheduler.schedule(() => group.shutdown(), 10);
        expectObservable(group.done$).toBe('110ms r', {
          r: groupResult(100, [0, ended(100)], [1, ended(100)]),
        });
        expectObservable(api.done$).toBe('110ms r', { r: ended(100) });
      });
    });

    it("lets a member's own shorter timeout end it first, and ends the group at its own deadline", async () => {
      const api = await member({ timeout: 30 });
      const admin = await member();
      const group = groupOf([api, admin]);
      testScheduler.run(({ expectObservable }) => {
        testScheduler.schedule(() => group.shutdown(), 10);
        expectObservable(api.done$).toBe('40ms r', { r: ended(30) });
        expectObservable(admin.done$).toBe('110ms r', { r: ended(100) });
        expectObservable(group.done$).toBe('110ms r', {
          r: groupResult(100, [0, ended(30)], [1, ended(100)]),
        });
      });
    });

    it("cuts a member's own longer timeout at the group deadline", async () => {
      const api = await member({ timeout: 500 });
      const group = groupOf([api]);
      testScheduler.run(({ expectObservable }) => {
        testScheduler.schedule(() => group.shutdown(), 10);
        expectObservable(group.done$).toBe('110ms r', { r: groupResult(100, [0, ended(100)]) });
      });
    });

    it('ends as the last member ends when every member ends before the group deadline, and unsubscribes its timer', async () => {
      const api = await member({ timeout: 20 });
      const admin = await member({ timeout: 50 });
      const { scheduler, pending } = countingScheduler(testScheduler);
      const group = new GracefulGroup([api, admin], { timeout: 1000, scheduler });
      const pendingAt: number[] = [];
      testScheduler.run(({ expectObservable }) => {
        testScheduler.schedule(() => group.shutdown(), 10);
        testScheduler.schedule(() => pendingAt.push(pending()), 30);
        testScheduler.schedule(() => pendingAt.push(pending()), 61);
        expectObservable(group.done$).toBe('60ms r', {
          r: groupResult(50, [0, ended(20)], [1, ended(50)]),
        });
      });
      expect(pendingAt).to.deep.equal([1, 0]);
    });

    it('leaves out the members that are stopped when the group shuts down; each result names its index and server', async () => {
      const api = await member();
      const idle = stoppedMember();
      const admin = await member();
      const group = groupOf([api, idle, admin]);
      const done = record(group.done$, cleanup);
      testScheduler.run(({ expectObservable }) => {
        testScheduler.schedule(() => group.shutdown(), 10);
        expectObservable(group.done$).toBe('110ms r', {
          r: groupResult(100, [0, ended(100)], [2, ended(100)]),
        });
      });
      expect(done[0]?.results.map((r) => r.server)).to.deep.equal([api, admin]);
      expect(JSON.parse(JSON.stringify(done[0]))).to.deep.include({ killed: 0, timedOut: true });
    });

    it('starts only with the first shutdownOK() call, and force() ends it at once as forced', async () => {
      const api = await member();
      const admin = await member();
      const group = groupOf([api, admin]);
      const ok: boolean[] = [];
      testScheduler.run(({ expectObservable }) => {
        testScheduler.schedule(() => ok.push(group.shutdownOK(), group.shutdownOK()), 10);
        testScheduler.schedule(() => group.force(), 30);
        const forced = ended(20, { timedOut: false, forced: true });
        expectObservable(group.done$).toBe('30ms r', {
          r: groupResult(20, [0, forced], [1, forced]),
        });
      });
      expect(ok).to.deep.equal([true, false]);
      expect(group.shutdownOK()).to.equal(false); // nothing serves any more
    });

    it('shuts down on the first value of shutdownOn(trigger$) and forces on the second', async () => {
      const api = await member();
      const group = groupOf([api]);
      testScheduler.run(({ hot, expectObservable }) => {
        const watching = group.shutdownOn(hot('10ms a 19ms b'));
        cleanup.push(() => watching.unsubscribe());
        const forced = ended(20, { timedOut: false, forced: true });
        expectObservable(group.done$).toBe('30ms r', { r: groupResult(20, [0, forced]) });
      });
    });

    it('leaves out a member that starts serving during the group shutdown; shutdownOn shuts it down on the next trigger', async () => {
      const api = await member({ drainDelay: 50 });
      const admin = stoppedMember();
      const group = groupOf([api, admin]);
      const trigger = new Subject<string>();
      const watching = group.shutdownOn(trigger);
      cleanup.push(() => watching.unsubscribe());
      const done = record(group.done$, cleanup);
      trigger.next('SIGTERM');
      await admin.listen(loopback); // while api is in its pre-drain delay
      testScheduler.flush();
      trigger.next('SIGTERM');
      testScheduler.flush();
      expect(done.map((r) => r.results.map(({ index }) => index))).to.deep.equal([[0], [1]]);
    });

    it('shuts down from take(1) of a signal-like Subject into shutdown$, again after listening again', async () => {
      const api = await member();
      const group = groupOf([api]);
      const signals = new Subject<string>();
      const done = record(group.done$, cleanup);
      for (let cycle = 0; cycle < 2; cycle++) {
        if (cycle > 0) await api.listen(loopback);
        const piped = signals.pipe(take(1)).subscribe(group.shutdown$);
        cleanup.push(() => piped.unsubscribe());
        testScheduler.run(() => {
          testScheduler.schedule(() => signals.next('SIGTERM'), 10);
        });
      }
      expect(done.map((r) => r.durationMs)).to.deep.equal([100, 100]);
      expect(await group.wait()).to.equal(done[1]);
    });

    it('state$ sums the members and drains if any drains; ready$ is true only while every member is ready', async () => {
      const api = await member();
      const later = stoppedMember();
      const group = groupOf([api, later]);
      const states = record(group.state$, cleanup);
      const ready = record(group.ready$, cleanup);
      await later.listen(loopback);
      testScheduler.run(() => {
        testScheduler.schedule(() => group.shutdown(), 10);
      });
      const phases = states.map((s: GroupState) => `${s.phase}${s.accepting ? ' accepting' : ''}`);
      expect(phases[0]).to.equal('serving accepting');
      expect(phases.at(-1)).to.equal('stopped');
      expect(phases).to.include('draining');
      expect(ready).to.deep.equal([false, true, false]);
    });

    it('throws a TypeError for no member, a non-member, the same member twice, a bad timeout or an unknown option', () => {
      const api = stoppedMember();
      const bad: [unknown, unknown, RegExp][] = [
        [[], {}, /non-empty array/],
        [api, {}, /non-empty array/],
        [[api, http.createServer()], {}, /members\[1\] must be a GracefulServer, got a Server/],
        [[api, api], {}, /members\[1\] is members\[0\] again/],
        [[api], { timeout: -1 }, /timeout/],
        [[api], { timeout: Infinity }, /timeout/],
        [[api], { timeout: '10' }, /timeout/],
        [[api], { timout: 10 }, /unknown option "timout"/],
        [[api], { scheduler: {} }, /SchedulerLike/],
        [[api], null, /options must be an object/],
      ];
      for (const [members, options, message] of bad) {
        expect(() => new GracefulGroup(members as GracefulServer[], options as never)).to.throw(TypeError, message);
      }
    });
  });

  it("over http and an allowHTTP1 http2 server on 127.0.0.1: the totals sum the split by protocol and take the members' latest closes", async () => {
    const api = http.createServer((_req, res) => res.end('ok'));
    const app = testApp();
    const feed = http2.createSecureServer({ ...testCertificate, allowHTTP1: true }, app.handler);
    const members = [new GracefulServer(api, { idleLinger: 0 }), new GracefulServer(feed, { idleLinger: 0 })] as const;
    closeAfterTest(api, cleanup);
    closeAfterTest(feed, cleanup);
    const group = new GracefulGroup(members, { timeout: 5000 });
    const apiPort = portOf(await members[0].listen(loopback));
    const feedPort = portOf(await members[1].listen(loopback));

    // An idle HTTP/1 connection on each member, and an HTTP/2 stream in flight on the feed.
    const apiClient = await RawClient.connect(apiPort);
    const tlsClient = await RawClient.connectTls(feedPort);
    const session = await Http2Client.connect(`https://127.0.0.1:${feedPort}`);
    cleanup.push(
      () => apiClient.destroy(),
      () => tlsClient.destroy(),
      () => session.destroy(),
    );
    for (const client of [apiClient, tlsClient]) {
      client.get('/warm-up');
      expect(await client.read()).to.include({ status: 200 });
    }
    const held = session.request('/held');
    await waitForValue(group.state$, (s) => s.open === 3 && s.active === 1, 3000, 'three connections, one stream in flight');

    const finished = group.wait();
    group.shutdown();
    await waitForValue(group.state$, (s) => s.open === 1, 3000, 'the idle connections closed');
    app.release();
    expect(await withDeadline(held, 3000, 'the held stream')).to.include({ status: 200 });
    const result = await withDeadline(finished, 3000, 'the group shutdown');

    const [apiResult, feedResult] = result.results.map((r) => r.result);
    expect(apiResult).to.include({ closedIdle: 1, drained: 0, killed: 0 });
    expect(apiResult).not.to.have.property('byProtocol');
    expect(feedResult?.byProtocol).to.deep.equal({
      http1: { closedIdle: 1, drained: 0, killed: 0 },
      http2: { closedIdle: 0, drained: 1, killed: 0 },
    });
    expect(result).to.include({ closedIdle: 2, drained: 1, killed: 0 });
    expect(result.byProtocol).to.deep.equal({
      http1: { closedIdle: 2, drained: 0, killed: 0 },
      http2: { closedIdle: 0, drained: 1, killed: 0 },
    });
    const latestIdle = Math.max(apiResult?.lastIdleCloseMs ?? -1, feedResult?.lastIdleCloseMs ?? -1);
    expect(result).to.include({
      lastIdleCloseMs: latestIdle,
      lastDrainedCloseMs: feedResult?.lastDrainedCloseMs,
      lastGracefulCloseMs: Math.max(latestIdle, feedResult?.lastDrainedCloseMs ?? -1),
    });
    expect(feedResult?.lastDrainedCloseMs).to.be.at.least(feedResult?.lastIdleCloseMs ?? Infinity);
  });

  it('over http, https and http2 on 127.0.0.1: the group deadline kills the hung requests of two members, the third drains', async () => {
    // http and http2 never answer; https answers once the shutdown has begun.
    const api = http.createServer(() => undefined);
    let releaseAdmin: (() => void) | undefined;
    const admin = https.createServer(testCertificate, (_req, res) => {
      releaseAdmin = () => res.end('late');
    });
    const feed = http2.createSecureServer(testCertificate, () => undefined);
    const members = [
      new GracefulServer(api, { timeout: 10_000 }),
      new GracefulServer(admin, { timeout: 10_000 }),
      new GracefulServer(feed),
    ] as const;
    for (const server of [api, admin, feed]) {
      cleanup.push(() => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close();
      });
    }
    const group = new GracefulGroup(members, { timeout: 500 });
    const apiPort = portOf(await members[0].listen(loopback));
    const adminPort = portOf(await members[1].listen(loopback));
    const feedPort = portOf(await members[2].listen(loopback));

    const apiClient = await RawClient.connect(apiPort);
    const adminClient = await RawClient.connectTls(adminPort);
    const session = http2.connect(`https://127.0.0.1:${feedPort}`, { ca: testCertificate.cert, servername: 'localhost' });
    session.on('error', () => undefined); // the deadline destroys the session under it
    cleanup.push(
      () => apiClient.destroy(),
      () => adminClient.destroy(),
      () => session.destroy(),
    );
    apiClient.get('/hang');
    adminClient.get('/late');
    const stream = session.request({ ':path': '/hang' });
    stream.on('error', () => undefined);
    stream.end();
    await waitForValue(group.state$, (s) => s.active === 3, 3000, 'one request in flight on each member');

    const finished = group.wait();
    expect(group.shutdownOK()).to.equal(true);
    await waitForValue(group.state$, (s) => s.phase === 'draining', 3000, 'the group draining');
    releaseAdmin?.();
    const late = await adminClient.read();
    expect(late).to.include({ status: 200, body: 'late' });
    expect(late.headers.connection).to.equal('close');

    const result = await withDeadline(finished, 5000, 'the group deadline to end the shutdown');
    expect(result.results.map((r) => [r.index, r.server])).to.deep.equal(members.map((m, i) => [i, m]));
    const [apiResult, adminResult, feedResult] = result.results.map((r) => r.result);
    expect(apiResult).to.include({ killed: 1, timedOut: true, drained: 0, forced: false });
    expect(adminResult).to.include({ killed: 0, timedOut: false, drained: 1 });
    expect(feedResult).to.include({ killed: 1, timedOut: true, drained: 0 });
    expect(result).to.include({ killed: 2, drained: 1, timedOut: true, forced: false });
    expect(result.durationMs).to.be.within(490, 3000);
    const after = await waitForValue(
      group.state$,
      (s) => s.phase === 'stopped' && s.open === 0,
      2000,
      'the group stopped and closed',
    );
    expect(after.killed).to.equal(2);
    await apiClient.waitClosed();
  });
});
