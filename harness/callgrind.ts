/**
 * A server process of the harness (harness/server.ts) run under valgrind's callgrind, for counting
 * the instructions it executes in a window of its life: a server that serves requests at full
 * speed with no instrumentation until the orchestrator turns counting on, then counts every
 * instruction of the process (V8's JIT code, Node, libuv, the kernel calls' user side) until the
 * orchestrator dumps the count. V8 runs deterministic (`--single-threaded --predictable
 * --predictable-gc-schedule`: no background compiler or GC thread, a GC schedule set by
 * allocation, not by time), so that the same requests give nearly the same count (two windows of one process agree to 0.2–0.4 %).
 *
 * The orchestrator turns counting on with `callgrind_control --instr=on` (through vgdb, which
 * also reaches a process blocked in `epoll_wait`); the server itself opens and closes each window
 * where it must (harness/server.ts's `window`, `spin`), by native calls on whose entry callgrind
 * zeroes and dumps its counts. And the orchestrator sends the requests itself (`KeepAliveClient`).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { start, type ServerChild } from './child';
import { openHttp1, type Http1Connection } from './http1-client';
import type { ServerConfig } from './protocol';

const valgrind = '/usr/bin/valgrind';
const root = path.join(__dirname, '..');
/**
 * V8 deterministic: one thread, no time-driven heuristics, GC at allocation-driven points; and
 * every optimization and deoptimization printed, so that the orchestrator sees when the JIT has
 * settled (`jitEvents`).
 */
const deterministicV8 = ['--single-threaded', '--predictable', '--predictable-gc-schedule', '--trace-opt', '--trace-deopt'];
const jitEvent = /completed (?:compiling|optimizing)|bailout/;
/** Node loads the transpiled server under valgrind (a few seconds; ts-node's compiler there took ~25 s). */
const startupMs = 120_000;
const controlMs = 60_000;

/**
 * Writes harness/ and src/ as JavaScript under `outDir` (inside the repository, so that
 * node_modules resolves), as ts-node's transpile-only mode would compile them on the fly: the
 * server then starts under valgrind without loading TypeScript's compiler, whose few seconds of
 * work would take half a minute there, and whose heap every GC of the window would walk.
 */
export function transpileServer(outDir: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the compiler, loaded only by the instrument's orchestrator
  const ts = require('typescript') as typeof import('typescript');
  const compilerOptions = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const file = path.join(dir, entry.name);
      return entry.isDirectory() ? walk(file) : file.endsWith('.ts') ? [file] : [];
    });
  for (const file of [...walk(path.join(root, 'harness')), ...walk(path.join(root, 'src'))]) {
    const js = ts.transpileModule(fs.readFileSync(file, 'utf8'), { compilerOptions, fileName: file }).outputText;
    const target = path.join(outDir, path.relative(root, file)).replace(/\.ts$/, '.js');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, js);
  }
  return path.join(outDir, 'harness', 'server.js');
}

/** True when valgrind is installed: without it, bench A has no instruction table. */
export function callgrindAvailable(): boolean {
  return fs.existsSync(valgrind);
}

/** A server process under callgrind, counting nothing yet. */
export class CallgrindServer {
  private dumps = 0;

  private constructor(
    readonly child: ServerChild,
    readonly port: number,
    private readonly outFile: string,
    /** Where valgrind makes its FIFOs for vgdb: beside the counts, so that `kill()` removes them too. */
    private readonly vgdbPrefix: string,
  ) {}

  /**
   * Starts `serverJs` (transpileServer's) for `config` under callgrind, writing its counts in
   * `dir`, and resolves once it listens.
   */
  static async start(
    serverJs: string,
    config: ServerConfig,
    dir: string,
    nodeFlags: readonly string[] = [],
  ): Promise<CallgrindServer> {
    fs.mkdirSync(dir, { recursive: true });
    const tag = `${config.system}-${process.hrtime.bigint()}`;
    const outFile = path.join(dir, `callgrind.${tag}`);
    // valgrind leaves its FIFOs behind when it is killed; by default they are in /tmp.
    const vgdbPrefix = path.join(dir, `vgdb.${tag}`);
    const args = [
      '--tool=callgrind',
      `--vgdb-prefix=${vgdbPrefix}`,
      '--instr-atstart=no',
      // The server's windows (harness/server.ts's `openWindow`, `closeWindow`).
      '--zero-before=node::ResourceUsage*',
      '--dump-before=node::os::GetUptime*',
      `--callgrind-out-file=${outFile}`,
      `--log-file=${path.join(dir, `valgrind.${tag}.log`)}`,
      process.execPath,
      ...deterministicV8,
      ...nodeFlags,
      serverJs,
      JSON.stringify(config),
    ];
    const child: ServerChild = start(`server ${config.system} (callgrind)`, valgrind, { args, ipc: true });
    try {
      const ready = await child.next('ready', startupMs);
      return new CallgrindServer(child, ready.port, outFile, vgdbPrefix);
    } catch (error) {
      await child.kill();
      throw error;
    }
  }

