// Fastify 5: wrap fastify.server once it listens. Requests in flight at the shutdown finish.
import Fastify from 'fastify';
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { GracefulServer } from '../src';

async function main(): Promise<void> {
  const fastify = Fastify();
  fastify.get('/work', async () => {
    await sleep(300);
    return 'done\n';
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  const graceful = new GracefulServer(fastify.server, { timeout: 5000 });
  const { port } = fastify.server.address() as import('node:net').AddressInfo;
  const answers = [1, 2, 3].map(
    () =>
      new Promise<string>((resolve) =>
        http.get({ host: '127.0.0.1', port, path: '/work' }, (res) => {
          res.resume();
          res.on('end', () => resolve(`${res.statusCode} connection: ${res.headers.connection}`));
        }),
      ),
  );
  await firstValueFrom(graceful.state$.pipe(filter((state) => state.active === 3))); // all three in flight
  graceful.shutdown();
  for (const answer of await Promise.all(answers)) console.log(`client got ${answer}`);
  const result = await graceful.wait();
  console.log(`drained: ${result.drained} requests finished, killed ${result.killed}`);
  await fastify.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
