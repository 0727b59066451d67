import type { TopLevelSpec } from 'vega-lite';
import type { BenchContext } from '../context';
import type { ScenarioId } from '../settings';

/** One check of the targets against rx-graceful's figures. */
export interface TargetCheck {
  target: string;
  measured: string;
  /** null when it could not be measured (e.g. rx-graceful did not run). */
  met: boolean | null;
}

export interface ScenarioReport {
  id: ScenarioId;
  title: string;
  /** What was measured and how, one paragraph, for RESULTS.md. */
  method: string;
  tables: { caption: string; markdown: string }[];
  /** One JSON object per summary row: what `run` prints as JSON lines. */
  summaries: Record<string, unknown>[];
  charts: { file: string; title: string; spec: TopLevelSpec }[];
  targets: TargetCheck[];
}

export interface Scenario {
  id: ScenarioId;
  title: string;
  run(context: BenchContext): Promise<ScenarioReport>;
}

/** The systems rx-graceful is compared with: every system but its own two. */
export function isPeer(system: string): boolean {
  return !system.startsWith('rx-graceful');
}
