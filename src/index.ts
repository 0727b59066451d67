export { GracefulServer, DEFAULT_IDLE_LINGER } from './graceful-server';
export type { GracefulOptions, WrappableServer } from './graceful-server';
export { NotReadyError } from './errors';
export { fromSignals } from './signals';
export type { ConnectionEvent } from './node/http-adapter';
export type { ShutdownResult } from './core/lifecycle';
export type { ConnState, ListenAddress, Phase, ServerState } from './core/state';
