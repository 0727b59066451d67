// Fastify 5: wrap fastify.server once it listens. Then fastify.close() shuts down gracefully: it
// calls server.close(), which the wrapped server turns into the drain. Requests in flight finish.
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { filter, take } from 'rxjs';
import { GracefulServer } from '../src';

async function main(): Promise<void> {
  const fastify = Fastify();
  fastify.get('/work', async () => {
    await sleep(300);
    return 'done\n';
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  const graceful = new GracefulServer(fastify.server, { timeout: 5000 });
  // A service closes on a signal; this one closes once three requests are in flight.
  graceful.state$
    .pipe(
      filter((state) => state.active === 3),
      take(1),
    )
    .subscribe({
      next: () => void fastify.close(),
      error: (error: unknown) => console.error(error),
    });
  const { port } = fastify.server.address() as AddressInfo;
  const answers = [1, 2, 3].map(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/work`);
    await response.text();
    return `${response.status} connection: ${response.headers.get('connection') ?? 'none'}`;
  });
  for (const answer of await Promise.all(answers)) console.log(`client got ${answer}`);
  const result = await graceful.wait();
  console.log(`drained: ${result.drained} requests finished, killed ${result.killed}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
