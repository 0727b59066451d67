// abortSignal(req): slow work gives up before the deadline, and the client gets a 503 it can
// retry instead of a cut connection. The handler passes the request's signal to `fetch` (an
// upstream that takes 5 s) and to a slow query. On SIGTERM or Ctrl-C, requests in flight get
// `timeout - cancelAhead` = 1 s to finish; then their signals abort, and the handler still has
// `cancelAhead` = 1 s to answer before the connection would be destroyed. The signal also aborts
// when the client goes away, and at a second signal (force()).
//
//   npx ts-node examples/abort.ts          (PORT, default 3000)
//   curl -i http://127.0.0.1:3000/report   then Ctrl-C: a second later, 503
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromSignals, GracefulServer, RequestAbortedError } from 'rx-graceful';

const port = Number(process.env.PORT ?? 3000);

// A slow service this one calls (in this process here, for the example's sake).
const upstream = http.createServer((_request, response) => {
  const answer = setTimeout(() => response.end('{"total": 42}'), 5000);
  response.on('close', () => clearTimeout(answer)); // the caller gave up
});

/** A slow database query that stops when `signal` aborts, as a driver that takes a signal does. */
function query(sql: string, signal: AbortSignal): Promise<string> {
  return sleep(4000, `${sql}: 3 rows`, { signal });
}

async function report(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  const signal = graceful.abortSignal(request);
  console.log(`${request.url ?? ''}: asking the upstream and the database`);
  try {
    const { port: upstreamPort } = upstream.address() as AddressInfo;
    const [total, rows] = await Promise.all([
      fetch(`http://127.0.0.1:${upstreamPort}/total`, { signal }).then((answer) => answer.text()),
      query('SELECT * FROM orders', signal),
    ]);
    response.end(`${total}\n${rows}\n`);
  } catch (error) {
    // The reason says why: 'deadline' (cancelAhead before it), 'forced' or 'client-gone'.
    if (!(signal.reason instanceof RequestAbortedError)) throw error;
    console.log(`${request.url ?? ''}: aborted (${signal.reason.kind}); answering 503`);
    response.writeHead(503, { 'retry-after': '1' }).end('shutting down, try again\n');
  }
}

const server = http.createServer((request, response) => {
  report(request, response).catch((error: unknown) => {
    console.error(error);
    response.writeHead(500).end();
  });
});
const graceful = new GracefulServer(server, { timeout: 2000, cancelAhead: 1000 });
graceful.shutdownOn(fromSignals('SIGTERM', 'SIGINT'));

async function main(): Promise<void> {
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const address = await graceful.listen({ port, host: '127.0.0.1' });
  console.log(`serving on ${typeof address === 'string' ? address : `http://127.0.0.1:${address.port}`}`);
  const { drained, killed } = await graceful.wait();
  console.log(`stopped: drained ${drained}, killed ${killed}`);
  upstream.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
