/**
 * Request loops, the one load generator of the harness (autocannon aside): many loops that each
 * send one request at a time through their own requester (an HTTP/1.1 keep-alive connection, an
 * HTTP/2 session shared by a group of loops, Node's global `fetch`), and a record of what became
 * of every request. A loop stops on `ECONNREFUSED` (a real client would go to another instance),
 * at the deadline, when stopped, or after a bounded number of requests or of failed connects.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { testCertificate } from './certificate';
import { h2Requester, SessionGroup } from './h2-client';
import { http1Requester } from './http1-client';
import type { Ended, LoopsArgs, LoopsReport } from './protocol';
import { checkWorkload, seeded } from './workload';

/** A whole response as a client read it; `echoedId` is its `x-request-id` header. */
export type WholeResponse = { readonly status: number; readonly echoedId: string | undefined; readonly body: Buffer };

/** Why a whole response is not the right one for request `id`, or undefined if it is. */
export type Verify = (id: string, response: WholeResponse) => string | undefined;

/**
 * What became of one request: completed; refused (`ECONNREFUSED`, nothing sent); failed, with
 * whether its bytes were `sent` and whether it was the first on its connection (`fresh`); or
 * answered by a whole response that is `wrong`.
 */
export type Outcome =
  | { readonly kind: 'completed' }
  | { readonly kind: 'refused' }
  | { readonly kind: 'failed' | 'wrong'; readonly reason: string; readonly sent: boolean; readonly fresh: boolean };

/** One loop's way of sending request `id` with a deadline of `timeoutMs`, and of letting go of what it holds. */
export type Requester = { request(id: string, timeoutMs: number): Promise<Outcome>; close(): void };

/** No loop sends more than this many requests, whatever the deadline. */
const maxRequestsPerLoop = 100_000;
/** A loop gives up after this many requests that failed before they were sent (connects that were not refusals). */
const maxUnsent = 20;
const connectTimeoutMs = 5_000;
/** HTTP/2: this many loops share one session. */
const perSession = 10;

const statusOk: Verify = (_id, { status }) => (status === 200 ? undefined : `status ${status}`);

/** Running loops: every request that has ended so far, and their report once all have ended. */
export interface Loops {
  readonly ended: readonly Ended[];
  /** Resolves once `count` requests have completed; rejects after `timeoutMs`, saying how many did. */
  whenCompleted(count: number, timeoutMs: number): Promise<void>;
  /** True once every loop has ended by itself (refused, deadline), false if some still run after `timeoutMs`. */
  endedWithin(timeoutMs: number): Promise<boolean>;
  /** Ends each loop after its request in flight. */
  stop(): void;
  readonly report: Promise<LoopsReport>;
}

/** Starts the loops `args` describes, against 127.0.0.1. */
export function startLoops(args: LoopsArgs): Loops {
  const deadline = Date.now() + args.deadlineMs;
  const verify = args.workload === true ? checkWorkload : statusOk;
  const ca = testCertificate().cert;
  const h2 = args.protocol === 'h2' || args.protocol === 'h2c';
  const groups = h2 ? Math.ceil(args.clients / perSession) : 0;
  const h2Target = args.protocol === 'h2' ? { port: args.port, ca, connectTimeoutMs } : { port: args.port, connectTimeoutMs };
  const sessions = Array.from({ length: groups }, () => new SessionGroup(h2Target));
  const connections: (() => number)[] = sessions.map((group) => () => group.opened);
  const requester = (client: number): Requester => {
    if (h2) return h2Requester(sessions[Math.floor(client / perSession)] as SessionGroup, verify);
    if (args.protocol === 'fetch') return fetchRequester(`http://127.0.0.1:${args.port}/`);
    const target = args.protocol === 'https' ? { port: args.port, ca } : { port: args.port };
    const http1 = http1Requester(target, connectTimeoutMs, verify);
    connections.push(() => http1.connects);
    return http1;
  };

  const ended: Ended[] = [];
  let began = 0;
  let completed = 0;
  let stopped = false;
  /** One loop; resolves true if the deadline ended it. */
  const loop = async (client: number): Promise<boolean> => {
    const own = requester(client);
    const think = seeded(((args.seed ?? 0) ^ Math.imul(client + 1, 0x9e3779b1)) >>> 0);
    let unsent = 0;
    try {
      for (let seq = 0; seq < maxRequestsPerLoop && !stopped; seq++) {
        const at = Date.now();
        if (at >= deadline) return true;
        const id = `${client}-${seq}`;
        began++;
        const outcome = await own.request(id, Math.min(deadline - at, args.requestTimeoutMs ?? Infinity));
        ended.push({ id, at, endedAt: Date.now(), outcome });
        if (outcome.kind === 'completed') completed++;
        else if (outcome.kind === 'refused' || (!outcome.sent && ++unsent >= maxUnsent)) return false;
        if (args.thinkMaxMs !== undefined && args.thinkMaxMs > 0) await sleep(think(0, args.thinkMaxMs));
      }
      return false;
    } finally {
      own.close();
    }
  };
  const report = Promise.all(Array.from({ length: args.clients }, (_, client) => loop(client))).then((atDeadline) => {
    for (const group of sessions) group.close();
    const opened = connections.reduce((total, count) => total + count(), 0);
    return { began, ended, connections: opened, atDeadline: atDeadline.filter(Boolean).length };
  });

  return {
    ended,
    report,
    stop: () => (stopped = true),
    endedWithin: (timeoutMs) => Promise.race([report.then(() => true), sleep(timeoutMs, false, { ref: false })]),
    async whenCompleted(count, timeoutMs) {
      const until = Date.now() + timeoutMs;
      while (completed < count) {
        if (Date.now() >= until) throw new Error(`load: only ${completed} of ${count} requests completed within ${timeoutMs} ms`);
        await sleep(10);
      }
    },
  };
}

/** A loop of Node's global `fetch` (undici's pooled keep-alive agent), reading each whole body, as an application does. */
function fetchRequester(url: string): Requester {
  return {
    async request(_id, timeoutMs) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        await response.arrayBuffer();
        if (response.status === 200) return { kind: 'completed' };
        return { kind: 'wrong', reason: `status ${response.status}`, sent: true, fresh: false };
      } catch (error) {
        const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
        if (cause?.code === 'ECONNREFUSED') return { kind: 'refused' };
        // "UND_ERR_SOCKET (other side closed)", "TimeoutError: …": addresses left out, so that reasons group.
        const strip = (text: string): string => text.replace(/\s*\d+\.\d+\.\d+\.\d+:\d+/g, '').trim();
        const failed = (reason: string): Outcome => ({ kind: 'failed', reason, sent: true, fresh: false });
        if (cause === undefined) return failed(error instanceof Error ? `${error.name}: ${strip(error.message)}` : String(error));
        const code = typeof cause.code === 'string' ? cause.code : 'no code';
        return failed(typeof cause.message === 'string' ? `${code} (${strip(cause.message)})` : code);
      }
    },
    close: () => undefined,
  };
}
