/**
 * The stress workload, computed on both sides from the request id alone: the handler's latency
 * (0 to 200 ms) and the body (its length and every byte), so that a client can verify a response
 * without asking the server. And the seeded generator that draws the moments and think times.
 */
import type { Verify } from './loops';

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

/** Why a whole response is not the right one for request `id`, or undefined if it is. */
export const checkWorkload: Verify = (id, { status, echoedId, body }) => {
  if (status !== 200) return `status ${status}`;
  if (echoedId !== id) return `x-request-id ${String(echoedId)}`;
  const expected = bodyFor(id);
  if (body.length !== expected.length) return `body length ${body.length}, expected ${expected.length}`;
  if (!body.equals(expected)) return 'body content differs';
  return undefined;
};

/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same trial plan, so a
 * trial that failed can be replayed with `--seed`. Not for cryptography. It draws integers in
 * [min, max], both included.
 */
export function seeded(seed: number): (min: number, max: number) => number {
  let state = seed >>> 0;
  return (min, max) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return min + Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * (max - min + 1));
  };
}
