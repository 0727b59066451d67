import { Counter, Gauge, Histogram, register } from 'prom-client';
import type { Metric, OpenMetricsContentType, Registry } from 'prom-client';
import { describeValue } from './errors';
import { GracefulServer } from './graceful-server';
import { GracefulGroup, type GroupState } from './group';
import { DURATION_BUCKETS, metricsSourceOf, PHASES } from './metrics-source';
import { OptionReader } from './options';

// rx-graceful/prometheus: prom-client is an optional peer dependency, loaded by this subpath only;
// nothing the package root loads may import this file.

/**
 * Options of `bindPrometheus`.
 *
 * @example
 * bindPrometheus(graceful, { registry, prefix: 'api_', labels: { service: 'api' } });
 */
export interface PrometheusOptions {
  /** The prom-client `Registry` the metrics are registered in (default: prom-client's global `register`). */
  registry?: Registry | Registry<OpenMetricsContentType>;
  /**
   * Starts every metric name (default `'rx_graceful_'`): letters, digits, `_` and `:`, not starting
   * with a digit. Two servers bound to one registry need two prefixes (or bind a `GracefulGroup`).
   */
  prefix?: string;
  /** Constant labels put on every series, e.g. `{ service: 'api' }`; `phase` and `le` are taken. */
  labels?: Readonly<Record<string, string>>;
  /**
   * Upper bounds of the shutdown duration histogram's buckets, in seconds, ascending (default
   * 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120).
   */
  buckets?: readonly number[];
}

/**
 * What `bindPrometheus` returns: the handle that ends the binding.
 *
 * @example
 * const metrics = bindPrometheus(graceful, { registry });
 * await graceful.wait();
 * metrics.unbind(); // the registry is as it was before the binding
 */
export interface PrometheusBinding {
  /**
   * Ends the binding: unsubscribes from the server or group, and removes from the registry every
   * metric the binding registered, and nothing else. A second call does nothing.
   */
  unbind(): void;
}

const DEFAULT_PREFIX = 'rx_graceful_';
/** Label names this module puts on series itself: `phase` on the phase gauge, `le` on histogram buckets. */
const TAKEN_LABELS: readonly string[] = ['phase', 'le'];

/**
 * Binds a `GracefulServer` (or a `GracefulGroup`) to a prom-client registry: it registers the
 * metrics below, and keeps them current until `unbind()`. Names start with `prefix` (default
 * `rx_graceful_`); every series carries the constant `labels`.
 *
 * It costs requests nothing: the gauges are read when the registry is scraped, from `state$`
 * (which replays the current state: the binding subscribes for that one read and unsubscribes at
 * once), the accepted counter listens to the server's `connection` event (once a connection), and
 * the shutdown counters to `done$` (once a shutdown). A shutdown's end runs none of prom-client's
 * code: its duration goes into the histogram when the registry is next read.
 *
 * Gauges:
 * - `connections_open`: open connections (neither closed nor hijacked);
 * - `connections_active`: of those, with a request (an HTTP/2 stream) in flight;
 * - `connections_idle`: of those, with none (keep-alive, or nothing sent yet);
 * - `phase{phase="stopped"|"serving"|"draining"}`: 1 for the current phase, 0 for the others (a
 *   state set, as kube-state-metrics' `kube_pod_status_phase`);
 * - `accepting`: 1 while the listener accepts connections (serving, and a `drainDelay`), else 0.
 *
 * Counters, which count connections and shutdowns, never requests:
 * - `connections_accepted_total`: connections accepted (reported `new` on `connections$`);
 * - `connections_closed_idle_total`, `connections_drained_total`, `connections_killed_total`: the
 *   `closedIdle`, `drained` and `killed` of each finished shutdown (`done$`), added when it finishes;
 * - `shutdowns_total`: finished shutdowns.
 *
 * Histogram `shutdown_duration_seconds`: each finished shutdown's `durationMs`, in seconds.
 *
 * For a `GracefulGroup`, the gauges are the group's `state$` (counts summed over the members, the
 * combined phase), the connection counters sum the members' (every shutdown of a member counts,
 * also one it ran on its own), and `shutdowns_total` and the histogram count the group's own
 * shutdowns (its `done$`).
 *
 * Throws a `TypeError` for a target that is neither a `GracefulServer` nor a `GracefulGroup`, an
 * unknown option name, a registry that is not a prom-client `Registry`, a bad prefix, label or
 * bucket list, or a metric name the registry already has (it then registers nothing).
 *
 * @example
 * import { register } from 'prom-client';
 * import { GracefulServer } from 'rx-graceful';
 * import { bindPrometheus } from 'rx-graceful/prometheus';
 *
 * const graceful = new GracefulServer(server, { timeout: 10_000 });
 * const metrics = bindPrometheus(graceful, { registry: register, labels: { service: 'api' } });
 * // GET /metrics: res.end(await register.metrics())
 * // rx_graceful_connections_open{service="api"} 3
 * // rx_graceful_phase{service="api",phase="serving"} 1
 * metrics.unbind(); // when the metrics are no longer wanted
 */
