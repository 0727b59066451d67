import { Server as HttpServer } from 'node:http';
import { Socket } from 'node:net';
import { neverScheduler, warmUpCycle } from '../warm-up';
import { warmUpAcceptQueue } from './accept-queue';
import { HttpAdapter } from './http-adapter';

let warmedUp = false;

/**
 * Runs one shutdown through the HTTP adapter of a server that never listens, with three sockets that
 * never connect, once per process: one is closed as idle by a slice, one destroyed as the deadline
 * destroys a survivor, and the last closed as idle when the shutdown ends as a deadline ends it.
 *
 * Why: the core's own warm-up (warm-up.ts) runs the drain with a host that does nothing, so the
 * first real shutdown of a process still ran the adapter's side of it for the first time, where V8
 * compiles each function on its first call. In a probe with bench D's shape (2026-12-03, the
 * server on one core and its 10 clients with hung requests on the other), the deadline's turn of
 * the first shutdown spent about 1.3 ms more than that of a second shutdown in the same process in
 * rx-graceful's own code: forgetting the 10 connections 0.64-0.81 ms against 0.12-0.14, ending the
 * shutdown 0.35-0.43 against 0.04, cancelling the requests' signals 0.09-0.21 against 0.01. With
 * this, Node's close of a socket has run once too, up to the handle it does not have here, and so
 * have Node's calls that read the listener's accept queue (`warmUpAcceptQueue`): the server here
 * never listens, and has no queue to read.
 *
 * Nothing outlives the call but the sockets' `close` events, which Node emits on the next tick and
 * which find them forgotten: the server never listens and no socket has a descriptor; the scheduler
 * never fires; the hold on the event loop and the turns the shutdown asked for are cancelled when it
 * ends; the server's `emit` is put back. Nothing reaches any other server's streams.
 */
export function warmUpAdapterShutdown(): void {
  if (warmedUp) return;
  warmedUp = true;
  runAdapterWarmUp();
}

/**
 * The warm-up of `warmUpAdapterShutdown`, run every time it is called: keep-warm.ts runs it again
 * while a server serves, before V8 would drop the code it compiled.
 */
export function runAdapterWarmUp(): void {
  warmUpAcceptQueue();
  const server = new HttpServer();
  const adapter = new HttpAdapter(server, neverScheduler, undefined, () => undefined);
  const cycle = warmUpCycle(adapter);
  try {
    for (let i = 0; i < 3; i++) adapter.intercept('connection', new Socket(), undefined);
    const [closedBySlice, destroyed] = adapter.connections().map(({ id }) => id);
    cycle.serving(undefined);
    cycle.shutdown();
    if (closedBySlice !== undefined) adapter.closeIdleNow([closedBySlice]);
    if (destroyed !== undefined) adapter.destroy([destroyed]);
  } finally {
    // Ends the shutdown as a deadline does, even after a throw: its end releases the hold on the
    // event loop and cancels the turns it asked for. Outside a shutdown it does nothing.
    cycle.expire();
    adapter.restore();
  }
}
