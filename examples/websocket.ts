// WebSockets on SIGTERM or Ctrl-C: every client gets close code 1001 (going away), and the drain
// ends when they are gone. `waitForHijacked` makes the drain wait for upgraded sockets (and
// destroy and count those still open at the timeout).
//
//   npx ts-node examples/websocket.ts      (PORT, default 3000)
//   then connect a WebSocket client to ws://127.0.0.1:3000, and Ctrl-C the server
import * as http from 'node:http';
import { filter, take, takeUntil } from 'rxjs';
import { fromSignals, GracefulServer } from 'rx-graceful';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 3000);

const server = http.createServer((_request, response) => response.end('hello\n'));
const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => ws.send('hello'));
const graceful = new GracefulServer(server, { timeout: 5000, waitForHijacked: true });
graceful.shutdownOn(fromSignals('SIGTERM', 'SIGINT'));

// When the shutdown begins, say goodbye properly to every WebSocket client.
graceful.state$
  .pipe(
    filter((state) => state.phase === 'draining'),
    take(1),
  )
  .subscribe({
    next: () => {
      console.log(`shutting down: closing ${wss.clients.size} WebSockets with 1001`);
      for (const ws of wss.clients) ws.close(1001, 'server going away');
    },
    error: (error: unknown) => console.error(error),
  });
// What happens to the connections, until the shutdown is done.
graceful.connections$
  .pipe(
    filter((event) => event.state === 'hijacked' || event.state === 'closed'),
    takeUntil(graceful.done$),
  )
  .subscribe({
    next: (event) => console.log(`connection ${event.id} ${event.state}`),
    error: (error: unknown) => console.error(error),
  });

async function main(): Promise<void> {
  const address = await graceful.listen({ port, host: '127.0.0.1' });
  console.log(`serving on ${typeof address === 'string' ? address : `ws://127.0.0.1:${address.port}`}`);
  const result = await graceful.wait();
  console.log(`drained in ${Math.round(result.durationMs)} ms: ${result.hijacked} WebSockets, killed ${result.killed}`);
  wss.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
