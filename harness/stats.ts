/** Median and range over rounds, and ratios to a baseline measured in the same round. */

/** The median, range and count of the values of some rounds. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  /** Rounds that produced a value. */
  n: number;
}

/** The summary of the finite values, or null when there is none. */
export function summarize(values: readonly (number | null)[]): Summary | null {
  const present = values.filter((value): value is number => value !== null && Number.isFinite(value)).sort((a, b) => a - b);
  if (present.length === 0) return null;
  const middle = present.length >> 1;
  const median =
    present.length % 2 === 1 ? (present[middle] as number) : ((present[middle - 1] as number) + (present[middle] as number)) / 2;
  return { median, min: present[0] as number, max: present[present.length - 1] as number, n: present.length };
}

/** Per round, `values[r] / baseline[r]`; null where either is missing or the baseline is 0. */
export function ratiosToBaseline(values: readonly (number | null)[], baseline: readonly (number | null)[]): (number | null)[] {
  return values.map((value, round) => {
    const base = baseline[round];
    if (value === null || value === undefined || base === null || base === undefined || base === 0) return null;
    return value / base;
  });
}

/** Per system, one value per round (null where the trial failed). */
export class RoundSeries {
  private readonly bySystem = new Map<string, (number | null)[]>();

  constructor(private readonly rounds: number) {}

  set(system: string, round: number, value: number | null): void {
    let values = this.bySystem.get(system);
    if (!values) {
      values = Array.from({ length: this.rounds }, () => null);
      this.bySystem.set(system, values);
    }
    values[round] = value;
  }

  values(system: string): (number | null)[] {
    return this.bySystem.get(system) ?? Array.from({ length: this.rounds }, () => null);
  }

  summary(system: string): Summary | null {
    return summarize(this.values(system));
  }

  /** Median and range of the per-round ratio to `baseline`. */
  ratio(system: string, baseline: string): Summary | null {
    return summarize(ratiosToBaseline(this.values(system), this.values(baseline)));
  }
}
