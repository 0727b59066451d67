import { createHttpTerminator } from 'http-terminator';
import type { System } from './system';
import { listenOnLoopback } from './system';

/** http-terminator 3.2: `terminate()` with `gracefulTerminationTimeout`. */
export const system: System = {
  id: 'http-terminator',
  label: 'http-terminator 3.2.0',
  async start(server, { timeoutMs }) {
    const terminator = createHttpTerminator({ server, gracefulTerminationTimeout: timeoutMs });
    const port = await listenOnLoopback(server);
    return {
      port,
      shutdown: async () => {
        await terminator.terminate();
        return { killed: null, graceful: null };
      },
    };
  },
};
