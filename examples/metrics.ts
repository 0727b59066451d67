// Prometheus metrics of the server's connections and shutdowns, next to the application's own, on
// GET /metrics; SIGTERM or Ctrl-C drains and exits by itself.
//
//   npx ts-node examples/metrics.ts           (PORT, default 3000)
//   curl http://127.0.0.1:3000/metrics        rx_graceful_connections_open, rx_graceful_phase{phase="serving"}, ...
import * as http from 'node:http';
import { register } from 'prom-client';
import { fromSignals, GracefulServer } from 'rx-graceful';
import { bindPrometheus } from 'rx-graceful/prometheus';

const port = Number(process.env.PORT ?? 3000);

const server = http.createServer((request, response) => {
  if (request.url !== '/metrics') {
    response.end('hello\n');
    return;
  }
  register.metrics().then(
    (text) => {
      response.setHeader('content-type', register.contentType);
      response.end(text);
    },
    (error: unknown) => {
      response.statusCode = 500;
      response.end(String(error));
    },
  );
});
const graceful = new GracefulServer(server, { timeout: 10_000 });
const metrics = bindPrometheus(graceful, { registry: register });
graceful.shutdownOn(fromSignals('SIGTERM', 'SIGINT'));

async function main(): Promise<void> {
  const address = await graceful.listen({ port, host: '127.0.0.1' });
  console.log(`serving on ${typeof address === 'string' ? address : `http://127.0.0.1:${address.port}`}`);
  const { closedIdle, drained, killed } = await graceful.wait();
  console.log(`stopped: closed idle ${closedIdle}, drained ${drained}, killed ${killed}`);
  metrics.unbind();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
