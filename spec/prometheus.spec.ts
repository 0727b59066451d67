import { expect } from 'chai';
import * as http from 'node:http';
import { Gauge, Histogram, OpenMetricsContentType, register, Registry } from 'prom-client';
import { GracefulGroup, GracefulServer } from '../src';
import { bindPrometheus, PrometheusBinding, PrometheusOptions } from '../src/prometheus';
import { Figures, MetricsAdapter, metricsScenarios, serving, stoppedAfter } from './support/metrics-scenarios';
import { countSubscriptions, metricsServer } from './support/metrics-server';
import { Scrape } from './support/metrics-text';
import { Programs } from './support/program';
import { answered, serverKinds, serveTestApp } from './support/server-kinds';
import { afterEachTest, record } from './support/servers';
import { waitForValue, withDeadline } from './support/sockets';

/** Every metric family a binding registers, without the prefix. */
const families = [
  'connections_open',
  'connections_active',
  'connections_idle',
  'phase',
  'accepting',
  'connections_accepted_total',
  'connections_closed_idle_total',
  'connections_drained_total',
  'connections_killed_total',
  'shutdowns_total',
  'shutdown_duration_seconds',
];

/** Scrapes `registry` as Prometheus does: its text. */
async function scrape(registry: Registry): Promise<Scrape> {
  return new Scrape(await registry.metrics());
}

function figuresOf(scrape: Scrape, prefix = 'rx_graceful_', labels: Record<string, string> = {}): Figures {
  const value = (name: string, more: Record<string, string> = {}): number => scrape.value(prefix + name, { ...labels, ...more });
  const phases = ['stopped', 'serving', 'draining'].map((phase) => ({ phase, value: value('phase', { phase }) }));
  for (const { phase, value: v } of phases) expect(v, `the series of phase ${phase}`).to.be.oneOf([0, 1]);
  return {
    open: value('connections_open'),
    active: value('connections_active'),
    idle: value('connections_idle'),
    phase: phases
      .filter((p) => p.value === 1)
      .map((p) => p.phase)
      .join(','),
    accepting: value('accepting'),
    accepted: value('connections_accepted_total'),
    closedIdle: value('connections_closed_idle_total'),
    drained: value('connections_drained_total'),
    killed: value('connections_killed_total'),
    shutdowns: value('shutdowns_total'),
    durations: value('shutdown_duration_seconds_count'),
    durationSum: value('shutdown_duration_seconds_sum'),
  };
}

/** The shared scenarios, read through a registry of their own, scraped as Prometheus does. */
const prometheusAdapter: MetricsAdapter<Scrape> = {
  says: {
    drain: 'scrapes open, active, idle, the phase and the counters right before, during and after a real drain on 127.0.0.1',
    killed: 'counts the request a timeout destroys in connections_killed_total, and one force() destroys in the next cycle',
    group: "binds a GracefulGroup: its state and the members' connections; shutdowns_total counts the group's own shutdowns",
  },
  bind(target, cleanup) {
    const registry = new Registry();
    const binding = bindPrometheus(target, { registry });
    cleanup.push(() => binding.unbind());
    return () => scrape(registry);
  },
  figures: (scraped) => figuresOf(scraped),
  expectOneDuration(scraped, seconds) {
    // One observation, in seconds: in every bucket from the first bound at or above it.
    for (const sample of scraped.samples.filter((s) => s.name === 'rx_graceful_shutdown_duration_seconds_bucket')) {
      const bound = sample.labels.le === '+Inf' ? Infinity : Number(sample.labels.le);
      expect(sample.value, `bucket le=${sample.labels.le ?? '?'}`).to.equal(seconds <= bound ? 1 : 0);
    }
  },
};

