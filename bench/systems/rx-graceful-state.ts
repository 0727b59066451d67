import { startRxGraceful } from './rx-graceful';
import type { System } from './system';

/** rx-graceful with a `state$` subscriber attached for the whole life of the server. */
export const system: System = {
  id: 'rx-graceful-state',
  label: 'rx-graceful + state$ subscriber',
  start: (server, settings) => startRxGraceful(server, settings, true),
};
