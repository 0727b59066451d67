/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same trial plan, so a
 * trial that failed can be replayed with `--seed`. Not for cryptography.
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  between(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
}

/** The seed of trial `index` of a run started with `seed`: trial 0 uses the run's seed itself. */
export function trialSeed(seed: number, index: number): number {
  return (seed + index) >>> 0;
}

/** A fresh seed for a run whose seed was not given. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