export function bindPrometheus(target: GracefulServer | GracefulGroup, options: PrometheusOptions = {}): PrometheusBinding {
  const call = 'bindPrometheus(target, options)';
  const source = metricsSourceOf(target, call);
  const { registry, prefix, labels, buckets } = readOptions(call, options);
  const names = {
    open: `${prefix}connections_open`,
    active: `${prefix}connections_active`,
    idle: `${prefix}connections_idle`,
    phase: `${prefix}phase`,
    accepting: `${prefix}accepting`,
    accepted: `${prefix}connections_accepted_total`,
    closedIdle: `${prefix}connections_closed_idle_total`,
    drained: `${prefix}connections_drained_total`,
    killed: `${prefix}connections_killed_total`,
    shutdowns: `${prefix}shutdowns_total`,
    duration: `${prefix}shutdown_duration_seconds`,
  };
  for (const name of Object.values(names)) {
    if (registry.getSingleMetric(name) !== undefined) {
      throw new TypeError(
        `rx-graceful: ${call}: the registry already has a metric named "${name}"; bind each server with its own prefix, or bind a GracefulGroup of them`,
      );
    }
  }

  const labelNames = Object.keys(labels);
  const registers = [registry];
  const registered = new Map<string, Metric>();
  const gauge = (name: string, help: string, read: (state: GroupState) => number): void => {
    registered.set(
      name,
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.set(labels, read(source.state()));
        },
      }),
    );
  };
  const counter = (name: string, help: string, read: () => number): void => {
    registered.set(
      name,
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          // The total is kept outside prom-client: set it as a counter can be set, from zero.
          this.reset();
          this.inc(labels, read());
        },
      }),
    );
  };
  const phaseSeries = PHASES.map((phase) => ({ phase, labels: { ...labels, phase } }));
  /**
   * Durations of finished shutdowns not yet observed: the histogram takes them when it is read, as
   * the gauges and counters are, so that nothing of prom-client runs when a shutdown ends, between
   * its last close and the result that `wait()` and `done$` deliver.
   */
  const unobserved: number[] = [];

  try {
    gauge(names.open, 'Open connections: accepted, neither closed nor hijacked.', (s) => s.open);
    gauge(names.active, 'Open connections with a request (an HTTP/2 stream) in flight.', (s) => s.active);
    gauge(names.idle, 'Open connections with no request in flight (keep-alive, or nothing sent yet).', (s) => s.idle);
    registered.set(
      names.phase,
      new Gauge({
        name: names.phase,
        help: 'The serve/shutdown phase: 1 for the current one (stopped, serving, draining), 0 for the others.',
        labelNames: [...labelNames, 'phase'],
        registers,
        collect() {
          const { phase } = source.state();
          for (const series of phaseSeries) this.set(series.labels, series.phase === phase ? 1 : 0);
        },
      }),
    );
    gauge(names.accepting, '1 while the listener accepts new connections, else 0.', (s) => Number(s.accepting));
    counter(names.accepted, 'Connections accepted.', () => totals.accepted);
    counter(names.closedIdle, 'Connections closed with no work in progress by finished shutdowns.', () => totals.closedIdle);
    counter(
      names.drained,
      'Connections that had work in progress during a finished shutdown, finished it, then closed.',
      () => totals.drained,
    );
    counter(
      names.killed,
      "Connections destroyed with work in progress by a shutdown's deadline or force().",
      () => totals.killed,
    );
    counter(names.shutdowns, 'Finished shutdowns.', () => totals.shutdowns);
    const histogram = new Histogram({
      name: names.duration,
      help: 'Duration of finished shutdowns, from the call that started each (drain delay included) to its end, in seconds.',
      labelNames,
      buckets: [...buckets],
      registers,
      collect() {
        for (const seconds of unobserved) this.observe(labels, seconds);
        unobserved.length = 0;
      },
    });
    registered.set(names.duration, histogram);
    histogram.zero(labels);
  } catch (error) {
    unregister(registry, registered);
    throw error;
  }

  const { totals, subscription } = source.count((seconds) => unobserved.push(seconds));

  return {
    unbind() {
      subscription.unsubscribe();
      unregister(registry, registered);
    },
  };
}

