// Type declarations for the two benchmark dependencies that ship none, limited to what bench/ uses.

declare module 'http-shutdown' {
  import type http from 'node:http';

  interface ShutdownMethods {
    /** Stops accepting, closes idle sockets now and busy ones after their response. */
    shutdown(callback?: (error?: Error) => void): void;
    /** Destroys every socket at once. */
    forceShutdown(callback?: (error?: Error) => void): void;
  }

  function addShutdown<S extends http.Server>(server: S): S & ShutdownMethods;
  export = addShutdown;
}

declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Options {
      url: string;
      connections?: number;
      duration?: number;
      pipelining?: number;
      timeout?: number;
    }
    interface Result {
      errors: number;
      timeouts: number;
      non2xx: number;
      requests: { total: number; average: number };
    }
    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop(): void;
      on(
        event: 'response',
        listener: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void,
      ): this;
      on(event: string, listener: (...args: unknown[]) => void): this;
    }
  }

  function autocannon(
    options: autocannon.Options,
    callback?: (error: Error | null, result: autocannon.Result) => void,
  ): autocannon.Instance;
  export = autocannon;
}
