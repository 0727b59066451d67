import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { classify } from '../../harness/classify';
import { formatSummary } from '../../harness/markdown';
import type { Ended, Protocol } from '../../harness/protocol';
import { chartConfig } from '../charts';
import type { Bench, Figures, Series, TrialServer } from '../context';
import { protocolNames, protocolTable, systemsOver } from './protocols';
import { check, column, rxSystems, type ScenarioReport, type TargetCheck } from './scenario';

const clients = 100;
const handlerMs = 1;
const timeoutMs = 1_000;
const shapes = [
  { name: 'hammer', thinkMaxMs: 0, description: 'next request at once' },
  { name: 'paced', thinkMaxMs: 10, description: '0–10 ms think time' },
] as const;
const headers = {
  completed: 'completed',
  refused: 'refused',
  refusedStreams: 'refused streams',
  resetNewcomers: 'reset newcomers',
  cut: 'cut before run',
  lost: 'lost',
  resolveMs: 'resolve ms',
};
const failures = { lost: 'lost (ran, no answer)', cut: 'cut before run', resetNewcomers: 'reset newcomers' } as const;

/** The shapes E runs over `protocol`: both over http and in a full run, hammer alone over the others in a quick run. */
function shapesOver(bench: Bench, protocol: Protocol): readonly (typeof shapes)[number][] {
  return protocol === 'http' || !bench.settings.quick ? shapes : shapes.filter((shape) => shape.name === 'hammer');
}

/** HTTP/2: a stream the server refused through the protocol (RST_STREAM or GOAWAY with REFUSED_STREAM), never processed: safe to retry (RFC 9113 §8.7). */
const refusedStream = ({ outcome }: Ended): boolean => outcome.kind === 'failed' && outcome.reason.includes('REFUSED_STREAM');

