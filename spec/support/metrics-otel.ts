import type { Attributes } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, MetricData, MetricReader, MetricReaderOptions } from '@opentelemetry/sdk-metrics';
import type { Histogram } from '@opentelemetry/sdk-metrics';

/** A reader that exports nowhere: a spec calls `read()` and looks at what one collection gives. */
export class TestMetricReader extends MetricReader {
  constructor(options: MetricReaderOptions = {}) {
    super(options);
  }

  /** Every metric of one collection, as an exporter would get it; throws if the collection had errors. */
  async read(): Promise<Collection> {
    const { resourceMetrics, errors } = await this.collect();
    if (errors.length > 0) throw new Error(`the collection failed: ${errors.map(String).join('; ')}`);
    return new Collection(
      resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => ({ scope: scope.scope, metric }))),
    );
  }

  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }

  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** A reader whose every instrument has delta temporality: a collection shows only what was measured since the last one. */
export function deltaReader(): TestMetricReader {
  return new TestMetricReader({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
}

/** One collection's metrics, with the scope that made each. */
export class Collection {
  constructor(readonly metrics: ReadonlyArray<{ scope: { name: string }; metric: MetricData }>) {}

  /** The metric named `name`; throws, naming the metrics there are, if there is none. */
  metric(name: string): MetricData {
    const found = this.metrics.find(({ metric }) => metric.descriptor.name === name);
    if (found === undefined) {
      throw new Error(`no metric ${name} in the collection: ${this.metrics.map((m) => m.metric.descriptor.name).join(', ')}`);
    }
    return found.metric;
  }

  /** The names of the metrics that have at least one data point. */
  names(): string[] {
    return this.metrics.filter(({ metric }) => metric.dataPoints.length > 0).map(({ metric }) => metric.descriptor.name);
  }

  /** The value of the sum or gauge point of `name` whose attributes are exactly `attributes`. */
  value(name: string, attributes: Attributes = {}): number {
    const metric = this.metric(name);
    if (metric.dataPointType !== DataPointType.SUM && metric.dataPointType !== DataPointType.GAUGE) {
      throw new Error(`${name} is not a sum or a gauge`);
    }
    return metric.dataPoints[this.pointIndex(name, metric.dataPoints, attributes)]?.value ?? NaN;
  }

  /** The histogram point of `name` whose attributes are exactly `attributes`. */
  histogram(name: string, attributes: Attributes = {}): Histogram {
    const metric = this.metric(name);
    if (metric.dataPointType !== DataPointType.HISTOGRAM) throw new Error(`${name} is not a histogram`);
    const point = metric.dataPoints[this.pointIndex(name, metric.dataPoints, attributes)];
    if (point === undefined) throw new Error(`no histogram point of ${name}`);
    return point.value;
  }

  /** Where the point of `name` whose attributes are exactly `attributes` is in `points`; throws if there is none. */
  private pointIndex(name: string, points: ReadonlyArray<{ attributes: Attributes }>, attributes: Attributes): number {
    const wanted = Object.entries(attributes);
    const found = points.findIndex(
      (p) =>
        Object.keys(p.attributes).length === wanted.length &&
        wanted.every(([key, value]) => JSON.stringify(p.attributes[key]) === JSON.stringify(value)),
    );
    if (found < 0) {
      throw new Error(
        `no point of ${name} with ${JSON.stringify(attributes)}: ${JSON.stringify(points.map((p) => p.attributes))}`,
      );
    }
    return found;
  }
}
