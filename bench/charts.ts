import fs from 'node:fs';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

/** Compiles a Vega-Lite spec and renders it headlessly to an SVG file. */
export async function writeChart(file: string, spec: TopLevelSpec): Promise<void> {
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
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
