'use strict';
// `npm test`: the build (dist/, which the examples and the package spec load as users do) and the
// type-check of the whole tree run side by side, since each is one tsc process and the machine
// has two cores; then mocha runs the suite (.mocharc.json: two worker processes). Arguments after
// `npm test --` go to mocha (`npm test -- --grep drain`). Exits with the first failure's status.

const { spawn } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/** Runs `args` with this Node, output shown as it comes; resolves with the exit status (1 for a signal). */
function run(name, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
    child.on('error', (error) => {
      process.stderr.write(`test: ${name} could not start: ${error.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      if (code !== 0) process.stderr.write(`test: ${name} failed (${signal ?? `exit status ${code}`})\n`);
      resolve(code ?? 1);
    });
  });
}

async function main() {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  const mocha = require.resolve('mocha/bin/mocha.js', { paths: [root] });
  const before = await Promise.all([
    run('the build (scripts/build.js)', [path.join(root, 'scripts', 'build.js')]),
    run('the type-check (tsc -p tsconfig.json --noEmit)', [tsc, '-p', path.join(root, 'tsconfig.json'), '--noEmit']),
  ]);
  const failed = before.find((status) => status !== 0);
  if (failed !== undefined) return failed;
  return run('mocha', [mocha, ...process.argv.slice(2)]);
}

main().then((status) => {
  process.exitCode = status;
});