  /** The optimizations and deoptimizations V8 has printed so far. */
  jitEvents(): number {
    return this.child.lines.reduce((count, line) => count + Number(jitEvent.test(line.text)), 0);
  }

  /** Counting on from now (the first call re-translates the code with instrumentation; nothing is counted for that). */
  async instrument(): Promise<void> {
    await this.control('--instr=on');
  }

  /**
   * The instructions counted in the server's next window (its calls `window` and `spin` open and
   * close one), from callgrind's dump; the dump is kept as `keepAs` (for callgrind_annotate), else
   * removed.
   */
  windowInstructions(keepAs?: string): number {
    const file = `${this.outFile}.${++this.dumps}`;
    const text = fs.readFileSync(file, 'utf8');
    if (keepAs === undefined) fs.rmSync(file);
    else fs.renameSync(file, keepAs);
    const totals = /^totals: (\d+)/m.exec(text);
    if (totals === null) throw new Error(`${file}: no totals line in callgrind's dump`);
    return Number(totals[1]);
  }

  /** Kills the server and valgrind (one process), and removes what callgrind and valgrind wrote. */
  async kill(): Promise<void> {
    await this.child.kill();
    const dir = path.dirname(this.outFile);
    const tag = path.basename(this.outFile).slice('callgrind.'.length);
    for (const name of fs.readdirSync(dir)) if (name.includes(tag)) fs.rmSync(path.join(dir, name), { force: true });
  }

  private control(command: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const args = [`--vgdb-prefix=${this.vgdbPrefix}`, command, String(this.child.pid)];
      execFile('callgrind_control', args, { timeout: controlMs }, (error, stdout, stderr) => {
        if (error) reject(new Error(`callgrind_control ${command} ${this.child.pid}: ${error.message} ${stdout}${stderr}`));
        else resolve();
      });
    });
  }
}

/**
 * Keep-alive connections to 127.0.0.1:`port` that send exact numbers of requests, one request at
 * a time on each connection. Every request waits at most `requestTimeoutMs`; the first failure or
 * non-200 rejects.
 */
export class KeepAliveClient {
  private constructor(
    private readonly connections: readonly Http1Connection[],
    private readonly requestTimeoutMs: number,
  ) {}

  /** Opens `count` connections (one at a time). */
  static async open(port: number, count: number, requestTimeoutMs = 30_000): Promise<KeepAliveClient> {
    const opened: Http1Connection[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const outcome = await openHttp1({ port }, requestTimeoutMs);
        if (outcome.kind !== 'open') throw new Error(`connect: ${outcome.kind === 'failed' ? outcome.reason : 'refused'}`);
        opened.push(outcome.connection);
      }
    } catch (error) {
      for (const connection of opened) connection.destroy('failed');
      throw error;
    }
    return new KeepAliveClient(opened, requestTimeoutMs);
  }

  /** Sends exactly `count` requests over the connections, and resolves once every response has arrived. */
  async send(count: number): Promise<void> {
    await this.sendWhile(count, () => true);
  }

  /** Sends requests until `until` has settled, and resolves (or rejects) as it does; rejects after `max` requests. */
  async sendUntil<T>(until: Promise<T>, max: number): Promise<T> {
    const state = { settled: false };
    const settling = until.finally(() => (state.settled = true));
    settling.catch(() => undefined); // awaited below; a failed send must not leave it unhandled
    await this.sendWhile(max, () => !state.settled);
    if (!state.settled) throw new Error(`the server's window did not end within ${max} requests`);
    return settling;
  }

  /** Sends at most `count` requests, each only while `more()`; resolves with the number sent. */
  private async sendWhile(count: number, more: () => boolean): Promise<number> {
    let left = count;
    const loop = async (connection: Http1Connection): Promise<void> => {
      while (left > 0 && more()) {
        left--;
        const result = await connection.request('a', this.requestTimeoutMs);
        if (result.kind !== 'response' || result.status !== 200)
          throw new Error(`request: ${result.kind === 'response' ? `status ${result.status}` : result.reason}`);
      }
    };
    await Promise.all(this.connections.map(loop));
    return count - left;
  }

  close(): void {
    for (const connection of this.connections) connection.destroy('done');
  }
}
