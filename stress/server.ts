/**
 * The server process of one trial: a `GracefulServer` (http, https or h2) whose handler answers
 * each request after the latency its id asks for (stress/workload.ts), logs every request id it
 * received and whether the response finished, shuts down `shutdownAfterMs` after the first
 * request, and sends its log to the orchestrator once `wait()` has settled. It then lets go of
 * its IPC channel and must exit by itself: nothing else keeps it alive.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { GracefulServer } from '../src';
import type { ServerState } from '../src';
import type { ServerConfig, ServerMessage } from './messages';
import { testCertificate } from '../harness/certificate';
import { reportFatal, sendToParent } from '../harness/parent';
import { answerFor } from './workload';

/** The part of a request both HTTP/1 and the HTTP/2 compatibility API have. */
interface Request {
  readonly headers: http.IncomingHttpHeaders;
}

/** The part of a response both HTTP/1 and the HTTP/2 compatibility API have. */
interface Response {
  statusCode: number;
  setHeader(name: string, value: string | number): unknown;
  end(body: Buffer): unknown;
  once(event: 'finish', listener: () => void): unknown;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ServerConfig;
const received: string[] = [];
const finished: string[] = [];
let shutdownTimer: NodeJS.Timeout | undefined;
let state: ServerState | undefined;

function handle(req: Request, res: Response): void {
  const id = req.headers['x-request-id'];
  if (typeof id !== 'string') {
    res.statusCode = 400;
    res.end(Buffer.alloc(0));
    return;
  }
  received.push(id);
  if (shutdownTimer === undefined && received.length === 1) shutdownTimer = setTimeout(startShutdown, config.shutdownAfterMs);
  res.once('finish', () => finished.push(id));
  const { delayMs, body } = answerFor(id);
  const answer = (): void => {
    try {
      res.statusCode = 200;
      res.setHeader('content-type', 'text/plain');
      res.setHeader('content-length', body.length);
      res.setHeader('x-request-id', id);
      res.end(body);
    } catch {
      // The connection was destroyed under the handler (the deadline): the client counts it.
    }
  };
  if (delayMs === 0) answer();
  else setTimeout(answer, delayMs);
}

function createServer(): http.Server | https.Server | http2.Http2SecureServer {
  switch (config.protocol) {
    case 'http':
      return http.createServer(handle);
    case 'https':
      return https.createServer(testCertificate(), handle);
    case 'h2':
      return http2.createSecureServer(testCertificate(), handle);
  }
}

/** HTTP/2: streams open now, so that a drain that hangs can say what it waits for. */
const openStreams = new Set<http2.ServerHttp2Stream>();

const graceful = new GracefulServer(
  createServer(),
  config.idleLinger === undefined ? { timeout: config.timeoutMs } : { timeout: config.timeoutMs, idleLinger: config.idleLinger },
);
const stateSubscription = graceful.state$.subscribe((next) => (state = next));
if (config.protocol === 'h2') {
  graceful.server.on('stream', (stream: http2.ServerHttp2Stream) => {
    openStreams.add(stream);
    stream.once('close', () => openStreams.delete(stream));
  });
}

/** Printed when a drain is still running 2 s after `shutdown()`: what it is waiting for. */
function describeHungDrain(): string {
  const lines = [`stress server: drain still running 2 s after shutdown(): ${JSON.stringify(state)}`];
  const sessions = new Set<http2.ServerHttp2Session>();
  for (const stream of openStreams) {
    const request =
      stream.sentHeaders?.[':status'] === undefined
        ? 'no response head sent'
        : `status ${String(stream.sentHeaders?.[':status'])} sent`;
    lines.push(
      `  stream ${stream.id}: ${request}, writableEnded ${stream.writableEnded}, writableFinished ${stream.writableFinished}, ` +
        `writableLength ${stream.writableLength}, bufferSize ${stream.bufferSize}, state ${JSON.stringify(stream.state)}`,
    );
    sessions.add(stream.session as http2.ServerHttp2Session);
  }
  for (const session of sessions) {
    lines.push(
      `  session closed ${session.closed} destroyed ${session.destroyed} state ${JSON.stringify(session.destroyed ? {} : session.state)}`,
    );
  }
  return lines.join('\n');
}

function startShutdown(): void {
  sendToParent({ type: 'shutdown', open: state?.open ?? -1, active: state?.active ?? -1, receivedBefore: received.length });
  graceful.shutdown();
  const hung = setTimeout(() => process.stderr.write(`${describeHungDrain()}\n`), 2_000);
  hung.unref();
  graceful.wait().then((result) => {
    clearTimeout(hung);
    const { killed, timedOut, forced, durationMs, closedIdle, drained, hijacked } = result;
    stateSubscription.unsubscribe();
    const done: ServerMessage = {
      type: 'done',
      result: { killed, timedOut, forced, durationMs, closedIdle, drained, hijacked },
      log: { received, finished },
      stateAfter: { open: state?.open ?? -1, phase: state?.phase ?? 'unknown' },
    };
    // Disconnect only once the message is written: a large log (100,000+ ids) sent and then
    // disconnected at once never reached the orchestrator.
    sendToParent(done, () => process.disconnect?.());
  }, reportFatal);
}

process.on('uncaughtException', reportFatal);
// A last resort if the orchestrator is gone: unref'd, so it never keeps this process alive itself.
setTimeout(() => process.exit(3), config.shutdownAfterMs + config.timeoutMs + 60_000).unref();
graceful
  .listen({ port: 0, host: '127.0.0.1' })
  .then(
    (address) => sendToParent({ type: 'listening', port: (address as AddressInfo).port } satisfies ServerMessage),
    reportFatal,
  );
