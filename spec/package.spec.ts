import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

// What a user gets from `npm install rx-graceful`: the packed tarball, installed offline in a
// project outside this repository (so nothing resolves through our own node_modules by
// accident), used from CommonJS, from an ES module and from TypeScript under node16.

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/** Runs `command` and resolves with its stdout; a failure's message shows `shown(stdout)` and stderr. */
async function exec(command: string, args: string[], cwd: string, shown = (stdout: string) => stdout): Promise<string> {
  try {
    const { stdout } = await run(command, args, {
      cwd,
      timeout: 90_000,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
    });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`\`${[path.basename(command), ...args].join(' ')}\` failed in ${cwd}:\n${shown(stdout)}\n${stderr}`);
  }
}

// One program type-checks both consumer files: reading and checking @types/node and the package's
// declarations once takes most of its seconds. `--traceResolution` tells, per importing file, which
// declaration file `rx-graceful` resolved to. `--skipDefaultLibCheck` skips checking TypeScript's
// own lib.*.d.ts only: the package's declarations and @types/node are still checked.
const typeCheckOptions = [
  '--module',
  'node16',
  '--moduleResolution',
  'node16',
  '--strict',
  '--noEmit',
  '--types',
  'node',
  '--skipDefaultLibCheck',
  '--traceResolution',
];

/** tsc's diagnostics, which follow its resolution trace (about a megabyte); the trace's end if there are none. */
function diagnosticsOf(stdout: string): string {
  const first = stdout.search(/^.+\(\d+,\d+\): error TS\d+/m);
  return first >= 0 ? stdout.slice(first) : stdout.slice(-2000);
}

/** Where `rx-graceful` resolved to from each importing file (by base name), read off tsc's `--traceResolution` output. */
function resolutionsOf(trace: string): Map<string, string> {
  const resolved = new Map<string, string>();
  let from: string | undefined;
  for (const line of trace.split('\n')) {
    const start = /^======== Resolving module 'rx-graceful' from '(.+)'\. ========$/.exec(line);
    if (start?.[1] !== undefined) from = path.basename(start[1]);
    const end = /^======== Module name 'rx-graceful' was successfully resolved to '([^']+)'/.exec(line);
    if (end?.[1] !== undefined && from !== undefined) {
      resolved.set(from, end[1]);
      from = undefined;
    }
  }
  return resolved;
}

// The same source type-checks as a .cts (resolved through `require`) and an .mts (through `import`).
const typedConsumer = `import * as http from 'node:http';
import { GracefulServer, NotReadyError, fromSignals } from 'rx-graceful';
import type { GracefulOptions, ServerState, ShutdownResult } from 'rx-graceful';

const options: GracefulOptions = { timeout: 1000 };
const graceful = new GracefulServer(http.createServer(), options);
graceful.state$.subscribe((state: ServerState) => console.log(state.phase, state.open));
export const result: Promise<ShutdownResult> = graceful.wait();
export const quitting = (error: unknown): boolean => error instanceof NotReadyError && error.quitting;
export const signal$ = fromSignals('SIGTERM');
// @ts-expect-error timeout is a number of ms: this line proves the types are real, not any
new GracefulServer(http.createServer(), { timeout: 'soon' });
`;

const cjsConsumer = `const { GracefulServer, NotReadyError, fromSignals } = require('rx-graceful');
console.log(JSON.stringify({
  GracefulServer: typeof GracefulServer,
  NotReadyError: typeof NotReadyError,
  fromSignals: typeof fromSignals,
  resolved: require.resolve('rx-graceful'),
}));
`;

// The optional integrations, from a project that installed neither prom-client nor @opentelemetry/api.
const optionalConsumer = `const absent = (name) => { try { require.resolve(name); return false; } catch { return true; } };
const failure = (subpath) => { try { require(subpath); return null; } catch (error) { return error.code + ': ' + error.message.split('\\n')[0]; } };
const root = require('rx-graceful');
const loadedByRoot = Object.keys(require.cache).filter((file) => /prom-client|opentelemetry/.test(file));
console.log(JSON.stringify({
  peersAbsent: absent('prom-client') && absent('@opentelemetry/api'),
  root: typeof root.GracefulServer,
  loadedByRoot,
  testing: typeof require('rx-graceful/testing').VirtualServer,
  prometheus: failure('rx-graceful/prometheus'),
  opentelemetry: failure('rx-graceful/opentelemetry'),
}));
`;

const esmConsumer = `import { createRequire } from 'node:module';
import { GracefulServer, NotReadyError, fromSignals } from 'rx-graceful';
import * as namespace from 'rx-graceful';

const require = createRequire(import.meta.url);
const cjs = require('rx-graceful');
console.log(JSON.stringify({
  GracefulServer: typeof GracefulServer,
  NotReadyError: typeof NotReadyError,
  fromSignals: typeof fromSignals,
  sameClasses: GracefulServer === cjs.GracefulServer && NotReadyError === cjs.NotReadyError,
  esmNames: Object.keys(namespace).sort(),
  cjsNames: Object.keys(cjs).filter((name) => name !== '__esModule').sort(),
  resolved: import.meta.resolve('rx-graceful'),
}));
`;

/** What consumer.mjs prints. */
interface EsmReport {
  GracefulServer: string;
  NotReadyError: string;
  fromSignals: string;
  sameClasses: boolean;
  esmNames: string[];
  cjsNames: string[];
  resolved: string;
}

