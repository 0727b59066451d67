import type { System } from './system';
import { listenOnLoopback } from './system';

/** Node's own tools: `server.close()`, and `closeAllConnections()` at the deadline. */
export const system: System = {
  id: 'bare',
  label: `bare Node ${process.version}`,
  async start(server, { timeoutMs }) {
    const port = await listenOnLoopback(server);
    return {
      port,
      shutdown: () =>
        new Promise((resolve) => {
          const deadline = setTimeout(() => server.closeAllConnections(), timeoutMs);
          server.close(() => {
            clearTimeout(deadline);
            resolve({ killed: null, graceful: null });
          });
        }),
    };
  },
};
