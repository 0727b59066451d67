// Express 5: wrap the server that app.listen() returns. Requests in flight at the shutdown finish.
import express from 'express';
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { GracefulServer } from '../src';

const app = express();
app.get('/work', async (_request, response) => {
  await sleep(300);
  response.send('done\n');
});

const server = app.listen(0, '127.0.0.1', async () => {
  const graceful = new GracefulServer(server, { timeout: 5000 });
  const { port } = server.address() as import('node:net').AddressInfo;
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
});
