import stoppable from 'stoppable';
import type { System } from './system';
import { listenOnLoopback } from './system';

/** stoppable 1.1: `stop()` with the grace period given at wrap time. */
export const system: System = {
  id: 'stoppable',
  label: 'stoppable 1.1.0',
  async start(plain, { timeoutMs }) {
    const server = stoppable(plain, timeoutMs);
    const port = await listenOnLoopback(server);
    return {
      port,
      shutdown: () =>
        new Promise((resolve, reject) => {
          server.stop((error, gracefully) => {
            if (error) reject(error);
            else resolve({ killed: null, graceful: gracefully ?? null });
          });
        }),
    };
  },
};
