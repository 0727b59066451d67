import { expect } from 'chai';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { itAlongside, type Program, Programs } from './support/program';
import type { RawClient, Response } from './support/sockets';

// The examples run as a user runs them: ts-node, importing 'rx-graceful', which resolves to dist/
// (`npm test` builds it first). Those that serve until a signal get one once they say they serve,
// as from an orchestrator or a Ctrl-C; every one must then exit by itself with code 0.
//
// Each example mostly waits on its own timeline (a 1 s handler, a demo's schedule): all of them
// start together, and each test awaits the run of its own.
describe('the examples, run as a user runs them', function () {
  this.timeout(30000);

  const programs = new Programs();

  /** Starts `file` on a free port, and resolves with it once it says it serves. */
  async function serve(file: string): Promise<{ program: Program; port: number }> {
    const program = programs.start(file, { PORT: '0' });
    return { program, port: await program.port('serving on ', 20000) };
  }

  /**
   * Sends GET `path` on `count` keep-alive connections, and resolves with their responses to come
   * once `program` has printed `seen` for each request.
   */
  async function send(
    program: Program,
    port: number,
    path: string,
    count: number,
    seen: string | RegExp,
  ): Promise<() => Promise<Response[]>> {
    const connected = await Promise.all(Array.from({ length: count }, () => programs.connect(port)));
    for (const client of connected) client.get(path);
    await program.count(seen, count, 5000);
    return () => Promise.all(connected.map((client) => client.read(5000)));
  }

  /** Opens a keep-alive connection and asks GET /ready on it; resolves with it once answered 200. */
  async function readyProbe(port: number): Promise<RawClient> {
    const probe = await programs.connect(port);
    probe.get('/ready');
    expect(await probe.read(5000)).to.deep.include({ status: 200 });
    return probe;
  }

  /** Asks GET /ready on `probe` again and again until the answer is not 200 (the shutdown has begun), and resolves with it. */
  async function notReady(probe: RawClient, ms: number): Promise<Response> {
    const deadline = Date.now() + ms;
    for (;;) {
      probe.get('/ready');
      const response = await probe.read(ms);
      if (response.status !== 200 || Date.now() > deadline) return response;
    }
  }

  function expectDrained(responses: Response[], body: string): void {
    for (const response of responses) {
      expect(response).to.deep.include({ status: 200, body });
      expect(response.headers.connection, 'the Connection header of a response in flight').to.equal('close');
    }
  }

  async function expectExitedByItself(program: Program): Promise<void> {
    expect(await program.exit(5000)).to.deep.equal({ code: 0, signal: null });
  }

  itAlongside('examples/basic.ts prints OK and exits by itself (the seed: serve, shutdown after 1 s, wait)', async () => {
    const program = programs.start('examples/basic.ts');
    expect(await program.exit(20000)).to.deep.equal({ code: 0, signal: null });
    expect(program.lines).to.deep.equal(['OK']);
  });

  itAlongside(
    'examples/demo.ts (npm start) shows the timeline up to its own SIGTERM, each request as sent and as answered, the drain report, loses nothing and ends with OK',
    async () => {
      const program = programs.start('examples/demo.ts');
      expect(await program.exit(20000)).to.deep.equal({ code: 0, signal: null });
      expect(program.lines.join('\n'))
        .to.match(/---- SIGTERM/)
        .and.match(/draining/)
        .and.match(/lost: 0/);
      // Each of the 7 requests twice: when its client sent it, and when the answer came, with the time it was sent.
      const sent = program.lines.filter((line) => /^ *\d+ ms +[ABC]: GET \/(fast|slow) +sent$/.test(line));
      const answered = program.lines.filter((line) =>
        /^ *\d+ ms +[ABC]: GET \/(fast|slow) +-> 200 .*, sent at \d+ ms$/.test(line),
      );
      expect(sent, 'a line per request as sent').to.have.length(7);
      expect(answered, 'a line per request as answered').to.have.length(7);
      // The two slow requests were in flight at the SIGTERM: answered during the drain, told to close.
      const slow = answered.filter((line) => line.includes('/slow'));
      expect(slow).to.have.length(2);
      for (const line of slow) expect(line).to.match(/-> 200 \(connection: close\), sent at \d+ ms$/);
      // C was idle: closed idle (after its linger); A and B drained.
      expect(program.lines.find((line) => line.startsWith('shutdown: '))).to.match(
        /^shutdown: 3 connections in \d+ ms — 1 idle closed at \+\d+ ms, 2 drained by \+\d+ ms \(timeout was 3000 ms\)$/,
      );
      expect(program.lines.at(-1)).to.equal('OK');
    },
  );

  itAlongside('examples/main.ts drains the request in flight on SIGTERM and exits by itself with code 0', async () => {
    const { program, port } = await serve('examples/main.ts');
    const responses = await send(program, port, '/slow', 1, 'GET /slow');
    program.signal('SIGTERM');
    expectDrained(await responses(), 'done\n');
    expect(await program.line('stopped in ', 3000)).to.match(/: drained 1, killed 0$/);
    await expectExitedByItself(program);
  });

  itAlongside(
    'examples/pino.ts logs the drain report on SIGTERM as one JSON record: the counts as fields, the summary as its message',
    async () => {
      const program = programs.start('examples/pino.ts', { PORT: '0' });
      const serving = JSON.parse(await program.line(/"msg":"serving on /, 20000)) as { msg: string };
      const port = Number(/:(\d+)$/.exec(serving.msg)?.[1]);
      const responses = await send(program, port, '/slow', 1, /"msg":"GET \/slow"/);
      program.signal('SIGTERM');
      expectDrained(await responses(), 'done\n');
      const record = JSON.parse(await program.line(/"msg":"shutdown: /, 3000)) as Record<string, unknown>;
      expect(record).to.deep.include({
        level: 30,
        connections: 1,
        closedIdle: 0,
        drained: 1,
        killed: 0,
        hijacked: 0,
        timedOut: false,
        forced: false,
        lastIdleCloseMs: null,
        byProtocol: null,
      });
      const { durationMs, lastDrainedCloseMs } = record;
      expect(lastDrainedCloseMs).to.be.a('number').and.equal(record['lastGracefulCloseMs']).and.at.most(Number(durationMs));
      expect(record['msg']).to.equal(
        `shutdown: 1 connection in ${String(durationMs)} ms — 1 drained at +${String(lastDrainedCloseMs)} ms`,
      );
      await expectExitedByItself(program);
    },
  );

  itAlongside(
    'examples/express.ts drains three requests in flight on SIGTERM, its /ready route answers 503 from then, and it exits by itself with code 0',
    async () => {
      const { program, port } = await serve('examples/express.ts');
      const probe = await readyProbe(port);
      const responses = await send(program, port, '/work', 3, 'GET /work');
      program.signal('SIGTERM');
      const answer = await notReady(probe, 3000);
      expect(answer).to.deep.include({ status: 503 });
      expect(answer.headers.connection, 'the Connection header of the 503').to.equal('close');
      expectDrained(await responses(), 'done\n');
      // The three requests, and the probe's connection, which had a request in flight during the drain.
      expect(await program.line('stopped: ', 3000)).to.equal('stopped: drained 4, killed 0');
      await expectExitedByItself(program);
    },
  );

  itAlongside(
    'examples/fastify.ts answers /ready through reply.raw, drains three requests in flight through fastify.close() on SIGINT, then runs its onClose hook',
    async () => {
      const { program, port } = await serve('examples/fastify.ts');
      (await readyProbe(port)).destroy();
      const responses = await send(program, port, '/work', 3, 'GET /work');
      program.signal('SIGINT');
      expectDrained(await responses(), 'done\n');
      expect(await program.line('stopped: ', 3000)).to.equal('stopped: drained 3, killed 0');
      await program.line('onClose: ', 3000);
      await expectExitedByItself(program);
    },
  );

  itAlongside('examples/websocket.ts closes every WebSocket with 1001 on SIGTERM and exits by itself with code 0', async () => {
    const { program, port } = await serve('examples/websocket.ts');
    const sockets = Array.from({ length: 3 }, () => new WebSocket(`ws://127.0.0.1:${port}`));
    try {
      // Each socket's first message is the server's hello: by then the server counts it as a client.
      await Promise.all(sockets.map((ws) => once(ws, 'message')));
      const codes = sockets.map(async (ws) => ((await once(ws, 'close')) as [number, Buffer])[0]);
      program.signal('SIGTERM');
      expect(await Promise.all(codes)).to.deep.equal([1001, 1001, 1001]);
      expect(await program.line('drained in ', 3000)).to.match(/: 3 WebSockets, killed 0$/);
      await expectExitedByItself(program);
    } finally {
      for (const ws of sockets) ws.terminate();
    }
  });

  itAlongside(
    'examples/abort.ts answers 503 once the request signal aborts, cancelAhead before the deadline, and exits with code 0',
    async () => {
      const { program, port } = await serve('examples/abort.ts');
      const responses = await send(program, port, '/report', 1, '/report: asking');
      program.signal('SIGTERM');
      const [response] = await responses();
      expect(response).to.deep.include({ status: 503, body: 'shutting down, try again\n' });
      expect(response?.headers['retry-after']).to.equal('1');
      expect(await program.line('/report: aborted', 3000)).to.equal('/report: aborted (deadline); answering 503');
      expect(await program.line('stopped: ', 3000)).to.equal('stopped: drained 1, killed 0');
      await expectExitedByItself(program);
    },
  );

  itAlongside(
    'examples/cluster.ts drains every worker on SIGTERM to the primary, which exits by itself with code 0',
    async () => {
      const program = programs.start('examples/cluster.ts', { PORT: '0', WORKERS: '2', DRAIN_DELAY: '0' });
      await program.count(/^worker \d+: listening on /, 2, 20000);
      program.signal('SIGTERM');
      await program.line('primary: every worker has exited', 10000);
      expect(program.lines.filter((line) => / exited with code 0$/.test(line))).to.have.length(2);
      await expectExitedByItself(program);
    },
  );
});
