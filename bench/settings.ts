import path from 'node:path';

export const scenarioIds = ['A', 'B', 'C', 'D', 'E', 'F'] as const;
export type ScenarioId = (typeof scenarioIds)[number];

export interface Settings {
  quick: boolean;
  rounds: number;
  scenarios: ScenarioId[];
  /** System ids asked for; null = every available one. */
  systems: string[] | null;
  /** rx-graceful options beyond `timeout`, from `--rx-<kebab-name>=<value>`. */
  rxOptions: Record<string, unknown>;
  resultsPath: string;
  /** Pin servers and load processes to separate cores with taskset (default true). */
  pin: boolean;
  /** The command line, for RESULTS.md. */
  command: string;
}

export const usage = `Usage: npm run bench -- [options]

  --quick                 short run (< 2 min): 1 round, shorter load windows
  --rounds=N              rounds per scenario (default 3, quick 1); systems are interleaved
  --scenarios=A,C,E       run only these scenarios (A–F)
  --systems=bare,stoppable
                          run only these systems (bare is always added: ratios are to it)
  --rx-<option>=<value>   pass an option to rx-graceful, e.g. --rx-idle-linger=25
                          (kebab-case becomes camelCase; numbers and true/false are parsed)
  --no-pin                do not pin servers to CPU 0 and load processes to CPU 1 (taskset)
  --results=PATH          where to write the report (default bench/RESULTS.md)
  --help
`;

function camelCase(kebab: string): string {
  return kebab.replace(/-([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

function parseValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
  return raw;
}

export function parseSettings(argv: readonly string[]): Settings | 'help' {
  let quick = false;
  let rounds: number | null = null;
  let scenarios: ScenarioId[] = [...scenarioIds];
  let systems: string[] | null = null;
  let resultsPath = path.join(__dirname, 'RESULTS.md');
  let pin = true;
  const rxOptions: Record<string, unknown> = {};

  for (const arg of argv) {
    const [flag = '', value = ''] = arg.split(/=(.*)/s, 2);
    if (flag === '--help' || flag === '-h') return 'help';
    else if (flag === '--quick') quick = true;
    else if (flag === '--rounds') {
      rounds = Number(value);
      if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20)
        throw new TypeError(`--rounds expects an integer 1–20, got '${value}'`);
    } else if (flag === '--scenarios') {
      const asked = value.toUpperCase().split(',').filter(Boolean);
      const unknown = asked.filter((id) => !(scenarioIds as readonly string[]).includes(id));
      if (unknown.length > 0)
        throw new TypeError(`unknown scenario ${unknown.join(', ')}; expected some of ${scenarioIds.join(',')}`);
      scenarios = scenarioIds.filter((id) => asked.includes(id));
    } else if (flag === '--systems') systems = value.split(',').filter(Boolean);
    else if (flag === '--results') resultsPath = path.resolve(value);
    else if (flag === '--no-pin') pin = false;
    else if (flag.startsWith('--rx-') && flag.length > 5) {
      if (value === '') throw new TypeError(`${flag} expects a value: ${flag}=<value>`);
      rxOptions[camelCase(flag.slice(5))] = parseValue(value);
    } else throw new TypeError(`unknown argument '${arg}'\n\n${usage}`);
  }

  const shownArgs = argv.length > 0 ? ` -- ${argv.join(' ')}` : '';
  return {
    quick,
    rounds: rounds ?? (quick ? 1 : 3),
    scenarios,
    systems,
    rxOptions,
    resultsPath,
    pin,
    command: `npm run bench${shownArgs}`,
  };
}
