import type { SchedulerLike } from 'rxjs';
import { describeValue } from './errors';

/** Node's timers overflow past 2^31 - 1 ms (about 24.8 days) and would fire at once. */
export const MAX_TIMER = 2 ** 31 - 1;

/**
 * Checks the options object given to `call` (as a user wrote it, e.g. `new GracefulGroup(members,
 * options)`) and reads its values; every `TypeError` names the call, the option and what was
 * expected.
 *
 * @example
 * const read = new OptionReader('new GracefulGroup(members, options)', options, ['timeout', 'scheduler']);
 * const timeout = read.duration('timeout', 0);
 */
export class OptionReader {
  private readonly values: Readonly<Record<string, unknown>>;

  /** Throws a `TypeError` if `options` is not an object, or names an option not in `known`. */
  constructor(
    private readonly call: string,
    options: unknown,
    known: readonly string[],
  ) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`rx-graceful: ${call}: options must be an object, got ${describeValue(options)}`);
    }
    for (const name of Object.keys(options)) {
      if (!known.includes(name)) throw new TypeError(`rx-graceful: ${call}: ${unknownOption(name, known)}`);
    }
    this.values = options as Record<string, unknown>;
  }

  /** A number of milliseconds from 0 to `max`; `fallback` when absent. */
  duration(name: string, fallback: number, max = MAX_TIMER): number {
    const value = this.values[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
      throw this.invalid(name, `a finite number of milliseconds from 0 to ${max}`);
    }
    return value;
  }

  /** A boolean; false when absent. */
  flag(name: string): boolean {
    const value = this.values[name];
    if (value === undefined) return false;
    if (typeof value !== 'boolean') throw this.invalid(name, 'a boolean');
    return value;
  }

  /** An RxJS `SchedulerLike`; `fallback` when absent. */
  scheduler(name: string, fallback: SchedulerLike): SchedulerLike {
    const value = this.values[name] === undefined ? fallback : this.values[name];
    if (!isScheduler(value)) throw this.invalid(name, 'an RxJS SchedulerLike');
    return value;
  }

  /** A function, or undefined when absent (its signature is the caller's to state). */
  callback(name: string): unknown {
    const value = this.values[name];
    if (value !== undefined && typeof value !== 'function') throw this.invalid(name, 'a function');
    return value;
  }

  private invalid(name: string, expected: string): TypeError {
    return new TypeError(
      `rx-graceful: ${this.call}: options.${name} must be ${expected}, got ${describeValue(this.values[name])}`,
    );
  }
}

function isScheduler(value: unknown): value is SchedulerLike {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof Reflect.get(value, 'now') === 'function' &&
    typeof Reflect.get(value, 'schedule') === 'function'
  );
}

/** Says that `name` is no option, suggesting the closest known one when it is close. */
function unknownOption(name: string, known: readonly string[]): string {
  let closest: string | undefined;
  let best = Infinity;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < best) [closest, best] = [candidate, distance];
  }
  const suggestion =
    closest !== undefined && best <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean "${closest}"?)` : '';
  return `unknown option ${JSON.stringify(name)}${suggestion}; the options are ${known.join(', ')}`;
}

/** Levenshtein distance: the fewest single-character edits that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}
