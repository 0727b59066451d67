// WebSockets on shutdown: every client gets close code 1001 (going away), and the drain ends
// when they are gone. `waitForHijacked` makes the drain wait for upgraded sockets.
import * as http from 'node:http';
import { filter, take, takeUntil } from 'rxjs';
import { WebSocket, WebSocketServer } from 'ws';
import { GracefulServer } from '../src';

const server = http.createServer((_request, response) => response.end('hello\n'));
const wss = new WebSocketServer({ server });
const graceful = new GracefulServer(server, { timeout: 5000, waitForHijacked: true });

// When the shutdown begins, say goodbye properly to every WebSocket client.
graceful.state$
  .pipe(
    filter((state) => state.phase === 'draining'),
    take(1),
  )
  .subscribe({
    next: () => {
      console.log(`server: shutting down, closing ${wss.clients.size} WebSockets with 1001`);
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
    next: (event) => console.log(`server: connection ${event.id} ${event.state}`),
    error: (error: unknown) => console.error(error),
  });

async function main(): Promise<void> {
  const address = await graceful.listen({ port: 0, host: '127.0.0.1' });
  const port = typeof address === 'string' ? 0 : address.port;
  const clients = await Promise.all(
    ['a', 'b', 'c'].map(
      (name) =>
        new Promise<WebSocket>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}`);
          ws.on('open', () => resolve(ws));
          ws.on('close', (code, reason) => console.log(`client ${name}: closed with ${code} (${String(reason)})`));
        }),
    ),
  );
  console.log(`${clients.length} WebSocket clients connected; shutting down`);
  graceful.shutdown();
  const result = await graceful.wait();
  console.log(`drained in ${result.durationMs} ms: ${result.hijacked} WebSockets, killed ${result.killed}`);
  wss.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
