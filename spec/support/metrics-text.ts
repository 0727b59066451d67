/** One sample line of the Prometheus text format: `name{label="value",...} 12`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * A scrape in the Prometheus text format (what `registry.metrics()` returns), read as a scraper
 * reads it: `value(name, labels)` is the sample with exactly that name and label set.
 */
export class Scrape {
  readonly samples: readonly Sample[];

  constructor(readonly text: string) {
    const samples: Sample[] = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const parts = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (parts === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
      const labels: Record<string, string> = {};
      for (const [, name = '', value = ''] of (parts[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[name] = value;
      }
      samples.push({ name: parts[1] ?? '', labels, value: Number(parts[3]) });
    }
    this.samples = samples;
  }

  /** The value of the sample named `name` whose labels are exactly `labels`; throws, showing the scrape, if there is none. */
  value(name: string, labels: Readonly<Record<string, string>> = {}): number {
    const wanted = Object.entries(labels);
    const found = this.samples.find(
      (s) =>
        s.name === name &&
        Object.keys(s.labels).length === wanted.length &&
        wanted.every(([label, value]) => s.labels[label] === value),
    );
    if (found === undefined) throw new Error(`no sample ${name}${JSON.stringify(labels)} in the scrape:\n${this.text}`);
    return found.value;
  }

  /** The names of the metric families announced by `# TYPE` lines. */
  families(): string[] {
    return [...this.text.matchAll(/^# TYPE (\S+) /gm)].map(([, name = '']) => name);
  }
}
