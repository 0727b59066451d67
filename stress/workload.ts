/**
 * What the server does for a request id and what the client must get back, computed on both
 * sides from the id alone: the handler's latency (0 to 200 ms) and the body (its length and
 * every byte), so that the client can verify a response without asking the server.
 */
import type { Verify } from '../harness/request-loops';

/** How the server answers one request. */
export interface Answer {
  /** ms the handler waits before it answers; 0 answers in the same tick. */
  readonly delayMs: number;
  readonly body: Buffer;
}

/** FNV-1a, 32 bits: a cheap, well-spread hash of the id. */
function hash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The latency mix: 40 % answer at once, 30 % within 1–20 ms, 20 % within 21–100 ms, 10 % within
 * 101–200 ms (a service whose handlers mostly hit a cache and sometimes a slow backend).
 */
export function delayFor(id: string): number {
  const h = hash(id);
  const bucket = h % 10;
  const spread = (h >>> 8) % 100;
  if (bucket < 4) return 0;
  if (bucket < 7) return 1 + (spread % 20);
  if (bucket < 9) return 21 + (spread % 80);
  return 101 + spread;
}

/**
 * The body: the id repeated up to a length from 16 B to 16 KiB (one in ten above 1 KiB, so that
 * some responses span several TCP segments or HTTP/2 DATA frames and can be cut half-way).
 */
export function bodyFor(id: string): Buffer {
  const h = hash(`${id}#body`);
  const length = h % 10 === 0 ? 1024 + ((h >>> 4) % 15_361) : 16 + ((h >>> 4) % 497);
  const unit = `${id};`;
  return Buffer.from(unit.repeat(Math.ceil(length / unit.length)).slice(0, length), 'latin1');
}

/** The answer to request `id`: its delay and body. */
export function answerFor(id: string): Answer {
  return { delayMs: delayFor(id), body: bodyFor(id) };
}

/** Why a whole response is not the right one for request `id`, or undefined if it is. */
export const checkResponse: Verify = (id, { status, echoedId, body }) => {
  if (status !== 200) return `status ${status}`;
  if (echoedId !== id) return `x-request-id ${String(echoedId)}`;
  const expected = bodyFor(id);
  if (body.length !== expected.length) return `body length ${body.length}, expected ${expected.length}`;
  if (!body.equals(expected)) return 'body content differs';
  return undefined;
};
