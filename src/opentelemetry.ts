import { metrics, ValueType } from '@opentelemetry/api';
import type {
  Attributes,
  AttributeValue,
  BatchObservableResult,
  Meter,
  MeterProvider,
  Observable as Instrument,
} from '@opentelemetry/api';
import { describeValue } from './errors';
import { GracefulServer } from './graceful-server';
import { GracefulGroup } from './group';
import { DURATION_BUCKETS, metricsSourceOf, PHASES } from './metrics-source';
import { OptionReader } from './options';

// rx-graceful/opentelemetry: @opentelemetry/api is an optional peer dependency, loaded by this
// subpath only; nothing the package root loads may import this file.

/**
 * Options of `bindOpenTelemetry`.
 *
 * @example
 * bindOpenTelemetry(graceful, { meter: meterProvider, attributes: { 'server.port': 8080 } });
 */
export interface OpenTelemetryOptions {
  /**
   * The `Meter` the instruments are created with, or a `MeterProvider` to take the meter
   * `rx-graceful` from (default: the global `MeterProvider` of `@opentelemetry/api`, as registered
   * by the SDK's setup; bind after that setup, or nothing is recorded).
   */
  meter?: Meter | MeterProvider;
  /**
   * Attributes put on every measurement, e.g. `{ 'server.port': 8080 }`. Two bindings on one meter
   * need different attributes (or bind a `GracefulGroup`). The names this module sets itself
   * (`http.connection.state`, `rx_graceful.server.phase`, `rx_graceful.connection.outcome`) are taken.
   */
  attributes?: Attributes;
}

/**
 * What `bindOpenTelemetry` returns: the handle that ends the binding.
 *
 * @example
 * const telemetry = bindOpenTelemetry(graceful, { meter });
 * await graceful.wait();
 * telemetry.unbind();
 */
export interface OpenTelemetryBinding {
  /**
   * Ends the binding: removes its collection callback from the meter and unsubscribes from the
   * server or group. The instruments stay in the meter (OpenTelemetry cannot remove one): the
   * observable ones report nothing more, the duration histogram keeps what it has recorded and
   * records nothing more. A second call does nothing.
   */
  unbind(): void;
}

/** The instrument names, in the `rx_graceful` namespace: no semantic convention covers a server's connections or its shutdowns. */
const NAMES = {
  connections: 'rx_graceful.connection.count',
  phase: 'rx_graceful.server.phase',
  accepting: 'rx_graceful.server.accepting',
  accepted: 'rx_graceful.accepted_connections',
  closed: 'rx_graceful.shutdown.closed_connections',
  shutdowns: 'rx_graceful.shutdowns',
  duration: 'rx_graceful.shutdown.duration',
} as const;

/** The attribute names this module sets itself. */
const CONNECTION_STATE = 'http.connection.state';
const PHASE = 'rx_graceful.server.phase';
const OUTCOME = 'rx_graceful.connection.outcome';
const TAKEN_ATTRIBUTES: readonly string[] = [CONNECTION_STATE, PHASE, OUTCOME];

/** The attribute sets bound on each meter, so that a second binding with the same ones is refused. */
const boundAttributes = new WeakMap<Meter, Set<string>>();

