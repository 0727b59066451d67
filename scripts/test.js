'use strict';
// `npm test`: the build (dist/, which the examples and the package spec load as users do), the
// type-check of the whole tree, and the suite (mocha in two worker processes, .mocharc.json).
// The type-check starts with the build and goes on beside mocha, which starts once dist/ is
// built: on two cores, a tsc process alone leaves one idle. Its output is held back and shown
// after mocha's summary. Arguments after `npm test --` go to mocha (`npm test -- --grep drain`).
// Exits non-zero when any of the three fails.

const { spawn } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/**
 * Runs `args` with this Node; resolves with its exit status (1 for a signal) and, with `quiet`,
 * its output, else shown as it comes.
 */
function run(name, args, quiet = false) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    let output = '';
    if (quiet) {
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
    }
    child.on('error', (error) => resolve({ status: 1, output: `test: ${name} could not start: ${error.message}\n` }));
    child.on('close', (code, signal) => {
      const failure = code === 0 ? '' : `test: ${name} failed (${signal ?? `exit status ${code}`})\n`;
      resolve({ status: code ?? 1, output: output + failure });
    });
  });
}

async function main() {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  const mocha = require.resolve('mocha/bin/mocha.js', { paths: [root] });
  const typeCheck = run('the type-check (tsc -p tsconfig.json --noEmit)', [tsc, '-p', 'tsconfig.json', '--noEmit'], true);
  const build = await run('the build (scripts/build.js)', [path.join('scripts', 'build.js')]);
  process.stderr.write(build.output);
  const suite = build.status === 0 ? await run('mocha', [mocha, ...process.argv.slice(2)]) : build;
  if (suite !== build) process.stderr.write(suite.output);
  const checked = await typeCheck;
  process.stderr.write(checked.output);
  return [build, suite, checked].find((step) => step.status !== 0)?.status ?? 0;
}

main().then((status) => {
  process.exitCode = status;
});
