import { metrics, ValueType } from '@opentelemetry/api';
import type { Attributes } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, MeterProvider } from '@opentelemetry/sdk-metrics';
import { expect } from 'chai';
import * as http from 'node:http';
import { GracefulGroup, GracefulServer } from '../src';
import { bindOpenTelemetry, OpenTelemetryBinding, OpenTelemetryOptions } from '../src/opentelemetry';
import { Collection, deltaReader, TestMetricReader } from './support/metrics-otel';
import { Figures, MetricsAdapter, metricsScenarios, serving } from './support/metrics-scenarios';
import { countSubscriptions, metricsServer } from './support/metrics-server';
import { afterEachTest } from './support/servers';
import { withDeadline } from './support/sockets';

const CONNECTIONS = 'rx_graceful.connection.count';
const PHASE = 'rx_graceful.server.phase';
const ACCEPTING = 'rx_graceful.server.accepting';
const ACCEPTED = 'rx_graceful.accepted_connections';
const CLOSED = 'rx_graceful.shutdown.closed_connections';
const SHUTDOWNS = 'rx_graceful.shutdowns';
const DURATION = 'rx_graceful.shutdown.duration';
const OBSERVED = [CONNECTIONS, PHASE, ACCEPTING, ACCEPTED, CLOSED, SHUTDOWNS];

/**
 * The figures of one collection. OpenTelemetry counts the open connections by state: `open` is
 * the sum of the connection count over its states, as a dashboard sums it.
 */
function figuresOf(collection: Collection, attributes: Attributes = {}): Figures {
  const value = (name: string, more: Attributes = {}): number => collection.value(name, { ...attributes, ...more });
  const phases = ['stopped', 'serving', 'draining'].map((phase) => ({ phase, value: value(PHASE, { [PHASE]: phase }) }));
  for (const { phase, value: v } of phases) expect(v, `the point of phase ${phase}`).to.be.oneOf([0, 1]);
  const recorded = collection.names().includes(DURATION) ? collection.histogram(DURATION, attributes) : { count: 0, sum: 0 };
  const active = value(CONNECTIONS, { 'http.connection.state': 'active' });
  const idle = value(CONNECTIONS, { 'http.connection.state': 'idle' });
  return {
    open: active + idle,
    active,
    idle,
    phase: phases
      .filter((p) => p.value === 1)
      .map((p) => p.phase)
      .join(','),
    accepting: value(ACCEPTING),
    accepted: value(ACCEPTED),
    closedIdle: value(CLOSED, { 'rx_graceful.connection.outcome': 'closed_idle' }),
    drained: value(CLOSED, { 'rx_graceful.connection.outcome': 'drained' }),
    killed: value(CLOSED, { 'rx_graceful.connection.outcome': 'killed' }),
    shutdowns: value(SHUTDOWNS),
    durations: recorded.count,
    durationSum: recorded.sum ?? NaN,
  };
}

/** The shared scenarios, read through a cumulative reader (the SDK's default) of a meter provider of their own. */
const openTelemetryAdapter: MetricsAdapter<Collection> = {
  says: {
    drain:
      'reports the connections by state, the phase and the counters right before, during and after a real drain on 127.0.0.1',
    killed: 'counts in killed the request a timeout destroys, and one force() destroys in the next cycle',
    group:
      "binds a GracefulGroup: its state and the members' connections; rx_graceful.shutdowns counts the group's own shutdowns",
  },
  bind(target, cleanup) {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    cleanup.push(() => void meterProvider.shutdown());
    const binding = bindOpenTelemetry(target, { meter: meterProvider });
    cleanup.push(() => binding.unbind());
    return () => reader.read();
  },
  figures: (collection) => figuresOf(collection),
  expectOneDuration(collection, seconds) {
    const { buckets } = collection.histogram(DURATION);
    expect(buckets.boundaries).to.deep.equal([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]);
    const bucket = buckets.boundaries.findIndex((bound) => seconds <= bound);
    expect(buckets.counts).to.deep.equal(buckets.counts.map((_, i) => (i === bucket ? 1 : 0)));
  },
};

