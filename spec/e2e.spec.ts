import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { withDeadline } from './support/sockets';

/**
 * The smallest slice of `npm run e2e` inside `npm test`: one HAProxy trial, idle, with a
 * drainDelay of five check intervals, must lose no request and the old instance must exit by
 * itself with code 0. `.ci/run` runs the whole short e2e after `npm test`.
 */
describe('end to end (one HAProxy trial of npm run e2e)', function () {
  this.timeout(90_000);

  it('loses no request behind HAProxy when an instance shuts down with drainDelay 500', async function () {
    if (!existsSync('/usr/sbin/haproxy')) {
      console.log('      skip: haproxy is not installed (apt-get install haproxy); npm run e2e covers it where it is');
      this.skip();
    }
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', 'e2e/run.ts', '--short', '--only=haproxy', '--mode=idle', '--drain-delay=500'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await withDeadline(
      new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c))),
      80_000,
      'the e2e HAProxy trial to end',
    ).finally(() => child.kill('SIGKILL'));
    expect(output, output).to.match(/check haproxy\/idle: passed/);
    expect(code, output).to.equal(0);
  });
});