/** E. Shutdown under load from 100 keep-alive clients (HTTP/2: 10 sessions of 10 streams): what the clients see, per protocol. */
export async function underLoad(bench: Bench): Promise<ScenarioReport> {
  const loadMs = bench.settings.quick ? 300 : 500;
  const endAfterMs = loadMs + timeoutMs + 1_500;
  const handler = { kind: 'delayed', delayMs: [handlerMs, handlerMs] } as const;
  const trigger = { kind: 'afterFirstRequest', delayMs: loadMs } as const;
  const byRun = new Map<string, Figures>();
  const runKey = (protocol: Protocol, shape: string): string => `${protocol} ${shape}`;
  for (const protocol of bench.settings.protocols) {
    for (const shape of shapesOver(bench, protocol)) {
      const label = protocol === 'http' ? `E ${shape.name}` : `E ${shape.name} · ${protocol}`;
      const run = async ({ child, port }: TrialServer): Promise<Record<string, unknown>> => {
        const seed = Math.floor(Math.random() * 2 ** 31);
        const args = { protocol, port, clients, deadlineMs: endAfterMs, thinkMaxMs: shape.thinkMaxMs, seed } as const;
        const loading = bench.load.call('loops', args, endAfterMs + 10_000);
        const [loops, done] = await Promise.all([loading, child.next('done', loadMs + timeoutMs + 5_000)]);
        // A failure counts once its bytes were written and before the trial's end; the server's log
        // then says whether the handler ran it (lost), and if not, on what kind of connection it was
        // cut, or (HTTP/2) whether the protocol refused it.
        let [completed, refused, connectErrors, unansweredAtEnd] = [0, 0, 0, 0];
        const judged: Ended[] = [];
        for (const ended of loops.ended) {
          const { outcome } = ended;
          if (outcome.kind === 'completed') completed++;
          else if (outcome.kind === 'refused') refused++;
          else if (!outcome.sent) connectErrors++;
          else if (outcome.reason === 'no answer by the deadline') unansweredAtEnd++;
          else judged.push(ended);
        }
        const streams = classify({ ...loops, ended: judged.filter(refusedStream) }, done);
        const others = classify({ ...loops, ended: judged.filter((ended) => !refusedStream(ended)) }, done);
        const { resetFresh, resetReused, resetReasons } = others;
        const lost = others.lost + streams.lost;
        const counts = { completed, refused, refusedStreams: streams.reset, resetNewcomers: resetFresh, cut: resetReused, lost };
        const ended = { resolveMs: done.durationMs, killed: done.killed, timedOut: done.result?.timedOut ?? null };
        return { ...counts, ...ended, unansweredAtEnd, connectErrors, resetReasons };
      };
      byRun.set(
        runKey(protocol, shape.name),
        await bench.trials(label, { handler, trigger, timeoutMs, protocol }, run, systemsOver(bench, protocol).run),
      );
    }
  }

  const figure = (shape: string, key: string, protocol: Protocol = 'http'): Series =>
    (byRun.get(runKey(protocol, shape)) as Figures).get(key);
  const tables = bench.settings.protocols.flatMap((protocol) =>
    shapesOver(bench, protocol).map(({ name, description }) => {
      const http2 = protocol === 'h2' || protocol === 'h2c';
      const shown = Object.entries(headers).filter(([key]) => http2 || key !== 'refusedStreams');
      const columns = shown.map(([key, header]) => column(header, key, figure(name, key, protocol), key === 'resolveMs' ? 1 : 0));
      const caption = `${name} (${description}): per trial, median (min–max) over rounds`;
      return protocolTable(bench, protocol, caption, columns, { scenario: 'E', shape: name });
    }),
  );

  const targets: TargetCheck[] = rxSystems.flatMap((system) => {
    const worst = (shape: string, key: string): number | null => figure(shape, key).summary(system)?.max ?? null;
    const shapesWorst = shapes.map(({ name }) => ({ name, lost: worst(name, 'lost'), reset: worst(name, 'resetNewcomers') }));
    const measured = shapesWorst.every(({ lost, reset }) => lost !== null && reset !== null);
    const lostAndReset = shapesWorst.map(({ name, lost, reset }) => `${name}: ≤ ${String(lost)} lost, ≤ ${String(reset)} reset`);
    const cut = figure('paced', 'cut').summary(system);
    return [
      {
        target: `E: ${system} 0 lost and 0 reset newcomers in every trial of both shapes`,
        measured: measured ? lostAndReset.join('; ') : 'not measured',
        met: measured ? shapesWorst.every(({ lost, reset }) => lost === 0 && reset === 0) : null,
      },
      check(`E: ${system} paced, at most 2 requests per trial cut before the handler ran`, cut, (paced) => [
        `≤ ${paced.max} per trial (median ${formatSummary(paced)})`,
        paced.max <= 2,
      ]),
    ];
  });

  const median = (protocol: Protocol, shape: string, key: string, system: string): number =>
    figure(shape, key, protocol).summary(system)?.median ?? 0;
  const chartRows = bench.settings.protocols.flatMap((protocol) =>
    shapesOver(bench, protocol).flatMap(({ name: shape }) =>
      systemsOver(bench, protocol).run.flatMap((system) =>
        Object.entries(failures).map(([key, outcome]) => ({
          protocol: protocolNames[protocol],
          shape,
          system,
          outcome,
          count: median(protocol, shape, key, system),
        })),
      ),
    ),
  );
  const legend = Object.values(failures);
  const colors = { domain: legend, range: ['#e45756', '#f58518', '#72b7b2'] };
  const header = { labelOrient: 'top', labelAngle: 0, labelAnchor: 'start', labelFontWeight: 'bold' } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {
      text: `E. Shutdown under load, ${clients} keep-alive clients`,
      subtitle: 'failed requests per trial (median over rounds); fewer is better; a peer only over the protocols it claims',
    },
    data: { values: chartRows },
    facet: {
      row: {
        field: 'protocol',
        type: 'nominal',
        sort: bench.settings.protocols.map((p) => protocolNames[p]),
        title: null,
        header,
      },
      column: { field: 'shape', type: 'nominal', sort: shapes.map((shape): string => shape.name), title: null, header },
    },
    spec: {
      width: 280,
      height: { step: 18 },
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'system', type: 'nominal', sort: null, title: null },
        x: { field: 'count', type: 'quantitative', stack: 'zero', title: 'requests per trial' },
        color: { field: 'outcome', type: 'nominal', sort: legend, scale: colors, legend: { orient: 'bottom', title: null } },
      },
    },
    resolve: { scale: { x: 'shared', y: 'independent' } },
    config: chartConfig,
  };

  const title = 'E: failed requests per trial during a shutdown under load';
  return {
    title: 'E. Shutdown under load',
    method:
      `${clients} keep-alive clients in one load process, each in a loop: send a request (with an \`x-request-id\`), read the whole response, then the next request at once (hammer) or after 0–10 ms (paced); ` +
      'on `Connection: close` or a closed connection, connect again; on ECONNREFUSED, stop (a real client goes elsewhere). ' +
      `The handler answers after ${handlerMs} ms (a handler that awaits something) and records every id it ran. The server process calls the system’s shutdown ${loadMs} ms after the first request (timeout ${timeoutMs} ms); ` +
      `the trial ends when every client has stopped, at most ${endAfterMs} ms after it began. Failed requests are split with the server’s record: lost = the handler ran it, the client got no whole response; ` +
      'reset newcomers = first request on a new connection, not run (accepted, then closed); cut before run = on a reused keep-alive connection, not run (the idle-close race). ' +
      'HTTPS is the same over TLS. Over HTTP/2 (h2 over TLS, h2c in the clear) the 100 loops share 10 sessions, 10 streams each; a stream the session no longer takes after a GOAWAY goes out on the next session, and a refused connect stops the loop. ' +
      'What counts there: refused streams = ended by the server with REFUSED_STREAM (RST_STREAM, or above the last stream id of its GOAWAY), never processed, safe to retry (RFC 9113 §8.7), so not a failure; ' +
      'a stream the handler ran and that was reset or cut is lost; any other stream reset before its handler ran is a reset newcomer (the first on its session) or cut before run. ' +
      `${bench.settings.quick ? 'In this quick run, protocols other than http run hammer only. ' : ''}A peer runs only over the protocols it claims (see C); rx-graceful’s observing variants run over http only.`,
    tables,
    charts: [{ file: path.join(__dirname, '..', 'e-load.svg'), title, spec }],
    targets,
  };
}
