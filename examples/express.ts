// Express 5: wrap the server that app.listen() returns, and shut down on SIGTERM or Ctrl-C.
// Requests in flight at the signal finish, answered with `Connection: close`; /ready answers 200
// while serving and 503 from the first instant of the shutdown.
//
//   npx ts-node examples/express.ts        (PORT, default 3000)
//   curl http://127.0.0.1:3000/work        then Ctrl-C while it works: the answer still arrives
import express from 'express';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromSignals, GracefulServer } from 'rx-graceful';

const port = Number(process.env.PORT ?? 3000);

const app = express();
app.get('/work', async (_request, response) => {
  console.log('GET /work: working for 1 s');
  await sleep(1000);
  response.send('done\n');
});

// app.listen() returns before the server listens: the graceful cycle begins when it does.
const server = app.listen(port, '127.0.0.1');
const graceful = new GracefulServer(server, { timeout: 10_000 });
graceful.shutdownOn(fromSignals('SIGTERM', 'SIGINT')); // a second signal ends the drain at once
app.get('/ready', graceful.readinessProbe);

server.once('listening', () => {
  const address = server.address();
  console.log(`serving on ${typeof address === 'string' ? address : `http://127.0.0.1:${address?.port ?? port}`}`);
});
graceful.wait().then(
  ({ drained, killed }) => console.log(`stopped: drained ${drained}, killed ${killed}`),
  (error: unknown) => console.error(error),
);
