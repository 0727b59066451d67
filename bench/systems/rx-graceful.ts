import type http from 'node:http';
import { GracefulServer, type GracefulOptions, type ServerState } from '../../src';
import type { RunningSystem, StartSettings, System } from './system';

/**
 * rx-graceful as a user would run it. `observeState` attaches a `state$` subscriber that keeps
 * the latest state, as a metrics exporter would; the figures then include what observing costs.
 */
export async function startRxGraceful(server: http.Server, settings: StartSettings, observeState: boolean): Promise<RunningSystem> {
  // The `--rx-*` options are passed through untyped so an option can be measured before the
  // contract names it (idleLinger, drainDelay, ...); the library validates them.
  const options = { ...settings.options, timeout: settings.timeoutMs } as GracefulOptions;
  const graceful = new GracefulServer(server, options);
  if (observeState) {
    // What a gauge exporter does: keep the newest state for the next scrape.
    let latest: ServerState | undefined;
    graceful.state$.subscribe((state) => {
      latest = state;
    });
  }
  const address = await graceful.listen({ port: 0, host: '127.0.0.1' });
  if (typeof address === 'string') throw new Error(`expected a TCP address, got ${address}`);
  return {
    port: address.port,
    shutdown: async () => {
      graceful.shutdown();
      const result = await graceful.wait();
      return { killed: result.killed, graceful: null };
    },
  };
}

export const system: System = {
  id: 'rx-graceful',
  label: 'rx-graceful (no subscriber)',
  start: (server, settings) => startRxGraceful(server, settings, false),
};
