// Express 5: wrap the server that app.listen() returns. Requests in flight at the shutdown finish.
import express from 'express';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { filter, take } from 'rxjs';
import { GracefulServer } from '../src';

const app = express();
app.get('/work', async (_request, response) => {
  await sleep(300);
  response.send('done\n');
});

async function main(): Promise<void> {
  // app.listen() returns before the server listens: the graceful cycle begins when it does.
  const graceful = new GracefulServer(app.listen(0, '127.0.0.1'), { timeout: 5000 });
  await once(graceful.server, 'listening');
  // A service shuts down on a signal: fromSignals('SIGTERM').pipe(take(1)).subscribe(graceful.shutdown$).
  // This one shuts down once three requests are in flight.
  graceful.state$
    .pipe(
      filter((state) => state.active === 3),
      take(1),
    )
    .subscribe(graceful.shutdown$);
  const { port } = graceful.server.address() as AddressInfo;
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