describe('bindOpenTelemetry (rx-graceful/opentelemetry)', function () {
  this.timeout(20000);
  const cleanup = afterEachTest();

  /** A meter provider with a cumulative reader (the SDK's default), shut down after the test. */
  function provider(reader = new TestMetricReader()): { meterProvider: MeterProvider; reader: TestMetricReader } {
    const meterProvider = new MeterProvider({ readers: [reader] });
    cleanup.push(() => void meterProvider.shutdown());
    return { meterProvider, reader };
  }

  function bind(target: GracefulServer | GracefulGroup, options: OpenTelemetryOptions): OpenTelemetryBinding {
    const binding = bindOpenTelemetry(target, options);
    cleanup.push(() => binding.unbind());
    return binding;
  }

  metricsScenarios(openTelemetryAdapter, cleanup);

  it("creates the instruments with the meter rx-graceful of a MeterProvider, each with its kind and unit, every point with the binding's attributes", async () => {
    const { meterProvider, reader } = provider();
    const { graceful, idleConnection } = await metricsServer({ idleLinger: 0 }, cleanup);
    const attributes = { 'service.name': 'api', 'server.port': 8080, primary: true };
    bind(graceful, { meter: meterProvider, attributes });
    await idleConnection();
    const shutdown = graceful.wait();
    graceful.shutdown();
    await withDeadline(shutdown, 3000, 'the drain to finish');

    const collection = await reader.read();
    expect(new Set(collection.metrics.map(({ scope }) => scope.name))).to.deep.equal(new Set(['rx-graceful']));
    const kinds = collection.metrics.map(({ metric }) => ({
      name: metric.descriptor.name,
      unit: metric.descriptor.unit,
      type: metric.dataPointType,
      monotonic: 'isMonotonic' in metric ? metric.isMonotonic : undefined,
      integer: metric.descriptor.valueType === ValueType.INT,
    }));
    const sum = DataPointType.SUM;
    expect(kinds).to.deep.equal([
      { name: CONNECTIONS, unit: '{connection}', type: sum, monotonic: false, integer: true },
      { name: PHASE, unit: '{server}', type: sum, monotonic: false, integer: true },
      { name: ACCEPTING, unit: '{server}', type: sum, monotonic: false, integer: true },
      { name: ACCEPTED, unit: '{connection}', type: sum, monotonic: true, integer: true },
      { name: CLOSED, unit: '{connection}', type: sum, monotonic: true, integer: true },
      { name: SHUTDOWNS, unit: '{shutdown}', type: sum, monotonic: true, integer: true },
      { name: DURATION, unit: 's', type: DataPointType.HISTOGRAM, monotonic: undefined, integer: false },
    ]);
    for (const { metric } of collection.metrics) {
      for (const point of metric.dataPoints) expect(point.attributes, metric.descriptor.name).to.include(attributes);
    }
    expect(figuresOf(collection, attributes)).to.deep.include({ phase: 'stopped', accepted: 1, closedIdle: 1, shutdowns: 1 });
  });

  it("uses the global MeterProvider's meter when given none", async () => {
    const { meterProvider, reader } = provider();
    expect(metrics.setGlobalMeterProvider(meterProvider)).to.equal(true);
    cleanup.push(() => metrics.disable());
    const { graceful, idleConnection } = await metricsServer({}, cleanup);
    bind(graceful, {});
    await idleConnection();
    expect(figuresOf(await reader.read())).to.deep.equal({ ...serving, open: 1, idle: 1, accepted: 1 });
  });

  it('adds no work per request (no subscription to state$ or connections$, one connection listener); unbind() removes its callback and ends them all; binding again works', async () => {
    // Two readers: one with delta temporality, whose collection holds only what was observed since
    // the one before; one cumulative (the SDK's default).
    const delta = deltaReader();
    const cumulative = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [delta, cumulative] });
    cleanup.push(() => void meterProvider.shutdown());
    const { graceful, idleConnection } = await metricsServer({}, cleanup);
    const stateReaders = countSubscriptions(graceful, 'state$');
    const connectionWatchers = countSubscriptions(graceful, 'connections$');
    const doneWatchers = countSubscriptions(graceful, 'done$');
    const listeners = graceful.server.listenerCount('connection');
    const telemetry = bind(graceful, { meter: meterProvider });
    const held = (): number[] => [stateReaders(), connectionWatchers(), graceful.server.listenerCount('connection') - listeners];
    expect(held(), 'state$, connections$, connection listeners').to.deep.equal([0, 0, 1]);
    expect(doneWatchers()).to.be.above(0);
    await idleConnection();
    const bound = await delta.read();
    expect(bound.names()).to.deep.equal(OBSERVED);
    expect(bound.metric(ACCEPTED).aggregationTemporality).to.equal(AggregationTemporality.DELTA);
    expect(bound.value(ACCEPTED)).to.equal(1);
    expect(held(), 'after a collection').to.deep.equal([0, 0, 1]);

    telemetry.unbind();
    telemetry.unbind();
    expect([...held(), doneWatchers()], 'after unbind()').to.deep.equal([0, 0, 0, 0]);
    // Nothing observed since the last collection: the callback is gone. (A cumulative reader of
    // sdk-metrics 2.x keeps exporting the last values observed: opentelemetry-js#4096.)
    expect((await delta.read()).names()).to.deep.equal([]);

    await idleConnection(); // while unbound: the next binding counts from its own start
    bind(graceful, { meter: meterProvider });
    await idleConnection();
    expect((await delta.read()).names()).to.deep.equal(OBSERVED);
    expect(figuresOf(await cumulative.read())).to.deep.equal({ ...serving, open: 3, idle: 3, accepted: 1 });
  });

  it('refuses a second binding with the same attributes on one meter; with other attributes, both report side by side', async () => {
    const { meterProvider, reader } = provider();
    const api = await metricsServer({}, cleanup);
    const admin = await metricsServer({}, cleanup);
    bind(api.graceful, { meter: meterProvider, attributes: { 'server.port': 8080, 'service.name': 'shop' } });
    expect(() =>
      bindOpenTelemetry(admin.graceful, { meter: meterProvider, attributes: { 'service.name': 'shop', 'server.port': 8080 } }),
    ).to.throw(TypeError, /this meter already has a binding with the attributes .*give each server its own attributes/);
    bind(admin.graceful, { meter: meterProvider, attributes: { 'server.port': 9090, 'service.name': 'shop' } });
    await api.idleConnection();
    await admin.idleConnection();
    await admin.idleConnection();
    const collection = await reader.read();
    expect(collection.value(ACCEPTED, { 'server.port': 8080, 'service.name': 'shop' })).to.equal(1);
    expect(collection.value(ACCEPTED, { 'server.port': 9090, 'service.name': 'shop' })).to.equal(2);
  });

  it('throws a TypeError for a bad target, meter or attributes, and for an unknown option with a "did you mean"', async () => {
    const { meterProvider, reader } = provider();
    const meter = meterProvider.getMeter('rx-graceful');
    const graceful = new GracefulServer(http.createServer());
    const bad: [unknown, unknown, RegExp][] = [
      [
        http.createServer(),
        { meter },
        /bindOpenTelemetry\(target, options\) expects a GracefulServer or a GracefulGroup, got a Server/,
      ],
      [{ state$: null }, { meter }, /expects a GracefulServer or a GracefulGroup, got an? Object/],
      [graceful, null, /options must be an object, got null/],
      [graceful, { metre: meter }, /unknown option "metre" \(did you mean "meter"\?\)/],
      [graceful, { meter, atributes: {} }, /unknown option "atributes" \(did you mean "attributes"\?\)/],
      [graceful, { meter: {} }, /options\.meter must be an OpenTelemetry Meter or MeterProvider, got an? Object/],
      [graceful, { meter: 'rx-graceful' }, /options\.meter must be .*got "rx-graceful"/],
      [graceful, { meter, attributes: 'service=api' }, /options\.attributes must be an object/],
      [graceful, { meter, attributes: [['service', 'api']] }, /options\.attributes must be an object/],
      [
        graceful,
        { meter, attributes: { 'http.connection.state': 'x' } },
        /options\.attributes must be .*got "http\.connection\.state"/,
      ],
      [graceful, { meter, attributes: { 'rx_graceful.server.phase': 'x' } }, /got "rx_graceful\.server\.phase"/],
      [graceful, { meter, attributes: { 'rx_graceful.connection.outcome': 'x' } }, /got "rx_graceful\.connection\.outcome"/],
      [graceful, { meter, attributes: { '': 'x' } }, /got ""/],
      [graceful, { meter, attributes: { port: NaN } }, /options\.attributes\["port"\] must be a string, a finite number/],
      [graceful, { meter, attributes: { owner: null } }, /options\.attributes\["owner"\] must be .*got null/],
      [graceful, { meter, attributes: { owner: { team: 'a' } } }, /options\.attributes\["owner"\] must be/],
      [graceful, { meter, attributes: { tags: ['a', 1] } }, /options\.attributes\["tags"\] must be/],
    ];
    for (const [target, options, message] of bad) {
      expect(() => bindOpenTelemetry(target as GracefulServer, options as OpenTelemetryOptions), String(message)).to.throw(
        TypeError,
        message,
      );
    }
    expect((await reader.read()).names()).to.deep.equal([]);
  });
});
