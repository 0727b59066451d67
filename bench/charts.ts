import fs from 'node:fs';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { LayerSpec, UnitSpec } from 'vega-lite/build/src/spec';
import type { Summary } from '../harness/markdown';
import type { Series } from './context';

/** Compiles a Vega-Lite spec and renders it headlessly to an SVG file. */
export async function writeChart(file: string, spec: TopLevelSpec): Promise<void> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    fs.writeFileSync(file, await view.toSVG());
  } finally {
    view.finalize();
  }
}

/** The look every chart shares. */
export const chartConfig = {
  font: 'Helvetica, Arial, sans-serif',
  axis: { labelFontSize: 11, titleFontSize: 11, labelLimit: 240 },
  legend: { labelLimit: 240 },
  view: { stroke: null },
} as const;

type Layer = LayerSpec<string> | UnitSpec<string>;

/** How C and D draw their resolve times beyond what they share. */
export interface ResolveChart {
  readonly title: string;
  readonly subtitle: string;
  readonly width: number;
  /** Per system with a resolve time: its row's fields beyond system, median, min and max. */
  readonly fields: (system: string, resolve: Summary) => Record<string, unknown>;
  /** The bar's x beyond `median`: its title, scale and axis. */
  readonly x: Record<string, unknown>;
  /** The text written at the end of each range. */
  readonly label: Record<string, unknown>;
  /** Layers over the rows, drawn before the labels; and layers with data of their own, drawn last. */
  readonly over?: Layer[];
  readonly last?: Layer[];
}

/** A row per system with a resolve time: its median, min and max, and its fields. */
function resolveRows(systems: readonly string[], resolve: Series, chart: ResolveChart): ({ system: string } & object)[] {
  return systems.flatMap((system) => {
    const summary = resolve.summary(system);
    if (summary === null) return [];
    return [{ system, median: summary.median, min: summary.min, max: summary.max, ...chart.fields(system, summary) }];
  });
}

/** The bar at the median, the rule over the range, `over`, and the label: the layers of one row. */
function resolveLayers(chart: ResolveChart): Layer[] {
  const x = (field: string): { field: string; type: 'quantitative' } => ({ field, type: 'quantitative' });
  const bar = { mark: { type: 'bar', color: '#4c78a8' }, encoding: { x: { ...x('median'), ...chart.x } } };
  const range = { mark: { type: 'rule', color: '#333' }, encoding: { x: x('min'), x2: { field: 'max' } } };
  const text = { mark: { type: 'text', align: 'left', dx: 4, fontSize: 10 }, encoding: { x: x('max'), text: chart.label } };
  return [bar, range, ...(chart.over ?? []), text] as Layer[];
}

const systemAxis = { y: { field: 'system', type: 'nominal', sort: null, title: null } } as const;

/** A bar per system at its median time to resolve, a rule over its min–max range, and a label (C's and D's chart). */
export function resolveChart(systems: readonly string[], resolve: Series, chart: ResolveChart): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: chart.title, subtitle: chart.subtitle },
    width: chart.width,
    height: { step: 24 },
    layer: [
      { data: { values: resolveRows(systems, resolve, chart) }, encoding: systemAxis, layer: resolveLayers(chart) },
      ...(chart.last ?? []),
    ],
    config: chartConfig,
  };
}

/**
 * resolveChart with a panel per group (C: per protocol), one above the other on the same x scale,
 * each with its own systems and fields beyond `chart.fields`; `chart.last` is drawn in every panel.
 */
export function groupedResolveChart(
  groups: readonly { name: string; systems: readonly string[]; resolve: Series; fields?: (system: string) => object }[],
  chart: ResolveChart,
): TopLevelSpec {
  const panel = (group: (typeof groups)[number]): Layer => {
    const rows = resolveRows(group.systems, group.resolve, chart).map((row) => ({ ...row, ...group.fields?.(row.system) }));
    const title = { text: group.name, anchor: 'start', fontSize: 12 } as const;
    const rowsLayer = { data: { values: rows }, encoding: systemAxis, layer: resolveLayers(chart) };
    return { title, width: chart.width, height: { step: 22 }, layer: [rowsLayer, ...(chart.last ?? [])] };
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: chart.title, subtitle: chart.subtitle },
    vconcat: groups.map(panel),
    resolve: { scale: { x: 'shared' } },
    config: chartConfig,
  };
}
