// Type declarations for the two harness dependencies that ship none, limited to what harness/ uses.

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
    type Options = { url: string; connections?: number; duration?: number };
    type Result = { errors: number; timeouts: number; non2xx: number };
    interface Instance extends EventEmitter, PromiseLike<Result> {
      on(
        event: 'response',
        listener: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void,
      ): this;
    }
  }

  function autocannon(options: autocannon.Options): autocannon.Instance;
  export = autocannon;
}
