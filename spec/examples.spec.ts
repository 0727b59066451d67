import { expect } from 'chai';
import { execFile } from 'node:child_process';

/** Runs an example as a user would (ts-node), and resolves with its output once it exits by itself. */
function runExample(file: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', 'ts-node/register', file],
      { timeout: 20000, env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' } },
      (error, stdout) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout }),
    );
  });
}

describe('the examples run and exit by themselves', function () {
  this.timeout(30000);

  it('examples/basic.ts prints OK (the seed example)', async () => {
    const { code, stdout } = await runExample('examples/basic.ts');
    expect(code).to.equal(0);
    expect(stdout.trim().split('\n')).to.deep.equal(['OK']);
  });

  it('examples/demo.ts (npm start) shows the timeline, loses nothing and ends with OK', async () => {
    const { code, stdout } = await runExample('examples/demo.ts');
    expect(code).to.equal(0);
    expect(stdout)
      .to.match(/draining/)
      .and.match(/lost: 0/);
    expect(stdout.trim().split('\n').pop()).to.equal('OK');
  });

  it('examples/websocket.ts closes every WebSocket with 1001', async () => {
    const { code, stdout } = await runExample('examples/websocket.ts');
    expect(code).to.equal(0);
    expect(stdout.match(/closed with 1001/g)).to.have.length(3);
    expect(stdout).to.match(/3 WebSockets, killed 0/);
  });

  for (const framework of ['express', 'fastify']) {
    it(`examples/${framework}.ts finishes every request in flight`, async () => {
      const { code, stdout } = await runExample(`examples/${framework}.ts`);
      expect(code).to.equal(0);
      expect(stdout.match(/client got 200 connection: close/g)).to.have.length(3);
      expect(stdout).to.match(/drained: 3 requests finished, killed 0/);
    });
  }
});