describe('bindPrometheus (rx-graceful/prometheus)', function () {
  this.timeout(20000);
  const cleanup = afterEachTest();

  function bind(target: GracefulServer | GracefulGroup, options: PrometheusOptions): PrometheusBinding {
    const binding = bindPrometheus(target, options);
    cleanup.push(() => binding.unbind());
    return binding;
  }

  metricsScenarios(prometheusAdapter, cleanup);

  for (const kind of serverKinds) {
    it(`counts accepted connections as connections$ reports them new, and their shutdown, over ${kind.name}`, async () => {
      const registry = new Registry();
      const served = await serveTestApp(kind, {}, cleanup);
      const reported = record(served.graceful.connections$, cleanup);
      bind(served.graceful, { registry });
      for (let i = 0; i < 2; i++) {
        const client = await served.connect();
        expect(await client.request('/quick')).to.deep.equal(answered('/quick', false));
      }
      await waitForValue(served.graceful.state$, (s) => s.idle === 2, 3000, 'two idle connections');
      const news = reported.filter((event) => event.state === 'new').length;
      expect(news, 'connections reported new').to.equal(2);
      expect(figuresOf(await scrape(registry)), 'serving').to.deep.equal({ ...serving, open: 2, idle: 2, accepted: news });

      const finished = served.graceful.wait();
      served.graceful.shutdown();
      const result = await withDeadline(finished, 5000, 'the drain to finish');
      expect(figuresOf(await scrape(registry)), 'stopped').to.deep.equal(stoppedAfter([result], { accepted: 2, closedIdle: 2 }));
    });
  }

  it('puts the prefix on every name and the constant labels on every series', async () => {
    const registry = new Registry();
    const { graceful, idleConnection } = await metricsServer({}, cleanup);
    const labels = { service: 'api', zone: 'eu_1' };
    bind(graceful, { registry, prefix: 'api_', labels, buckets: [0.5, 1, 5] });
    await idleConnection();
    const result = await scrape(registry);
    expect(result.families()).to.deep.equal(families.map((name) => `api_${name}`));
    for (const sample of result.samples) expect(sample.labels, sample.name).to.include(labels);
    expect(figuresOf(result, 'api_', labels)).to.deep.equal({ ...serving, open: 1, idle: 1, accepted: 1 });
    const bounds = result.samples.filter((s) => s.name === 'api_shutdown_duration_seconds_bucket').map((s) => s.labels.le);
    expect(bounds).to.deep.equal(['0.5', '1', '5', '+Inf']);
  });

  it("observes a shutdown's duration when the registry is read, once, not when the shutdown ends", async () => {
    const registry = new Registry();
    const { graceful } = await metricsServer({}, cleanup);
    bind(graceful, { registry });
    const histogram = registry.getSingleMetric('rx_graceful_shutdown_duration_seconds') as Histogram;
    const observe = histogram.observe.bind(histogram) as (...args: unknown[]) => void;
    let observed = 0;
    histogram.observe = (...args: unknown[]) => {
      observed++;
      observe(...args);
    };
    const finished = graceful.wait();
    graceful.shutdown();
    const result = await withDeadline(finished, 5000, 'the drain to finish');
    expect(observed, 'observations when the shutdown ended').to.equal(0);
    const first = figuresOf(await scrape(registry));
    expect([observed, first.durations, first.durationSum]).to.deep.equal([1, 1, result.durationMs / 1000]);
    const second = figuresOf(await scrape(registry));
    expect([observed, second.durations], 'a second scrape').to.deep.equal([1, 1]);
  });

  it("registers in prom-client's default registry when given none", async () => {
    const { graceful } = await metricsServer({}, cleanup);
    const metrics = bind(graceful, {});
    expect(figuresOf(new Scrape(await register.metrics()))).to.deep.equal(serving);
    metrics.unbind();
    expect(register.getSingleMetric('rx_graceful_connections_open')).to.equal(undefined);
  });

  it('adds no work per request: no subscription to state$ or connections$ between scrapes, one connection listener; unbind() ends them all', async () => {
    const registry = new Registry();
    const { graceful, idleConnection } = await metricsServer({}, cleanup);
    const stateReaders = countSubscriptions(graceful, 'state$');
    const connectionWatchers = countSubscriptions(graceful, 'connections$');
    const doneWatchers = countSubscriptions(graceful, 'done$');
    const listeners = graceful.server.listenerCount('connection');
    const metrics = bind(graceful, { registry });
    const held = (): number[] => [stateReaders(), connectionWatchers(), graceful.server.listenerCount('connection') - listeners];
    expect(held(), 'state$, connections$, connection listeners').to.deep.equal([0, 0, 1]);
    expect(doneWatchers()).to.be.above(0);
    await idleConnection();
    expect(figuresOf(await scrape(registry))).to.deep.equal({ ...serving, open: 1, idle: 1, accepted: 1 });
    expect(held(), 'after a scrape').to.deep.equal([0, 0, 1]);
    metrics.unbind();
    expect([...held(), doneWatchers()], 'after unbind()').to.deep.equal([0, 0, 0, 0]);
  });

  it('unbind() removes every metric it registered and nothing else; a second unbind() does nothing; binding again works', async () => {
    const registry = new Registry();
    const up = new Gauge({ name: 'app_up', help: 'The application runs.', registers: [registry] });
    up.set(1);
    const { graceful, idleConnection } = await metricsServer({}, cleanup);
    const metrics = bind(graceful, { registry });
    expect((await scrape(registry)).families()).to.deep.equal(['app_up', ...families.map((name) => `rx_graceful_${name}`)]);

    metrics.unbind();
    metrics.unbind();
    expect((await registry.getMetricsAsJSON()).map((m) => m.name)).to.deep.equal(['app_up']);
    expect(await registry.metrics()).to.equal('# HELP app_up The application runs.\n# TYPE app_up gauge\napp_up 1\n');

    await idleConnection(); // while unbound: the next binding starts its counts from its own start
    bind(graceful, { registry });
    await idleConnection();
    expect(figuresOf(await scrape(registry))).to.deep.equal({ ...serving, open: 2, idle: 2, accepted: 1 });
  });

  it('works with an OpenMetrics registry: each counter ends in _total once, and unbind() still removes it', async () => {
    const registry = new Registry<OpenMetricsContentType>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const { graceful, idleConnection } = await metricsServer({}, cleanup);
    const metrics = bind(graceful, { registry });
    await idleConnection();
    const text = await registry.metrics();
    expect(text).to.include('\nrx_graceful_connections_accepted_total 1\n').and.include('\nrx_graceful_shutdowns_total 0\n');
    expect(text).not.to.include('_total_total');
    metrics.unbind();
    expect(await registry.getMetricsAsJSON()).to.deep.equal([]);
    bind(graceful, { registry });
    expect(await registry.metrics()).to.include('\nrx_graceful_connections_accepted_total 0\n');
  });

  it('refuses a metric name the registry already has, registering nothing; another prefix binds a second server', async () => {
    const registry = new Registry();
    const api = await metricsServer({}, cleanup);
    const admin = await metricsServer({}, cleanup);
    bind(api.graceful, { registry });
    expect(() => bindPrometheus(admin.graceful, { registry })).to.throw(
      TypeError,
      /already has a metric named "rx_graceful_connections_open"; bind each server with its own prefix, or bind a GracefulGroup/,
    );
    expect(registry.getMetricsAsArray()).to.have.length(families.length);
    bind(admin.graceful, { registry, prefix: 'admin_' });
    expect(registry.getMetricsAsArray()).to.have.length(2 * families.length);

    // A name taken late in the list: nothing of the binding is left behind either.
    const other = new Registry();
    new Gauge({ name: 'rx_graceful_shutdowns_total', help: 'Somebody else’s.', registers: [other] });
    expect(() => bindPrometheus(api.graceful, { registry: other })).to.throw(TypeError, /"rx_graceful_shutdowns_total"/);
    expect(other.getMetricsAsArray().map((m) => m.name)).to.deep.equal(['rx_graceful_shutdowns_total']);
  });

  it('throws a TypeError for a bad target, registry, prefix, labels or buckets, and for an unknown option with a "did you mean"', async () => {
    const registry = new Registry();
    const graceful = new GracefulServer(http.createServer());
    const bad: [unknown, unknown, RegExp][] = [
      [
        http.createServer(),
        { registry },
        /bindPrometheus\(target, options\) expects a GracefulServer or a GracefulGroup, got a Server/,
      ],
      [undefined, { registry }, /expects a GracefulServer or a GracefulGroup, got undefined/],
      [graceful, null, /options must be an object, got null/],
      [graceful, { registy: registry }, /unknown option "registy" \(did you mean "registry"\?\)/],
      [graceful, { registry, prefx: 'api_' }, /unknown option "prefx" \(did you mean "prefix"\?\)/],
      [graceful, { registry: {} }, /options\.registry must be a prom-client Registry, got an? Object/],
      [graceful, { registry: 'default' }, /options\.registry must be a prom-client Registry, got "default"/],
      [graceful, { registry, prefix: '1st_' }, /options\.prefix must be .*not starting with a digit/],
      [graceful, { registry, prefix: 'my-app_' }, /options\.prefix must be/],
      [graceful, { registry, prefix: 7 }, /options\.prefix must be .*got 7/],
      [graceful, { registry, labels: 'service=api' }, /options\.labels must be an object/],
      [graceful, { registry, labels: ['api'] }, /options\.labels must be an object/],
      [
        graceful,
        { registry, labels: { phase: 'x' } },
        /options\.labels must be label names .*other than phase and le, got "phase"/,
      ],
      [graceful, { registry, labels: { le: 'x' } }, /got "le"/],
      [graceful, { registry, labels: { 'service-name': 'x' } }, /got "service-name"/],
      [graceful, { registry, labels: { __name: 'x' } }, /got "__name"/],
      [graceful, { registry, labels: { service: 5 } }, /options\.labels\.service must be a string, got 5/],
      [graceful, { registry, buckets: [] }, /options\.buckets must be a non-empty array of ascending/],
      [graceful, { registry, buckets: 1 }, /options\.buckets must be/],
      [graceful, { registry, buckets: [1, 0.5] }, /options\.buckets must be .*got 0\.5/],
      [graceful, { registry, buckets: [0, 1] }, /options\.buckets must be .*got 0/],
      [graceful, { registry, buckets: [1, Infinity] }, /options\.buckets must be .*got Infinity/],
      [graceful, { registry, buckets: ['1'] }, /options\.buckets must be .*got "1"/],
    ];
    for (const [target, options, message] of bad) {
      expect(() => bindPrometheus(target as GracefulServer, options as PrometheusOptions), String(message)).to.throw(
        TypeError,
        message,
      );
    }
    expect(await registry.getMetricsAsJSON()).to.deep.equal([]);
  });
});

describe('examples/metrics.ts, run as a user runs it', function () {
  this.timeout(40000);
  const programs = new Programs();

  it('answers /metrics from the default registry, then drains on SIGTERM and exits by itself with code 0', async () => {
    // It imports 'rx-graceful/prometheus', which resolves to dist/ (`npm test` builds it first).
    const program = programs.start('examples/metrics.ts', { PORT: '0' });
    const port = await program.port('serving on ', 30000);
    const client = await programs.connect(port);
    client.get('/metrics');
    const response = await client.read(5000);
    expect(response.status).to.equal(200);
    expect(response.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    const scraped = figuresOf(new Scrape(response.body));
    // The scraper's own connection, with its request in flight.
    expect(scraped).to.deep.equal({ ...serving, open: 1, active: 1, accepted: 1 });

    program.signal('SIGTERM');
    expect(await program.line('stopped', 5000)).to.equal('stopped: closed idle 1, drained 0, killed 0');
    expect(await program.exit(5000)).to.deep.equal({ code: 0, signal: null });
  });
});
