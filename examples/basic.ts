// The seed example: serve, shut down after one second, wait for the drain, print OK.
import * as http from 'node:http';
import { GracefulServer } from 'rx-graceful';

const server = http.createServer((_request, response) => response.end('hello\n'));
const graceful = new GracefulServer(server, { timeout: 5000 });

async function main(): Promise<void> {
  setTimeout(() => graceful.shutdown(), 1000);
  await graceful.serve(0);
  await graceful.wait();
  console.log('OK');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
