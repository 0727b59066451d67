/**
 * The load process of one trial: `clients` request loops against the server on 127.0.0.1, each
 * sending its next request as soon as the previous response is in. HTTP/1 (http, https): one
 * keep-alive connection per loop, a new one after the server closed it or answered
 * `Connection: close`. HTTP/2: loops share a session `streamsPerSession` at a time, a new one
 * after GOAWAY. A loop stops on `ECONNREFUSED` (a real client would go to another instance), at
 * the deadline, or after a bounded number of requests. Then the process sends what every loop
 * saw and exits by itself.
 */
import { testCertificate } from '../harness/certificate';
import { h2Requester, SessionGroup } from '../harness/h2-client';
import { http1Requester } from '../harness/http1-client';
import { reportFatal, sendToParent } from '../harness/parent';
import { runLoops, type Requester } from '../harness/request-loops';
import type { ClientFailure, LoadCommand, LoadConfig, LoadMessage, LoadReport } from './messages';
import { Prng } from './prng';
import { checkResponse } from './workload';

/** No loop sends more than this many requests in one trial, whatever the deadline. */
const maxRequestsPerClient = 100_000;
/** A loop gives up after this many requests that failed before they were sent (connects that were not refusals). */
const maxConnectFailures = 20;
const connectTimeoutMs = 3_000;

/** A client's pause between a response and its next request: none, or 0 to `thinkMaxMs` ms drawn from its own seeded generator. */
function thinker(config: LoadConfig, client: number): () => Promise<void> | undefined {
  if (config.thinkMaxMs <= 0) return () => undefined;
  const prng = new Prng((config.seed ^ Math.imul(client + 1, 0x9e3779b1)) >>> 0);
  return () => new Promise((resolve) => setTimeout(resolve, prng.between(0, config.thinkMaxMs)));
}

async function run(config: LoadConfig, port: number): Promise<LoadReport> {
  const ca = testCertificate().cert;
  const perClient = Array.from({ length: config.clients }, (_, client) => ({
    think: thinker(config, client),
    connectFailures: 0,
  }));
  const groups =
    config.protocol !== 'h2'
      ? []
      : Array.from(
          { length: Math.ceil(config.clients / config.streamsPerSession) },
          () => new SessionGroup(port, ca, connectTimeoutMs),
        );
  const http1 =
    config.protocol === 'h2'
      ? []
      : perClient.map(() =>
          http1Requester(config.protocol === 'https' ? { port, ca } : { port }, connectTimeoutMs, checkResponse),
        );
  const requester = (client: number): Requester =>
    config.protocol === 'h2'
      ? h2Requester(groups[Math.floor(client / config.streamsPerSession)] as SessionGroup, checkResponse)
      : (http1[client] as Requester);

  let sent = 0;
  const completed: string[] = [];
  const refused: string[] = [];
  const failures: ClientFailure[] = [];
  const atDeadline = await runLoops({
    clients: config.clients,
    requester,
    deadline: Date.now() + config.deadlineMs,
    maxRequestsPerLoop: maxRequestsPerClient,
    begin: (id, client) => {
      sent++;
      const own = perClient[client] as (typeof perClient)[number];
      return async (outcome) => {
        if (outcome.kind === 'completed') {
          completed.push(id);
          await own.think();
          return true;
        }
        if (outcome.kind === 'refused') {
          refused.push(id);
          return false;
        }
        failures.push({
          id,
          reason: outcome.kind === 'wrong' ? `bad response: ${outcome.reason}` : outcome.reason,
          sent: outcome.sent,
          fresh: outcome.fresh,
        });
        return outcome.sent || ++own.connectFailures < maxConnectFailures;
      };
    },
  });
  for (const group of groups) group.close();
  const connections = [...groups.map((group) => group.opened), ...http1.map((loop) => loop.connects)].reduce(
    (total, count) => total + count,
    0,
  );
  return { sent, completed, refused, failures, connections, atDeadline };
}

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
process.on('uncaughtException', reportFatal);
// A last resort if the orchestrator is gone: unref'd, so it never keeps this process alive itself.
setTimeout(() => process.exit(3), config.deadlineMs + 60_000).unref();
process.once('message', (command: LoadCommand) => {
  run(config, command.port).then((report) => {
    sendToParent({ type: 'done', report } satisfies LoadMessage, () => {
      process.disconnect();
    });
  }, reportFatal);
});
sendToParent({ type: 'ready' } satisfies LoadMessage);
