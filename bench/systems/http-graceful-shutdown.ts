import gracefulShutdown from 'http-graceful-shutdown';
import type { System } from './system';
import { listenOnLoopback } from './system';

/**
 * http-graceful-shutdown 4.0, triggered by the function it returns. No signals (it would add
 * process listeners) and no `forceExit` (it would call `process.exit`, and D asks whether
 * the process exits by itself).
 */
export const system: System = {
  id: 'http-graceful-shutdown',
  label: 'http-graceful-shutdown 4.0.0',
  async start(server, { timeoutMs }) {
    const shutdown = gracefulShutdown(server, { signals: '', timeout: timeoutMs, forceExit: false });
    const port = await listenOnLoopback(server);
    return {
      port,
      shutdown: async () => {
        await shutdown();
        return { killed: null, graceful: null };
      },
    };
  },
};
