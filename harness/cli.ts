/** What the three orchestrators (bench, stress, e2e) share as command-line programs: flags, errors, and how they end. */
import { parseArgs } from 'node:util';

type Flags = Record<string, string | boolean | undefined>;

/**
 * The flags of `argv` (`--name`, `--name=value`), each a boolean or a string as `names` says;
 * throws naming an unknown flag or a missing value. With `open`, unknown flags are returned as
 * they are, for the caller to judge (bench's `--rx-<option>=<value>`).
 */
export function parseFlags(argv: readonly string[], names: Record<string, 'boolean' | 'string'>, open = false): Flags {
  const options = Object.fromEntries(Object.entries(names).map(([name, type]) => [name, { type }]));
  return parseArgs({ args: [...argv], options, strict: !open }).values;
}

/** `value` as a whole number from `min` to `max`, or undefined when absent; throws naming `flag` otherwise. */
export function wholeNumber(flag: string, value: Flags[string], min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < min || Number(value) > max)
    throw new TypeError(`--${flag} expects a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** An error's message (or the value, for a throw of a non-Error). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs an orchestrator: its exit code is what `main` resolves with, 2 if it throws (usage first,
 * for a bad flag). Ctrl-C and SIGTERM end it; harness/child.ts then kills every child. The exit is
 * explicit: a keep-alive socket of the global `fetch` agent must not hold the run open.
 */
export function runMain(main: () => Promise<number>, usage: string): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      const text = error instanceof TypeError ? `${error.message}\n\n${usage}` : error instanceof Error ? error.stack : undefined;
      process.stderr.write(`${text ?? String(error)}\n`);
      process.exit(2);
    },
  );
}
