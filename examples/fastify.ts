// Fastify 5: wrap fastify.server, and close Fastify on SIGTERM or Ctrl-C. fastify.close() calls
// server.close(), which rx-graceful turns into the graceful drain: requests in flight finish,
// answered with `Connection: close`, and Fastify's onClose hooks run once the drain is over.
//
//   npx ts-node examples/fastify.ts        (PORT, default 3000)
//   curl http://127.0.0.1:3000/work        then Ctrl-C while it works: the answer still arrives
import Fastify from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { take } from 'rxjs';
import { fromSignals, GracefulServer } from 'rx-graceful';

const port = Number(process.env.PORT ?? 3000);

async function main(): Promise<void> {
  const fastify = Fastify();
  // Fastify made its server already: wrap it now, and the graceful cycle begins when it listens.
  const graceful = new GracefulServer(fastify.server, { timeout: 10_000 });
  fastify.get('/work', async () => {
    console.log('GET /work: working for 1 s');
    await sleep(1000);
    return 'done\n';
  });
  fastify.get('/ready', (request, reply) => {
    reply.hijack(); // the probe answers on the raw response itself
    graceful.readinessProbe(request.raw, reply.raw);
  });
  fastify.addHook('onClose', (_instance, done) => {
    console.log('onClose: the drain is over; close the database here');
    done();
  });

  // The first signal starts the drain, a second one ends it at once (force()).
  graceful.shutdownOn(fromSignals('SIGTERM', 'SIGINT'));
  // The first signal also closes Fastify: its server.close() joins the drain, and its onClose hooks
  // run once the drain has finished.
  fromSignals('SIGTERM', 'SIGINT')
    .pipe(take(1))
    .subscribe({ next: () => void fastify.close(), error: (error: unknown) => console.error(error) });

  console.log(`serving on ${await fastify.listen({ port, host: '127.0.0.1' })}`);
  const { drained, killed } = await graceful.wait();
  console.log(`stopped: drained ${drained}, killed ${killed}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
