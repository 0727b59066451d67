// node:cluster with rolling restarts and a graceful stop, losing no request under keep-alive load.
//
//   node -r ts-node/register/transpile-only examples/cluster.ts [workers]
//   kill -HUP <primary pid>    replace the workers one at a time (start the new one, then drain the old)
//   kill -TERM <primary pid>   drain every worker; the primary exits by itself once they all have
//
// Env: PORT (3000), WORKERS (2), DRAIN_DELAY in ms (500), TIMEOUT in ms (10000).
// (Ctrl-C in a terminal signals every process of the group at once: use kill -TERM instead.)
import cluster, { type Worker } from 'node:cluster';
import * as http from 'node:http';
import { concatMap, filter, firstValueFrom, fromEvent, map, race, takeUntil, tap } from 'rxjs';
import { fromSignals, GracefulServer } from 'rx-graceful';

const port = Number(process.env.PORT ?? 3000);
const workerCount = Number(process.argv[2] ?? process.env.WORKERS ?? 2);
const drainDelay = Number(process.env.DRAIN_DELAY ?? 500);
const timeout = Number(process.env.TIMEOUT ?? 10_000);

if (cluster.isPrimary) primary();
else
  worker().catch((error: unknown) => {
    console.error(`worker ${process.pid}:`, error);
    process.exitCode = 1;
    cluster.worker?.disconnect();
  });

function primary(): void {
  console.log(`primary ${process.pid}: ${workerCount} workers on 127.0.0.1:${port}`);
  const listening = new WeakSet<Worker>();
  const stopping = new Map<Worker, Promise<void>>();
  let stopped = false;
  cluster.on('listening', (worker) => listening.add(worker));
  // Node passes a null signal to a worker that exited by itself (its types say string).
  cluster.on('exit', (worker, code, signal: string | null) => {
    console.log(`primary: worker ${worker.process.pid} exited with ${signal ?? `code ${code}`}`);
    if (stopped && Object.keys(cluster.workers ?? {}).length === 0) console.log('primary: every worker has exited');
  });

  /** Resolves once `worker` listens; rejects if it exits first. */
  const whenListening = (worker: Worker): Promise<unknown> =>
    listening.has(worker)
      ? Promise.resolve()
      : firstValueFrom(
          race(
            fromEvent(worker, 'listening'),
            fromEvent(worker, 'exit').pipe(
              map(() => {
                throw new Error(`worker ${worker.process.pid} exited before listening`);
              }),
            ),
          ),
          { defaultValue: undefined }, // neither event stream ever completes
        );

  /** Tells `worker` to shut down once it listens, and resolves when it has exited (once per worker). */
  const stop = (worker: Worker): Promise<void> => {
    let exited = stopping.get(worker);
    if (exited === undefined) {
      exited = new Promise<void>((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve())));
      whenListening(worker).then(
        () => worker.isConnected() && worker.send('shutdown'),
        () => undefined,
      );
      stopping.set(worker, exited);
    }
    return exited;
  };

  const restart = async (n: number): Promise<void> => {
    console.log(`primary: restart ${n} begun`);
    for (const old of Object.values(cluster.workers ?? {})) {
      if (old === undefined || stopped) continue;
      const next = cluster.fork();
      await whenListening(next);
      await stop(old);
    }
    console.log(`primary: restart ${n} ${stopped ? 'cut short by the stop' : 'done'}`);
  };

  for (let i = 0; i < workerCount; i++) cluster.fork();
  let restarts = 0;
  // Restart on each SIGHUP until the first SIGTERM, then stop every worker.
  fromSignals('SIGHUP')
    .pipe(
      // One restart at a time: a SIGHUP during a restart waits for it.
      concatMap(() => restart(++restarts).catch((error: unknown) => console.log(`primary: restart failed: ${String(error)}`))),
      takeUntil(fromSignals('SIGTERM')),
    )
    .subscribe({
      complete: () => {
        stopped = true;
        console.log('primary: stopping every worker');
        for (const worker of Object.values(cluster.workers ?? {})) if (worker !== undefined) void stop(worker);
      },
      error: (error: unknown) => console.error('primary:', error),
    });
}

async function worker(): Promise<void> {
  const server = http.createServer((_request, response) => {
    // Pretend to work for 0–20 ms, so that requests are in flight when a shutdown begins.
    setTimeout(() => response.end(`hello from worker ${process.pid}\n`), Math.random() * 20);
  });
  const graceful = new GracefulServer(server, { drainDelay, timeout });
  const address = await graceful.listen({ port, host: '127.0.0.1' });
  console.log(`worker ${process.pid}: listening on http://127.0.0.1:${typeof address === 'string' ? address : address.port}`);
  // The primary's 'shutdown' message drains this worker (a second one would force the drain).
  // Node emits 'message' with (message, handle): keep the message.
  graceful.shutdownOn(
    fromEvent(process, 'message', (message: unknown) => message).pipe(
      filter((message) => message === 'shutdown'),
      tap(() => console.log(`worker ${process.pid}: draining`)),
    ),
  );
  const result = await graceful.wait();
  console.log(`worker ${process.pid}: drained ${JSON.stringify(result)}`);
  // The IPC channel is all that keeps a worker alive now: let go of it, and the worker exits.
  cluster.worker?.disconnect();
}
