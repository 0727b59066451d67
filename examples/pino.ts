// The drain report in a structured log: serve until SIGTERM or Ctrl-C, drain, then log what the
// shutdown did as one pino record, its counts as fields and a one-line summary as its message.
//
//   npx ts-node examples/pino.ts | npx pino-pretty     (PORT, default 3000)
//   curl http://127.0.0.1:3000/slow                     then Ctrl-C while it waits
import * as http from 'node:http';
import { pino } from 'pino';
import { fromSignals, GracefulServer, shutdownReport, shutdownSummary } from 'rx-graceful';

const logger = pino();
const port = Number(process.env.PORT ?? 3000);

const server = http.createServer((request, response) => {
  logger.info({ method: request.method, url: request.url }, `${request.method ?? ''} ${request.url ?? ''}`);
  setTimeout(() => response.end('done\n'), request.url === '/slow' ? 1000 : 0);
});
const graceful = new GracefulServer(server, { timeout: 10_000 });
graceful.shutdownOn(fromSignals('SIGTERM', 'SIGINT'));

async function main(): Promise<void> {
  const address = await graceful.listen({ port, host: '127.0.0.1' });
  logger.info(`serving on ${typeof address === 'string' ? address : `http://127.0.0.1:${address.port}`}`);
  const result = await graceful.wait();
  // {"level":30,...,"connections":1,"closedIdle":0,"drained":1,"killed":0,...,"msg":"shutdown: 1 connection in 873 ms — 1 drained at +873 ms"}
  logger.info(shutdownReport(result), shutdownSummary(result));
}

main().catch((error: unknown) => {
  logger.error(error);
  process.exitCode = 1;
});