/** Removes what `registered` holds from `registry`, unless the registry has since been given another metric of that name. */
function unregister(registry: Registry | Registry<OpenMetricsContentType>, registered: Map<string, Metric>): void {
  for (const [name, metric] of registered) {
    if (registry.getSingleMetric(name) === metric) registry.removeSingleMetric(name);
  }
  registered.clear();
}

interface PrometheusSettings {
  readonly registry: Registry | Registry<OpenMetricsContentType>;
  readonly prefix: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly buckets: readonly number[];
}

function readOptions(call: string, options: unknown): PrometheusSettings {
  // The reader refuses a non-object and names an unknown option (with a "did you mean"); the values
  // it has no reading for are checked here, in the same words.
  new OptionReader(call, options, ['registry', 'prefix', 'labels', 'buckets']);
  const { registry, prefix, labels, buckets } = options as Record<string, unknown>;
  const invalid = (name: string, expected: string, value: unknown): TypeError =>
    new TypeError(`rx-graceful: ${call}: options.${name} must be ${expected}, got ${describeValue(value)}`);

  if (registry !== undefined && !isRegistry(registry)) throw invalid('registry', 'a prom-client Registry', registry);
  if (prefix !== undefined && (typeof prefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix))) {
    throw invalid('prefix', 'letters, digits, "_" and ":", not starting with a digit (a Prometheus name prefix)', prefix);
  }
  return {
    registry: registry ?? register,
    prefix: prefix ?? DEFAULT_PREFIX,
    labels: readLabels(labels, invalid),
    buckets: readBuckets(buckets, invalid),
  };
}

function isRegistry(value: unknown): value is Registry {
  return (
    value !== null &&
    typeof value === 'object' &&
    ['registerMetric', 'getSingleMetric', 'removeSingleMetric'].every((name) => typeof Reflect.get(value, name) === 'function')
  );
}

type Invalid = (name: string, expected: string, value: unknown) => TypeError;

function readLabels(labels: unknown, invalid: Invalid): Readonly<Record<string, string>> {
  if (labels === undefined) return {};
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw invalid('labels', 'an object of label names and string values', labels);
  }
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(labels)) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || name.startsWith('__') || TAKEN_LABELS.includes(name)) {
      throw invalid(
        'labels',
        `label names of letters, digits and "_", not starting with a digit or "__", other than ${TAKEN_LABELS.join(' and ')}`,
        name,
      );
    }
    if (typeof value !== 'string') throw invalid(`labels.${name}`, 'a string', value);
    copy[name] = value;
  }
  return copy;
}

function readBuckets(buckets: unknown, invalid: Invalid): readonly number[] {
  if (buckets === undefined) return DURATION_BUCKETS;
  const expected = 'a non-empty array of ascending finite numbers of seconds above 0';
  if (!Array.isArray(buckets) || buckets.length === 0) throw invalid('buckets', expected, buckets);
  let previous = 0;
  for (const bound of buckets as unknown[]) {
    if (typeof bound !== 'number' || !Number.isFinite(bound) || bound <= previous) throw invalid('buckets', expected, bound);
    previous = bound;
  }
  return [...(buckets as number[])];
}
