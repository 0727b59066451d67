import withShutdown from 'http-shutdown';
import type { System } from './system';
import { listenOnLoopback } from './system';

/** http-shutdown 1.2: `shutdown()`, and `forceShutdown()` at the deadline (it has no timeout of its own). */
export const system: System = {
  id: 'http-shutdown',
  label: 'http-shutdown 1.2.2',
  async start(plain, { timeoutMs }) {
    const server = withShutdown(plain);
    const port = await listenOnLoopback(server);
    return {
      port,
      shutdown: () =>
        new Promise((resolve) => {
          const deadline = setTimeout(() => server.forceShutdown(), timeoutMs);
          server.shutdown(() => {
            clearTimeout(deadline);
            resolve({ killed: null, graceful: null });
          });
        }),
    };
  },
};
