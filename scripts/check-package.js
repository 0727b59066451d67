'use strict';
// `node scripts/check-package.js` (the last step of `npm run check:package`, after the build):
// the package as users receive it.
// 1. The tarball holds only what users need: package.json, README.md, LICENSE and dist/.
// 2. Installing it runs nothing: the packed package.json has no install-time script, and
//    `npm install <tarball>` prints no install-scripts warning.
// 3. The root entry stays small: each file `exports["."]` points at, plus every file of dist/
//    it reaches through relative `require`/`import`, in bytes, against BUDGET_BYTES.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

// 2026-12-02 (commit 3c0c3e6): 57,177 bytes reached by `require('rx-graceful')`, 57,484 by
// `import` (TSDoc comments included: tsconfig.build.json keeps them); the budget was 20 % above.
// Raise it on purpose, in the commit that needs it, saying why.
// Raised 2026-12-02 (commit ad2398a and after): src/node split into seven modules by concern, the
// drain rewritten as step + settle, and TSDoc on every member: 71,816 / 72,123 bytes; 20 % above.
// Raised 2026-12-02 (issue 10): shutdownOn, abortSignal and its request signals, GracefulGroup,
// runCleanup and the option reader, with their TSDoc: 115,492 / 115,991 bytes; 20 % above.
// Raised 2026-12-02 (issue 12): the listener's own module (listener.ts: backlog 0 while the accept
// queue is served), state$ as one shared fold with its broadcast (shared-fold.ts, broadcast.ts,
// in place of RxJS operators the package does not count), the drain taking connections in slices
// and closes in batches, with their TSDoc: 155,499 / 156,100 bytes; 20 % above.
// Raised 2026-12-03 (issue 12): the accept queue's table kept open and read by family, the warm-ups
// (warm-up.ts, node/warm-up.ts, and of the queue's fs calls and parse), the shared `emit`
// (intercept.ts), the registry's id table and idle rounds, with their TSDoc: 187,159 / 187,760
// bytes, after trimming measurements that comments repeated from README and CHANGELOG; 20 % above.
const BUDGET_BYTES = 225_000;

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

// Scripts npm runs, or warns about, when the package is installed.
const installScripts = ['preinstall', 'install', 'postinstall', 'prepare'];

const problems = [];

function npm(args, cwd) {
  // npm_config_* variables set by the `npm run` that started this script would reach the
  // inner npm as configuration: keep only what it needs.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  try {
    return execFileSync('npm', args, {
      cwd,
      env: { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    throw new Error(`\`npm ${args.join(' ')}\` failed in ${cwd}:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
  }
}

function checkContents() {
  // --ignore-scripts: the build has run already; this only lists what `npm pack` would ship.
  const [packed] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], root));
  const files = packed.files.map((file) => file.path).sort();
  const allowed = (file) => ['package.json', 'README.md', 'LICENSE'].includes(file) || file.startsWith('dist/');
  const unexpected = files.filter((file) => !allowed(file));
  if (unexpected.length > 0) problems.push(`the tarball ships files users do not need: ${unexpected.join(', ')}`);
  for (const required of ['package.json', 'README.md', 'LICENSE', 'dist/cjs/index.js', 'dist/esm/index.mjs']) {
    if (!files.includes(required)) problems.push(`the tarball lacks ${required}`);
  }
  console.log(`contents: ${files.length} files, ${packed.size} bytes packed, ${packed.unpackedSize} unpacked`);
}

function checkInstall() {
  const declared = installScripts.filter((name) => pkg.scripts?.[name] !== undefined);
  if (declared.length > 0) {
    problems.push(`package.json declares ${declared.join(', ')}: npm runs or warns about it on install (build in prepack)`);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rx-graceful-check-'));
  try {
    const [packed] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], root));
    const consumer = path.join(work, 'consumer');
    fs.mkdirSync(consumer);
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    const tarball = path.join(work, packed.filename);
    // stderr is where npm writes its warnings: capture it with the output.
    const output = execFileSync(
      'sh',
      ['-c', 'npm install --offline --legacy-peer-deps --no-package-lock "$1" 2>&1', 'sh', tarball],
      {
        cwd: consumer,
        env: Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name))),
        encoding: 'utf8',
      },
    );
    const warnings = output.split('\n').filter((line) => /install-scripts|install script/i.test(line));
    if (warnings.length > 0) problems.push(`installing the tarball warns:\n  ${warnings.join('\n  ')}`);
    console.log(`install: npm install ${packed.filename} printed ${warnings.length} install-script warning lines`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function isFile(file) {
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true;
}

/** Every file of dist/ that `entry` reaches through relative specifiers, itself included. */
function reachable(entry) {
  const seen = new Set();
  const pending = [entry];
  const specifiers = /\brequire\(\s*["']([^"']+)["']\s*\)|\bfrom\s+["']([^"']+)["']|\bimport\s+["']([^"']+)["']/g;
  while (pending.length > 0) {
    const file = pending.pop();
    if (seen.has(file)) continue;
    if (!fs.existsSync(file)) {
      problems.push(`${path.relative(root, file)} is required but missing: run npm run build`);
      continue;
    }
    seen.add(file);
    for (const match of fs.readFileSync(file, 'utf8').matchAll(specifiers)) {
      const specifier = match[1] ?? match[2] ?? match[3];
      if (!specifier.startsWith('.')) continue; // node: built-ins and peers (rxjs) are not ours
      const base = path.resolve(path.dirname(file), specifier);
      const target = [base, `${base}.js`, path.join(base, 'index.js')].find(isFile);
      if (target === undefined) problems.push(`${path.relative(root, file)} requires ${specifier}, which is not in dist/`);
      else if (target.startsWith(dist + path.sep)) pending.push(target);
    }
  }
  return [...seen].sort();
}

function checkSize() {
  const entry = pkg.exports?.['.'];
  const targets = [
    ['require', entry?.require?.default],
    ['import', entry?.import?.default],
  ];
  for (const [condition, target] of targets) {
    if (typeof target !== 'string') {
      problems.push(`package.json exports["."].${condition}.default is not a path`);
      continue;
    }
    const files = reachable(path.join(root, target));
    const bytes = files.reduce((sum, file) => sum + fs.statSync(file).size, 0);
    const gzipped = files.reduce((sum, file) => sum + zlib.gzipSync(fs.readFileSync(file)).length, 0);
    const verdict = bytes <= BUDGET_BYTES ? 'within' : 'OVER';
    console.log(
      `size: ${condition} ${target}: ${files.length} files, ${bytes} bytes (${gzipped} gzipped file by file), ` +
        `${verdict} the budget of ${BUDGET_BYTES} bytes (${((100 * bytes) / BUDGET_BYTES).toFixed(1)} %)`,
    );
    if (bytes > BUDGET_BYTES) problems.push(`the ${condition} entry is ${bytes} bytes, over the budget of ${BUDGET_BYTES}`);
  }
}

try {
  checkContents();
  checkInstall();
  checkSize();
} catch (error) {
  problems.push(error instanceof Error ? error.message : String(error));
}

if (problems.length > 0) {
  for (const problem of problems) console.error(`check-package: ${problem}`);
  process.exitCode = 1;
} else {
  console.log('check-package: OK');
}
