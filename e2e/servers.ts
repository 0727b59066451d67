/**
 * The orchestrator's side of e2e/server.ts: start one, learn its port, and after its SIGTERM
 * learn how it ended and what its `wait()` said.
 */
import type { ShutdownResult } from '../src';
import { join } from 'node:path';
import { startTs, type Child } from '../harness/child';
import type { OldServer } from './report';
import type { ServerConfig } from './server';

/** A ts-node child needs this long to start on a busy 2-core machine, with room to spare (ms). */
export const startupMs = 30_000;

/** A started server process and the port it listens on (127.0.0.1). */
export interface RunningServer {
  readonly child: Child;
  readonly port: number;
}

/** Starts e2e/server.ts with `config` and resolves once it listens. */
export async function startServer(name: string, config: ServerConfig): Promise<RunningServer> {
  const child = startTs(name, join(__dirname, 'server.ts'), { args: [JSON.stringify(config)], ipc: false });
  try {
    const { match } = await child.waitForLine(/^listening (\d+)$/, 'listening', startupMs);
    return { child, port: Number(match[1]) };
  } catch (error) {
    await child.kill();
    throw error;
  }
}

/**
 * Waits (at most `timeoutMs`) for a server that was sent SIGTERM at `signalledAt` (Date.now())
 * to exit, reads all it printed, and kills it if it is still running.
 */
export async function awaitServerExit(server: RunningServer, signalledAt: number, timeoutMs: number): Promise<OldServer> {
  const exit = await server.child.exits(Math.max(0, signalledAt + timeoutMs - Date.now()));
  const exitMs = server.child.exitedAt === undefined ? undefined : server.child.exitedAt - signalledAt;
  if (exit === undefined) await server.child.kill();
  else await server.child.outputClosed(5_000);
  return {
    pid: server.child.pid,
    exit,
    exitMs,
    result: printedResult(server.child),
    waitedMs: timeoutMs,
    lastLines: server.child.tail(10),
  };
}

/** The `done <json>` line of a server process, parsed, if it printed one. */
export function printedResult(child: Child): ShutdownResult | undefined {
  const line = child.lines.find((candidate) => candidate.text.startsWith('done '));
  return line === undefined ? undefined : (JSON.parse(line.text.slice('done '.length)) as ShutdownResult);
}
