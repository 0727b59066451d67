// `npm start`: a graceful shutdown, live. Three keep-alive clients talk to a server; two of
// them are waiting for a slow answer when the shutdown comes: a real SIGTERM, which the demo
// sends itself at 1 s as an orchestrator would. The server's state$ is printed as it changes,
// each request when its client sends it and again when the answer arrives, and at the end the
// drain report (shutdownSummary) and what was lost: nothing.
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { distinctUntilChanged, map } from 'rxjs';
import { fromSignals, GracefulServer, shutdownSummary } from 'rx-graceful';

const SLOW_MS = 800; // how long /slow takes to answer
const SHUTDOWN_AT_MS = 1000;
const TIMEOUT_MS = 3000; // survivors would be destroyed this long after the shutdown

// Who asks what, and when (ms after start). Each client has one keep-alive connection.
const plan = [
  { client: 'A', at: 100, path: '/fast' },
  { client: 'B', at: 150, path: '/fast' },
  { client: 'C', at: 200, path: '/fast' },
  { client: 'A', at: 300, path: '/fast' },
  { client: 'C', at: 400, path: '/fast' },
  { client: 'B', at: 500, path: '/slow' }, // still running at the shutdown
  { client: 'A', at: 650, path: '/slow' }, // still running at the shutdown
];

const started = performance.now();
const now = (): string => `${Math.round(performance.now() - started)} ms`.padStart(8);

let received = 0; // requests that reached the handler
const server = http.createServer((request, response) => {
  received += 1;
  const delay = request.url === '/slow' ? SLOW_MS : 0;
  setTimeout(() => response.end(`${request.url} done\n`), delay);
});
const graceful = new GracefulServer(server, { timeout: TIMEOUT_MS });
graceful.shutdownOn(fromSignals('SIGTERM', 'SIGINT'));

console.log(`A server with 3 keep-alive clients (A, B, C); /slow takes ${SLOW_MS} ms; SIGTERM at ${SHUTDOWN_AT_MS} ms.`);
console.log('open: connections; active: with a request in flight; idle: kept alive, waiting for a request.');
console.log('Once the shutdown starts, an idle connection lingers up to 1 s (idleLinger) before it is closed,');
console.log('so that a request its client has already sent is served instead of cut.\n');
const serverColumn = 52; // wide enough for a state line; the clients' answers go to its right
console.log(`    time  ${'server (state$)'.padEnd(serverColumn)}clients (each request as sent, then as answered)`);

const timeline = graceful.state$
  .pipe(
    map(
      (state) =>
        `${state.phase.padEnd(8)}  accepting: ${state.accepting ? 'yes' : 'no '}  ` +
        `open ${state.open}  active ${state.active}  idle ${state.idle}`,
    ),
    distinctUntilChanged(), // a change we do not show (the address, say) prints nothing
  )
  .subscribe({
    next: (line) => console.log(`${now()}  ${line}`),
    error: (error: unknown) => console.error(error),
  });

interface Answer {
  ok: boolean;
  text: string;
}

function get(agent: http.Agent, port: number, path: string): Promise<Answer> {
  // A new Promise, not an async function: the request goes out before get() returns.
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({
          ok: response.statusCode === 200 && body === `${path} done\n`,
          text: `${response.statusCode} (connection: ${response.headers.connection ?? 'none'})`,
        }),
      );
      response.on('error', (error) => resolve({ ok: false, text: `failed: ${error.message}` }));
    });
    request.on('error', (error) => resolve({ ok: false, text: `failed: ${error.message}` }));
  });
}

async function main(): Promise<void> {
  const address = await graceful.listen({ host: '127.0.0.1', port: 0 });
  if (typeof address === 'string') throw new Error(`expected a TCP address, got ${address}`);

  const agents = new Map(['A', 'B', 'C'].map((client) => [client, new http.Agent({ keepAlive: true, maxSockets: 1 })]));
  const answers = plan.map(async ({ client, at, path }) => {
    await sleep(at);
    const request = `${client}: GET ${path.padEnd(5)}`;
    const sentAt = now();
    console.log(`${sentAt}  ${''.padEnd(serverColumn)}${request}  sent`);
    const answer = await get(agents.get(client) ?? http.globalAgent, address.port, path);
    console.log(`${now()}  ${''.padEnd(serverColumn)}${request}  -> ${answer.text}, sent at ${sentAt.trim()}`);
    return answer;
  });

  await sleep(SHUTDOWN_AT_MS);
  console.log(`${now()}  ---- SIGTERM: stop accepting, close idle connections, let requests in flight finish ----`);
  process.kill(process.pid, 'SIGTERM');
  const result = await graceful.wait();
  const answered = (await Promise.all(answers)).filter((answer) => answer.ok).length;
  timeline.unsubscribe();
  for (const agent of agents.values()) agent.destroy();

  const lost = received - answered;
  console.log('');
  console.log(`${shutdownSummary(result)} (timeout was ${TIMEOUT_MS} ms)`);
  console.log(`Requests: ${plan.length} sent, ${received} reached the server, ${answered} answered in full; lost: ${lost}.`);
  if (lost !== 0 || answered !== plan.length || result.killed !== 0) {
    console.log('Something went wrong: see above.');
    process.exitCode = 1;
    return;
  }
  console.log('OK');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
