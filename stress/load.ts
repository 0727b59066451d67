/**
 * The load process of one trial: `clients` request loops against the server on 127.0.0.1, each
 * sending its next request as soon as the previous response is in. HTTP/1 (http, https): one
 * keep-alive connection per loop, a new one after the server closed it or answered
 * `Connection: close`. HTTP/2: loops share a session `streamsPerSession` at a time, a new one
 * after GOAWAY. A loop stops on `ECONNREFUSED` (a real client would go to another instance), at
 * the deadline, or after a bounded number of requests. Then the process sends what every loop
 * saw and exits by itself.
 */
import type { ClientFailure, LoadCommand, LoadConfig, LoadMessage, LoadReport } from './messages';
import { SessionGroup, requestOnSession } from './h2-client';
import { Http1Connection, Http1Target, openHttp1 } from './http1-client';
import { Prng } from './prng';
import { testCertificate } from './tls';

/** No loop sends more than this many requests in one trial, whatever the deadline. */
const maxRequestsPerClient = 100_000;
/** A loop gives up after this many failed connects that were not refusals. */
const maxConnectFailures = 20;
/** HTTP/2: a loop gives up after this many `session.request()` calls that threw. */
const maxUnsent = 1_000;
const connectTimeoutMs = 3_000;

/** What every loop of the process saw, in one place. */
class Books {
  sent = 0;
  readonly completed: string[] = [];
  readonly refused: string[] = [];
  readonly failures: ClientFailure[] = [];
  connections = 0;
  atDeadline = 0;

  report(): LoadReport {
    const { sent, completed, refused, failures, connections, atDeadline } = this;
    return { sent, completed, refused, failures, connections, atDeadline };
  }
}

/** A client's pause between a response and its next request: none, or 0 to `thinkMaxMs` ms drawn from `prng`. */
type Think = () => Promise<void> | undefined;

function thinker(config: LoadConfig, index: number): Think {
  if (config.thinkMaxMs <= 0) return () => undefined;
  const prng = new Prng((config.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  return () => new Promise((resolve) => setTimeout(resolve, prng.between(0, config.thinkMaxMs)));
}

async function http1Loop(index: number, target: Http1Target, deadline: number, books: Books, think: Think): Promise<void> {
  let connection: Http1Connection | undefined;
  let fresh = false;
  let connectFailures = 0;
  try {
    for (let seq = 0; seq < maxRequestsPerClient; seq++) {
      if (Date.now() >= deadline) {
        books.atDeadline++;
        return;
      }
      const id = `${index}-${seq}`;
      books.sent++;
      if (connection === undefined || !connection.usable) {
        connection?.destroy();
        connection = undefined;
        const opened = await openHttp1(target, Math.max(1, Math.min(connectTimeoutMs, deadline - Date.now())));
        books.connections++;
        if (opened.kind === 'refused') {
          books.refused.push(id);
          return;
        }
        if (opened.kind === 'failed') {
          books.failures.push({ id, reason: opened.reason, sent: false, fresh: true });
          if (++connectFailures >= maxConnectFailures) return;
          continue;
        }
        connection = opened.connection;
        fresh = true;
      }
      const result = await connection.request(id, deadline - Date.now());
      if (result.kind === 'completed') {
        books.completed.push(id);
        if (result.closeAfter) {
          connection.destroy();
          connection = undefined;
        }
        await think();
      } else {
        books.failures.push({ id, reason: result.kind === 'bad' ? `bad response: ${result.reason}` : result.reason, sent: true, fresh });
        connection.destroy();
        connection = undefined;
      }
      fresh = false;
    }
  } finally {
    connection?.destroy();
  }
}

async function h2Loop(index: number, group: SessionGroup, deadline: number, books: Books, think: Think): Promise<void> {
  let connectFailures = 0;
  let unsent = 0;
  let lastSession: unknown;
  let begun = -1;
  for (let seq = 0; seq < maxRequestsPerClient; ) {
    const id = `${index}-${seq}`;
    if (Date.now() >= deadline) {
      books.atDeadline++;
      // An id begun whose every `session.request()` threw: nothing went out for it.
      if (begun === seq) books.failures.push({ id, reason: 'unsent by the deadline', sent: false, fresh: true });
      return;
    }
    if (seq > begun) {
      books.sent++;
      begun = seq;
    }
    const opened = await group.session();
    if (opened.kind === 'refused') {
      books.refused.push(id);
      return;
    }
    if (opened.kind === 'failed') {
      books.failures.push({ id, reason: opened.reason, sent: false, fresh: true });
      seq++;
      if (++connectFailures >= maxConnectFailures) return;
      continue;
    }
    const fresh = opened.session !== lastSession;
    lastSession = opened.session;
    const result = await requestOnSession(opened.session, id, deadline - Date.now());
    if (result.kind === 'unsent') {
      // No frame left: the same id goes out on the next session.
      if (++unsent >= maxUnsent) {
        books.failures.push({ id, reason: `unsent: ${result.reason}`, sent: false, fresh: true });
        return;
      }
      continue;
    }
    seq++;
    if (result.kind === 'completed') {
      books.completed.push(id);
      await think();
    } else books.failures.push({ id, reason: result.kind === 'bad' ? `bad response: ${result.reason}` : result.reason, sent: true, fresh });
  }
}

async function run(config: LoadConfig, port: number): Promise<LoadReport> {
  const books = new Books();
  const deadline = Date.now() + config.deadlineMs;
  if (config.protocol === 'h2') {
    const ca = testCertificate().cert;
    const groups = Array.from({ length: Math.ceil(config.clients / config.streamsPerSession) }, () => new SessionGroup(port, ca, connectTimeoutMs));
    await Promise.all(
      Array.from({ length: config.clients }, (_, index) =>
        h2Loop(index, groups[Math.floor(index / config.streamsPerSession)] as SessionGroup, deadline, books, thinker(config, index)),
      ),
    );
    for (const group of groups) {
      books.connections += group.opened;
      group.close();
    }
  } else {
    const target: Http1Target = config.protocol === 'https' ? { port, ca: testCertificate().cert } : { port };
    await Promise.all(Array.from({ length: config.clients }, (_, index) => http1Loop(index, target, deadline, books, thinker(config, index))));
  }
  return books.report();
}

function send(message: LoadMessage, then?: () => void): void {
  if (process.send === undefined || !process.connected) then?.();
  else process.send(message, () => then?.());
}

function fatal(error: unknown): void {
  send({ type: 'fatal', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () => process.exit(2));
}

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
process.on('uncaughtException', fatal);
// A last resort if the orchestrator is gone: unref'd, so it never keeps this process alive itself.
setTimeout(() => process.exit(3), config.deadlineMs + 60_000).unref();
process.once('message', (command: LoadCommand) => {
  run(config, command.port).then(
    (report) => send({ type: 'done', report }, () => process.disconnect()),
    (error: unknown) => fatal(error),
  );
});
send({ type: 'ready' });