/**
 * Binds a `GracefulServer` (or a `GracefulGroup`) to OpenTelemetry metrics: it creates the
 * instruments below with `meter`, and keeps them current until `unbind()`. Every measurement
 * carries `attributes`.
 *
 * It costs requests nothing: one batch callback reads the observable instruments when the SDK
 * collects, the state from `state$` (which replays it: the binding subscribes for that one read
 * and unsubscribes at once); the accepted counter listens to the server's `connection` event (once
 * a connection), and the shutdown counters and the histogram to `done$` (once a shutdown).
 *
 * Observable instruments:
 * - `rx_graceful.connection.count` (UpDownCounter, `{connection}`): open connections by
 *   `http.connection.state` = `active` (a request or HTTP/2 stream in flight) or `idle`; their sum
 *   is the open connections. After `db.client.connection.count`; the attribute is the semantic
 *   conventions' own (defined for client pools, with the same two values);
 * - `rx_graceful.server.phase` (UpDownCounter, `{server}`): 1 for the current phase, 0 for the others,
 *   by `rx_graceful.server.phase` = `stopped`, `serving` or `draining`: the conventions' status
 *   metric, as `k8s.namespace.phase`;
 * - `rx_graceful.server.accepting` (UpDownCounter, `{server}`): 1 while the listener accepts, else 0;
 * - `rx_graceful.accepted_connections` (Counter, `{connection}`): connections accepted (reported
 *   `new` on `connections$`), named as `kestrel.rejected_connections`;
 * - `rx_graceful.shutdown.closed_connections` (Counter, `{connection}`): the connections finished
 *   shutdowns ended, by `rx_graceful.connection.outcome` = `closed_idle`, `drained` or `killed` (the
 *   `closedIdle`, `drained` and `killed` of each `done$`, added when the shutdown finishes);
 * - `rx_graceful.shutdowns` (Counter, `{shutdown}`): finished shutdowns.
 *
 * Histogram `rx_graceful.shutdown.duration` (`s`): each finished shutdown's `durationMs`, in
 * seconds, after `http.server.request.duration`.
 *
 * No semantic convention covers a server's open connections, its phase or its shutdowns (the
 * connection metrics that exist are Kestrel's own, or a client's): the names are in the
 * `rx_graceful` namespace, following the conventions' naming rules.
 *
 * For a `GracefulGroup`, the observed state is the group's `state$` (counts summed over the
 * members, the combined phase), the connection counters sum the members' (every shutdown of a
 * member counts, also one it ran on its own), and `rx_graceful.shutdowns` and the histogram count
 * the group's own shutdowns (its `done$`).
 *
 * Throws a `TypeError` for a target that is neither a `GracefulServer` nor a `GracefulGroup`, an
 * unknown option name, a `meter` that is neither a `Meter` nor a `MeterProvider`, bad attributes,
 * or attributes another binding on the same meter already uses.
 *
 * @example
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * import { GracefulServer } from 'rx-graceful';
 * import { bindOpenTelemetry } from 'rx-graceful/opentelemetry';
 *
 * const meterProvider = new MeterProvider({ readers: [reader] });
 * const graceful = new GracefulServer(server, { timeout: 10_000 });
 * const telemetry = bindOpenTelemetry(graceful, { meter: meterProvider, attributes: { 'service.component': 'api' } });
 * // ... later, when the metrics are no longer wanted:
 * telemetry.unbind();
 */
export function bindOpenTelemetry(
  target: GracefulServer | GracefulGroup,
  options: OpenTelemetryOptions = {},
): OpenTelemetryBinding {
  const call = 'bindOpenTelemetry(target, options)';
  const source = metricsSourceOf(target, call);
  const { meter, attributes } = readOptions(call, options);
  const key = attributesKey(attributes);
  const bound = boundAttributes.get(meter) ?? new Set<string>();
  if (bound.has(key)) {
    throw new TypeError(
      `rx-graceful: ${call}: this meter already has a binding with the attributes ${key}; give each server its own attributes (e.g. { 'server.port': 8080 }), or bind a GracefulGroup of them`,
    );
  }

  const counts = { valueType: ValueType.INT };
  const connections = meter.createObservableUpDownCounter(NAMES.connections, {
    ...counts,
    unit: '{connection}',
    description: `Open connections, by ${CONNECTION_STATE}: active (a request in flight) or idle.`,
  });
  const phase = meter.createObservableUpDownCounter(NAMES.phase, {
    ...counts,
    unit: '{server}',
    description: `1 for the current serve/shutdown phase (${PHASE}: stopped, serving, draining), 0 for the others.`,
  });
  const accepting = meter.createObservableUpDownCounter(NAMES.accepting, {
    ...counts,
    unit: '{server}',
    description: '1 while the listener accepts new connections, else 0.',
  });
  const accepted = meter.createObservableCounter(NAMES.accepted, {
    ...counts,
    unit: '{connection}',
    description: 'Connections accepted.',
  });
  const closed = meter.createObservableCounter(NAMES.closed, {
    ...counts,
    unit: '{connection}',
    description: `Connections ended by finished shutdowns, by ${OUTCOME}: closed_idle, drained or killed.`,
  });
  const shutdowns = meter.createObservableCounter(NAMES.shutdowns, {
    ...counts,
    unit: '{shutdown}',
    description: 'Finished shutdowns.',
  });
  const duration = meter.createHistogram(NAMES.duration, {
    unit: 's',
    description: 'Duration of finished shutdowns, from the call that started each (drain delay included) to its end.',
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
  });

  const plus = (name: string, value: AttributeValue): Attributes => ({ ...attributes, [name]: value });
  const activeAttributes = plus(CONNECTION_STATE, 'active');
  const idleAttributes = plus(CONNECTION_STATE, 'idle');
  const phaseAttributes = PHASES.map((p) => ({ phase: p, attributes: plus(PHASE, p) }));
  const closedIdleAttributes = plus(OUTCOME, 'closed_idle');
  const drainedAttributes = plus(OUTCOME, 'drained');
  const killedAttributes = plus(OUTCOME, 'killed');

  const instruments: Instrument[] = [connections, phase, accepting, accepted, closed, shutdowns];
  const observe = (result: BatchObservableResult): void => {
    const state = source.state();
    result.observe(connections, state.active, activeAttributes);
    result.observe(connections, state.idle, idleAttributes);
    for (const p of phaseAttributes) result.observe(phase, p.phase === state.phase ? 1 : 0, p.attributes);
    result.observe(accepting, state.accepting ? 1 : 0, attributes);
    result.observe(accepted, totals.accepted, attributes);
    result.observe(closed, totals.closedIdle, closedIdleAttributes);
    result.observe(closed, totals.drained, drainedAttributes);
    result.observe(closed, totals.killed, killedAttributes);
    result.observe(shutdowns, totals.shutdowns, attributes);
  };

  const { totals, subscription } = source.count((seconds) => duration.record(seconds, attributes));
  meter.addBatchObservableCallback(observe, instruments);
  bound.add(key);
  boundAttributes.set(meter, bound);

  let ended = false;
  return {
    unbind() {
      if (ended) return;
      ended = true;
      meter.removeBatchObservableCallback(observe, instruments);
      subscription.unsubscribe();
      bound.delete(key);
    },
  };
}

