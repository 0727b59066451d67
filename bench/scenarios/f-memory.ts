import { Figures, type Bench } from '../context';
import { keepAliveTimeoutMs, idleTrials } from './b-idle';
import { column, ratioColumn, ratioTarget, rxSystems, systemsTable, type ScenarioReport } from './scenario';

const connections = 10_000;

/** F. Heap and RSS per idle keep-alive connection with 10,000 open: the trials of B at that size, before their shutdown. */
export async function memoryPerConnection(bench: Bench): Promise<ScenarioReport> {
  const figures =
    bench.tooManyFiles('F', connections) === null ? await idleTrials(bench, connections) : new Figures(bench.rounds);
  const heap = figures.get('heapPerConnection');
  const rss = figures.get('rssPerConnection');
  const columns = [
    column('heap B/conn', 'heapBytesPerConnection', heap),
    ratioColumn('× bare', 'heapVsBare', heap),
    column('RSS B/conn', 'rssBytesPerConnection', rss),
    ratioColumn('× bare', 'rssVsBare', rss),
  ];
  const open = connections.toLocaleString('en-US');
  return {
    title: 'F. Memory per idle connection',
    method:
      `In the server process (started with --expose-gc): gc() three times, then process.memoryUsage(), before and after the load processes open ${open} keep-alive connections ` +
      `with one request each and hold them idle (keepAliveTimeout ${keepAliveTimeoutMs / 1000} s). These are the trials of B with 10,000 connections, measured before their shutdown. Per connection = (after − before) / connections. RSS is noisier than heap.`,
    tables: [systemsTable(`Bytes per idle connection with ${open} open`, bench.systems, columns, { scenario: 'F' })],
    charts: [],
    targets: rxSystems.map((system) =>
      ratioTarget(`F: ${system} heap per idle connection ≤ 1.10 × bare`, heap.ratio(system), 1.1),
    ),
  };
}