describe('the npm package', function () {
  this.timeout(120_000);

  let work = '';
  let consumer = '';
  let installed = '';
  /** The type-check of consumer.cts and consumer.mts, started by `before`: where each resolved `rx-graceful`. */
  let typeCheck: Promise<Map<string, string>> | undefined;

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'rx-graceful-package-'));
    // dist/ as `npm test` (or `npm run build`) built it: `--ignore-scripts` skips the `prepack`
    // build, which would rewrite dist/ under the specs that load it in the other mocha worker.
    if (!existsSync(path.join(root, 'dist', 'cjs', 'index.js'))) throw new Error('no dist/: run `npm run build` first');
    await exec('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], root);
    const tarballs = (await readdir(work)).filter((name) => name.endsWith('.tgz'));
    expect(tarballs, `npm pack wrote one tarball into ${work}`).to.have.lengthOf(1);
    const tarball = path.join(work, tarballs[0] ?? '');

    consumer = path.join(work, 'consumer');
    await mkdir(consumer);
    await writeFile(
      path.join(consumer, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2),
    );
    // Offline and without peers: rxjs and @types/node come from this repository by symlink,
    // added after the install (npm would prune them as extraneous otherwise).
    await exec(
      'npm',
      ['install', '--offline', '--no-audit', '--no-fund', '--legacy-peer-deps', '--no-package-lock', tarball],
      consumer,
    );
    installed = path.join(consumer, 'node_modules', 'rx-graceful');
    await mkdir(path.join(consumer, 'node_modules', '@types'), { recursive: true });
    await symlink(path.join(root, 'node_modules', 'rxjs'), path.join(consumer, 'node_modules', 'rxjs'), 'dir');
    await symlink(
      path.join(root, 'node_modules', '@types', 'node'),
      path.join(consumer, 'node_modules', '@types', 'node'),
      'dir',
    );

    await writeFile(path.join(consumer, 'consumer.cjs'), cjsConsumer);
    await writeFile(path.join(consumer, 'consumer.mjs'), esmConsumer);
    await writeFile(path.join(consumer, 'optional.cjs'), optionalConsumer);
    await writeFile(path.join(consumer, 'consumer.cts'), typedConsumer);
    await writeFile(path.join(consumer, 'consumer.mts'), typedConsumer);
    // It takes seconds: it runs while the specs before its own do. A failure (a type error in either
    // file) is the rejection those specs await; the empty catch only keeps it from counting as
    // unhandled should they not run (mocha --grep).
    const args = [tsc, ...typeCheckOptions, 'consumer.cts', 'consumer.mts'];
    typeCheck = exec(process.execPath, args, consumer, diagnosticsOf).then(resolutionsOf);
    typeCheck.catch(() => undefined);
  });

  after(async function () {
    if (typeCheck !== undefined) await Promise.allSettled([typeCheck]); // tsc reads the directory about to be removed
    if (work !== '') await rm(work, { recursive: true, force: true });
  });

  /** Where `rx-graceful` resolved to from `file` in the type-check. */
  async function typeCheckedResolution(file: string): Promise<string | undefined> {
    if (typeCheck === undefined) throw new Error('the type-check did not start (see the before hook)');
    return (await typeCheck).get(file);
  }

  it('ships the compiled CommonJS and ES entries with their declarations, not the sources', function () {
    for (const file of ['dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/esm/index.mjs', 'dist/esm/index.d.mts']) {
      expect(existsSync(path.join(installed, file)), `${file} in the installed package`).to.equal(true);
    }
    expect(existsSync(path.join(installed, 'src')), 'src/ in the installed package').to.equal(false);
    expect(existsSync(path.join(installed, 'spec')), 'spec/ in the installed package').to.equal(false);
  });

  it('loads its root and rx-graceful/testing with neither prom-client nor @opentelemetry/api installed; the metrics subpaths name what they need', async function () {
    const output = JSON.parse(await exec(process.execPath, ['optional.cjs'], consumer)) as Record<string, unknown>;
    expect(output).to.deep.equal({
      peersAbsent: true,
      root: 'function',
      loadedByRoot: [],
      testing: 'function',
      prometheus: "MODULE_NOT_FOUND: Cannot find module 'prom-client'",
      opentelemetry: "MODULE_NOT_FOUND: Cannot find module '@opentelemetry/api'",
    });
  });

  it('can be required from CommonJS as rx-graceful', async function () {
    const output = JSON.parse(await exec(process.execPath, ['consumer.cjs'], consumer)) as unknown;
    expect(output).to.deep.equal({
      GracefulServer: 'function',
      NotReadyError: 'function',
      fromSignals: 'function',
      resolved: path.join(installed, 'dist', 'cjs', 'index.js'),
    });
  });

  it('can be imported with static named imports from an ES module, sharing the CommonJS classes', async function () {
    const output = JSON.parse(await exec(process.execPath, ['consumer.mjs'], consumer)) as EsmReport;
    expect(output.GracefulServer).to.equal('function');
    expect(output.NotReadyError).to.equal('function');
    expect(output.fromSignals).to.equal('function');
    expect(output.sameClasses, 'import and require give the same classes').to.equal(true);
    expect(output.esmNames, 'the ES entry exports every name of the CommonJS entry').to.deep.equal(output.cjsNames);
    expect(output.resolved).to.match(/\/dist\/esm\/index\.mjs$/);
  });

  it('type-checks from a .cts file under moduleResolution node16, with the CommonJS declarations', async function () {
    expect(await typeCheckedResolution('consumer.cts')).to.equal(path.join(installed, 'dist', 'cjs', 'index.d.ts'));
  });

  it('type-checks from a .mts file under moduleResolution node16, with the ES declarations', async function () {
    expect(await typeCheckedResolution('consumer.mts')).to.equal(path.join(installed, 'dist', 'esm', 'index.d.mts'));
  });
});
