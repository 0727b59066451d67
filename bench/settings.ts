import path from 'node:path';
import { parseFlags, wholeNumber } from '../harness/cli';
import type { Protocol } from '../harness/protocol';
import { systemIds } from '../harness/systems';
import { benchProtocols, defaultProtocols } from './scenarios/protocols';

export const scenarioIds = ['A', 'B', 'C', 'D', 'E', 'F', 'G'] as const;
export type ScenarioId = (typeof scenarioIds)[number];

/** The run's settings: `systems` bare first, `rxOptions` from `--rx-*`, `pin` with taskset, the `command` for RESULTS.md. */
export interface Settings {
  quick: boolean;
  rounds: number;
  scenarios: ScenarioId[];
  systems: string[];
  /** What C and E run over (the others over http only). */
  protocols: Protocol[];
  rxOptions: Record<string, unknown>;
  resultsPath: string;
  pin: boolean;
  /** Node flags for every server process (`--server-node-flags`), on top of `--expose-gc`. */
  serverNodeFlags: string[];
  /** `--aged`: B, F and G's servers age before their shutdown (`agedMajorCollections`). */
  aged: boolean;
  command: string;
}

/**
 * With `--aged`, the major collections a server of B, F and G lets come before its shutdown: V8
 * drops the compiled code of a function that has not run through 5 of them (`--bytecode-old-age`),
 * and 8 are past that in every probe (2026-12-04).
 */
export const agedMajorCollections = 8;

export const usage = `Usage: npm run bench -- [options]

  --quick                 short run (< 2 min): 1 round, shorter load windows
  --rounds=N              rounds per scenario (default 3, quick 1); systems are interleaved
  --scenarios=A,C,E       run only these scenarios (A–G)
  --systems=bare,stoppable
                          run only these systems (bare is always added: ratios are to it)
  --protocols=https,h2    C and E over these too (http, https, h2, h2c; default all four,
                          quick http,h2; http is always added); a peer only over those it claims
  --rx-<option>=<value>   pass an option to rx-graceful, e.g. --rx-idle-linger=25
                          (kebab-case becomes camelCase; numbers and true/false are parsed)
  --no-pin                do not pin servers to CPU 0 and load processes to CPU 1 (taskset)
  --server-node-flags=--no-opt,--v8-pool-size=1
                          run every server process with these Node flags too (to see what
                          V8's optimizing compiler or its threads cost; not for target runs)
  --aged                  B, F and G: each server ages before its shutdown, as a process that has
                          served for a while: it allocates until 8 major collections have come,
                          and V8 has dropped the code that has not run since (a fresh process
                          shuts down with the code its start-up compiled)
  --results=PATH          where to write the report (default bench/RESULTS.md)
  --help
`;

/** The items of the comma-separated list `value`, each checked against `known`; all of `known` when absent. */
function listOf<T extends string>(flag: string, value: unknown, known: readonly T[], always = ''): T[] {
  if (typeof value !== 'string') return [...known];
  const asked = `${always}${value}`.split(',').filter(Boolean);
  const unknown = asked.filter((item) => !known.some((id) => id === item));
  if (unknown.length > 0) throw new TypeError(`--${flag}: unknown ${unknown.join(', ')}; known: ${known.join(', ')}`);
  return known.filter((id) => asked.includes(id));
}

/** `--server-node-flags`: a comma-separated list of Node flags, each starting with `--`. */
function nodeFlagsOf(value: unknown): string[] {
  if (value === undefined) return [];
  const flags = typeof value === 'string' ? value.split(',').filter(Boolean) : [];
  if (flags.length === 0 || flags.some((flag) => !flag.startsWith('--'))) {
    throw new TypeError(
      `--server-node-flags expects Node flags separated by commas, e.g. --server-node-flags=--no-opt; got ${JSON.stringify(value)}`,
    );
  }
  return flags;
}

export function parseSettings(argv: readonly string[]): Settings | 'help' {
  const names = { help: 'boolean', quick: 'boolean', rounds: 'string', scenarios: 'string', systems: 'string' } as const;
  const flags = parseFlags(
    argv,
    { ...names, protocols: 'string', results: 'string', 'no-pin': 'boolean', 'server-node-flags': 'string', aged: 'boolean' },
    true,
  );
  const { help, quick, rounds, scenarios, systems, protocols, results, 'no-pin': noPin, aged, ...rest } = flags;
  const { 'server-node-flags': serverFlags, ...rxFlags } = rest;
  if (help === true) return 'help';
  const rxOptions: Record<string, unknown> = {};
  for (const [flag, value] of Object.entries(rxFlags)) {
    if (!flag.startsWith('rx-') || flag.length === 3) throw new TypeError(`unknown argument '--${flag}'`);
    if (typeof value !== 'string' || value === '') throw new TypeError(`--${flag} expects a value: --${flag}=<value>`);
    const parsed = value === 'true' ? true : value === 'false' ? false : Number.isFinite(Number(value)) ? Number(value) : value;
    rxOptions[flag.slice(3).replace(/-([a-z0-9])/g, (_, letter: string) => letter.toUpperCase())] = parsed;
  }
  return {
    quick: quick === true,
    rounds: wholeNumber('rounds', rounds, 1, 20) ?? (quick === true ? 1 : 3),
    scenarios: listOf('scenarios', typeof scenarios === 'string' ? scenarios.toUpperCase() : undefined, scenarioIds),
    systems: listOf('systems', systems, systemIds, 'bare,'),
    protocols:
      protocols === undefined ? defaultProtocols(quick === true) : listOf('protocols', protocols, benchProtocols, 'http,'),
    rxOptions,
    resultsPath: typeof results === 'string' ? path.resolve(results) : path.join(__dirname, 'RESULTS.md'),
    pin: noPin !== true,
    serverNodeFlags: nodeFlagsOf(serverFlags),
    aged: aged === true,
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
  };
}
