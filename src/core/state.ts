/**
 * The state of one connection, after Go's `http.ConnState`.
 *
 * - `new`: accepted, no whole request head yet (it counts as idle);
 * - `active`: at least one request in flight;
 * - `idle`: its last response has finished and it stays open (keep-alive);
 * - `hijacked`: taken over by an upgrade (WebSocket) or `CONNECT`; no longer tracked;
 * - `closed`: gone.
 */
export type ConnState = 'new' | 'active' | 'idle' | 'hijacked' | 'closed';

/**
 * The protocol a connection speaks: `http1` for HTTP/1.x (over TCP or TLS), `http2` for an HTTP/2
 * session. An HTTP/2 server speaks both with `allowHTTP1`.
 */
export type Protocol = 'http1' | 'http2';

/** Where a server is in its serve/shutdown cycle. */
export type Phase = 'stopped' | 'serving' | 'draining';

/** What a network address looks like to the core: Node's `AddressInfo` or a pipe path. */
export type ListenAddress =
  | {
      /** The IP address listened on, e.g. `'127.0.0.1'`. */
      readonly address: string;
      /** `'IPv4'` or `'IPv6'`. */
      readonly family: string;
      /** The TCP port. */
      readonly port: number;
    }
  | string;

/**
 * One change of one connection, as the core sees it: an id and a state, never a socket.
 * `previous` is the state it left (`undefined` for a connection the core has not seen yet).
 */
export interface ConnectionChange {
  /** The connection's id, unique within its server. */
  readonly id: number;
  /** The state it entered. */
  readonly state: ConnState;
  /** The state it left; `undefined` for a connection seen for the first time. */
  readonly previous: ConnState | undefined;
  /**
   * On `closed`: the protocol the connection spoke, which the drain counts it under (absent:
   * `http1`). Given once a connection, never per request.
   */
  readonly protocol?: Protocol;
}

/**
 * A snapshot of a server, as emitted by `state$`.
 * `open` counts tracked connections (not hijacked, not closed), `active` those with a request in
 * flight, `idle` is `open - active` (connections that have sent nothing count here), `killed` the
 * connections the last shutdown destroyed with work in progress.
 */
export interface ServerState {
  /** Where the serve/shutdown cycle is. */
  readonly phase: Phase;
  /** The listener accepts new connections: while serving, and during a pre-drain delay. */
  readonly accepting: boolean;
  /** Tracked connections: neither hijacked nor closed. */
  readonly open: number;
  /** Of those, the ones with a request (an HTTP/2 stream) in flight. */
  readonly active: number;
  /** `open - active`; connections that have sent nothing yet count here. */
  readonly idle: number;
  /** Destroyed with work in progress by the last shutdown's deadline or `force()`; 0 from each new serving cycle. */
  readonly killed: number;
  /** Where the server listens, once it does. */
  readonly address?: ListenAddress;
}

/** A change of the server's own lifecycle (not of a connection). */
export interface LifecycleChange {
  readonly phase: Phase;
  readonly accepting: boolean;
  readonly killed: number;
  readonly address?: ListenAddress | undefined;
}

/** What the state fold consumes: connection changes and lifecycle changes. */
export type StateEvent = ConnectionChange | LifecycleChange;

/** The state of a server that has never listened. */
export const initialState: ServerState = Object.freeze({
  phase: 'stopped',
  accepting: false,
  open: 0,
  active: 0,
  idle: 0,
  killed: 0,
});

/** True for the states that count in `ServerState.open`. */
export function isTracked(state: ConnState | undefined): boolean {
  return state === 'new' || state === 'active' || state === 'idle';
}

/**
 * One step of the fold that turns events into `ServerState`: `scan(foldState, initialState)`.
 * Returns the same object when the event changes nothing, so `distinctUntilChanged()` with its
 * default reference comparison emits only real changes.
 *
 * @example
 * changes$.pipe(scan(foldState, initialState), distinctUntilChanged())
 */
export function foldState(state: ServerState, event: StateEvent): ServerState {
  if ('id' in event) {
    const open = state.open + Number(isTracked(event.state)) - Number(isTracked(event.previous));
    const active = state.active + Number(event.state === 'active') - Number(event.previous === 'active');
    if (open === state.open && active === state.active) return state;
    return makeState(state.phase, state.accepting, open, active, state.killed, state.address);
  }
  if (
    event.phase === state.phase &&
    event.accepting === state.accepting &&
    event.killed === state.killed &&
    event.address === state.address
  ) {
    return state;
  }
  return makeState(event.phase, event.accepting, state.open, state.active, event.killed, event.address);
}

/** Builds a state with one fixed shape (a literal, not a spread: this runs on every request). */
function makeState(
  phase: Phase,
  accepting: boolean,
  open: number,
  active: number,
  killed: number,
  address: ListenAddress | undefined,
): ServerState {
  const idle = open - active;
  return address === undefined
    ? { phase, accepting, open, active, idle, killed }
    : { phase, accepting, open, active, idle, killed, address };
}
