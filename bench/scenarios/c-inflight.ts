import path from 'node:path';
import { formatSummary } from '../../harness/markdown';
import type { Protocol } from '../../harness/protocol';
import { groupedResolveChart } from '../charts';
import type { Bench, Figures, Series } from '../context';
import { claimsTable, protocolNames, protocolTable, systemsOver } from './protocols';
import { check, column, ratioColumn, rxSystems, type ScenarioReport } from './scenario';

const requests = 100;
const handlerMs = 500;
const shutdownAfterMs = 100;
const timeoutMs = 10_000;

/** C. 100 requests in flight, shutdown 100 ms in: resolve time against the ideal, whole responses, the close announced; per protocol. */
export async function inFlight(bench: Bench): Promise<ScenarioReport> {
  const handler = { kind: 'delayed', delayMs: [handlerMs, handlerMs] } as const;
  const trigger = { kind: 'afterFirstRequest', delayMs: shutdownAfterMs } as const;
  const byProtocol = new Map<Protocol, Figures>();
  for (const protocol of bench.settings.protocols) {
    const label = protocol === 'http' ? 'C in flight' : `C in flight · ${protocol}`;
    const config = { handler, trigger, timeoutMs, protocol };
    const settleMs = timeoutMs + 2_000;
    const figures = await bench.trials(
      label,
      config,
      async ({ child, port }) => {
        const inflight = bench.load.call('inflight', { port, count: requests, settleMs, protocol }, timeoutMs + 10_000);
        const [clients, done] = await Promise.all([inflight, child.next('done', timeoutMs + 5_000)]);
        const overIdealMs = done.lastFinishMs === null ? null : done.durationMs - done.lastFinishMs;
        return { resolveMs: done.durationMs, idealMs: done.lastFinishMs, overIdealMs, ...clients, killed: done.killed };
      },
      systemsOver(bench, protocol).run,
    );
    byProtocol.set(protocol, figures);
  }

  const figure = (protocol: Protocol, key: string): Series => (byProtocol.get(protocol) as Figures).get(key);
  const tables = [...byProtocol.keys()].map((protocol) => {
    const http2 = protocol === 'h2' || protocol === 'h2c';
    const resolve = figure(protocol, 'resolveMs');
    const columns = [
      column('resolve ms', 'resolveMs', resolve, 1),
      column('ideal ms', 'idealMs', figure(protocol, 'idealMs'), 1),
      column('over ideal ms', 'overIdealMs', figure(protocol, 'overIdealMs'), 1),
      ratioColumn('resolve × bare', 'resolveVsBare', resolve),
      column('whole', 'wholeResponses', figure(protocol, 'whole')),
      column(http2 ? 'with GOAWAY' : 'with close', 'withConnectionClose', figure(protocol, 'withClose')),
    ];
    const announced = http2 ? 'whose session got a GOAWAY (NO_ERROR) before the stream ended' : 'carrying `Connection: close`';
    const caption = `resolve and ideal (ms from the shutdown call), resolve minus ideal (ms), whole responses and those ${announced} (of 100)`;
    return protocolTable(bench, protocol, caption, columns, { scenario: 'C' });
  });

  const over = figure('http', 'overIdealMs');
  const whole = figure('http', 'whole');
  const withClose = figure('http', 'withClose');
  const targets = rxSystems.flatMap((system) => {
    const closing = withClose.summary(system);
    return [
      check(`C: ${system} resolves within 2 ms of the ideal`, over.summary(system), (late) => [
        `${formatSummary(late, 1)} ms after the last response`,
        late.median <= 2,
      ]),
      check(
        `C: ${system} 100 of 100 responses whole with \`Connection: close\``,
        closing === null ? null : whole.summary(system),
        (count) => [
          `${formatSummary(count)} whole, ${formatSummary(closing)} with close`,
          count.min === requests && closing?.min === requests,
        ],
      ),
    ];
  });
  const groups = [...byProtocol.keys()].map((protocol) => ({
    name: protocolNames[protocol],
    systems: systemsOver(bench, protocol).run,
    resolve: figure(protocol, 'resolveMs'),
    fields: (system: string) => ({ ideal: figure(protocol, 'idealMs').summary(system)?.median ?? null }),
  }));
  const spec = groupedResolveChart(groups, {
    title: `C. ${requests} requests in flight (${handlerMs} ms handler), shutdown ${shutdownAfterMs} ms in`,
    subtitle:
      'time to resolve, ms (log scale); black tick: ideal (last response finished); a peer only over the protocols it claims',
    width: 460,
    fields: () => ({}),
    x: {
      scale: { type: 'log', domain: [100, 20_000] },
      axis: { values: [100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000], format: ',d' },
      title: 'resolve, ms',
    },
    label: { field: 'median', type: 'quantitative', format: ',.0f' },
    over: [{ mark: { type: 'tick', color: 'black', thickness: 2 }, encoding: { x: { field: 'ideal', type: 'quantitative' } } }],
  });

  return {
    title: 'C. Shutdown with requests in flight',
    method:
      `${requests} keep-alive connections each send one request; the handler answers after ${handlerMs} ms. The server process calls the system’s shutdown ${shutdownAfterMs} ms after the first request reached the handler ` +
      `(timeout ${timeoutMs / 1000} s; Node’s default keepAliveTimeout 5 s). Resolve is from that call to the system’s report; the ideal is from that call to the \`finish\` of the last response; ` +
      'the client counts whole responses (status 200, whole body) and those carrying `Connection: close`, and keeps each connection open until the server closes it, as a keep-alive client does. ' +
      `Over ${[...byProtocol.keys()].join(', ')}: HTTPS is the same over TLS; over HTTP/2 (h2 over TLS, h2c in the clear) each of the ${requests} clients is a session of its own with one stream, ` +
      'the response is whole when its stream ends with NO_ERROR, and the close is announced when the session gets a GOAWAY with NO_ERROR before the stream has ended (a client closes its session itself once it has one, and its streams have ended). ' +
      'A peer runs only over the protocols it claims (below); rx-graceful’s observing variants run over http only.\n\n' +
      claimsTable([...byProtocol.keys()]),
    tables,
    charts: [{ file: path.join(__dirname, '..', 'c-inflight.svg'), title: 'C: time to resolve with requests in flight', spec }],
    targets,
  };
}
