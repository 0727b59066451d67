// The main of a service: serve until SIGTERM (Kubernetes, systemd, docker stop) or Ctrl-C, then
// drain and exit by itself. A second signal ends the drain at once: survivors are destroyed and
// counted.
//
//   npx ts-node examples/main.ts           (PORT, default 3000)
//   curl http://127.0.0.1:3000/slow        then Ctrl-C while it waits: the answer still arrives
import * as http from 'node:http';
import { fromSignals, GracefulServer } from 'rx-graceful';

const port = Number(process.env.PORT ?? 3000);

const server = http.createServer((request, response) => {
  console.log(`${request.method ?? ''} ${request.url ?? ''}`);
  setTimeout(() => response.end('done\n'), request.url === '/slow' ? 2000 : 0);
});
// Requests still running 10 s after the signal are cut; `timeout: 0` (the default) waits forever.
const graceful = new GracefulServer(server, { timeout: 10_000 });
graceful.shutdownOn(fromSignals('SIGTERM', 'SIGINT'));

async function main(): Promise<void> {
  const address = await graceful.listen({ port, host: '127.0.0.1' });
  console.log(`serving on ${typeof address === 'string' ? address : `http://127.0.0.1:${address.port}`}`);
  const { durationMs, drained, killed } = await graceful.wait();
  console.log(`stopped in ${Math.round(durationMs)} ms: drained ${drained}, killed ${killed}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