interface OpenTelemetrySettings {
  readonly meter: Meter;
  readonly attributes: Attributes;
}

function readOptions(call: string, options: unknown): OpenTelemetrySettings {
  // The reader refuses a non-object and names an unknown option (with a "did you mean"); the values
  // it has no reading for are checked here, in the same words.
  new OptionReader(call, options, ['meter', 'attributes']);
  const { meter, attributes } = options as Record<string, unknown>;
  const invalid = (name: string, expected: string, value: unknown): TypeError =>
    new TypeError(`rx-graceful: ${call}: options.${name} must be ${expected}, got ${describeValue(value)}`);

  let chosen: Meter;
  if (meter === undefined) chosen = metrics.getMeter('rx-graceful');
  else if (isMeterProvider(meter)) chosen = meter.getMeter('rx-graceful');
  else if (isMeter(meter)) chosen = meter;
  else throw invalid('meter', 'an OpenTelemetry Meter or MeterProvider', meter);

  if (attributes === undefined) return { meter: chosen, attributes: {} };
  if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) {
    throw invalid('attributes', 'an object of attribute names and values', attributes);
  }
  const copy: Attributes = {};
  for (const [name, value] of Object.entries(attributes)) {
    if (name === '' || TAKEN_ATTRIBUTES.includes(name)) {
      throw invalid('attributes', `attribute names other than "" and ${TAKEN_ATTRIBUTES.join(', ')}`, name);
    }
    if (!isAttributeValue(value)) {
      throw invalid(`attributes["${name}"]`, 'a string, a finite number, a boolean, or an array of one of those', value);
    }
    copy[name] = value;
  }
  return { meter: chosen, attributes: copy };
}

function isMeterProvider(value: unknown): value is MeterProvider {
  return hasMethods(value, ['getMeter']);
}

function isMeter(value: unknown): value is Meter {
  return hasMethods(value, [
    'createObservableUpDownCounter',
    'createObservableCounter',
    'createHistogram',
    'addBatchObservableCallback',
    'removeBatchObservableCallback',
  ]);
}

function hasMethods(value: unknown, names: readonly string[]): boolean {
  return value !== null && typeof value === 'object' && names.every((name) => typeof Reflect.get(value, name) === 'function');
}

function isAttributeValue(value: unknown): value is AttributeValue {
  const primitive = (v: unknown): boolean =>
    typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
  if (Array.isArray(value)) {
    const items = value as unknown[];
    return items.every(primitive) && new Set(items.map((item) => typeof item)).size <= 1;
  }
  return primitive(value);
}

/** The same text for the same attributes, whatever the order of their names. */
function attributesKey(attributes: Attributes): string {
  return JSON.stringify(Object.fromEntries(Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}
