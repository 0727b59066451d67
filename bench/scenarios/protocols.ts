/**
 * C and E over every protocol of the harness: which systems run over which protocol (a peer only
 * over those it claims, harness/systems.ts), and their tables, with a row that says "not claimed"
 * for each peer that does not claim a protocol rather than leaving it out.
 */
import { markdownTable } from '../../harness/markdown';
import type { Protocol } from '../../harness/protocol';
import { claims, protocolClaims } from '../../harness/systems';
import type { Bench } from '../context';
import type { Column, Table } from './scenario';

/** Every protocol C and E can run over, in the order they run. */
export const benchProtocols = ['http', 'https', 'h2', 'h2c'] as const satisfies readonly Protocol[];

/**
 * The protocols of a run without `--protocols`: all four, or in quick mode http and h2 over TLS
 * (the one where the peers differ most), so that a quick run stays short.
 */
export function defaultProtocols(quick: boolean): Protocol[] {
  return quick ? ['http', 'h2'] : [...benchProtocols];
}

export const protocolNames: Readonly<Record<Protocol, string>> = {
  http: 'HTTP/1.1',
  https: 'HTTPS (HTTP/1.1 over TLS)',
  h2: 'HTTP/2 over TLS',
  h2c: 'HTTP/2 in the clear (h2c)',
};

/** rx-graceful's observing variants differ from it by a subscriber alone, which C and E do not measure: beyond http, rx-graceful stands for them. */
const observing = (system: string): boolean => system.startsWith('rx-graceful-');

/** The run's systems over `protocol`: those that run, and the peers that do not claim it, with why. */
export function systemsOver(
  bench: Bench,
  protocol: Protocol,
): { run: string[]; notClaimed: { system: string; reason: string }[] } {
  const shown = bench.systems.filter((system) => protocol === 'http' || !observing(system));
  const run: string[] = [];
  const notClaimed: { system: string; reason: string }[] = [];
  for (const system of shown) {
    const claim = claims(system, protocol);
    if (claim.claimed) run.push(system);
    else notClaimed.push({ system, reason: claim.reason });
  }
  return { run, notClaimed };
}

/** A row per system over `protocol` (systemsTable's shape), "not claimed" in the rows of the peers that do not claim it, their reasons under the table. */
export function protocolTable(
  bench: Bench,
  protocol: Protocol,
  caption: string,
  columns: readonly Column[],
  fields: object,
): Table {
  const { run, notClaimed } = systemsOver(bench, protocol);
  const rows = [
    ...run.map((system) => [system, ...columns.map((c) => c.cell(system))]),
    ...notClaimed.map(({ system }) => [system, 'not claimed', ...columns.slice(1).map(() => '—')]),
  ];
  const reasons = notClaimed.map(({ system, reason }) => `${system}: ${reason}`);
  const markdown = [
    markdownTable(['system', ...columns.map((c) => c.header)], rows),
    ...(reasons.length > 0 ? ['', `Not claimed over ${protocol}: ${reasons.join('; ')}.`] : []),
  ].join('\n');
  const json = (system: string): object => Object.fromEntries(columns.map((c) => [c.key, c.json(system)]));
  const summaries = [
    ...run.map((system) => ({ ...fields, protocol, system, ...json(system) })),
    ...notClaimed.map(({ system, reason }) => ({ ...fields, protocol, system, claimed: false, reason })),
  ];
  return { caption: `${protocolNames[protocol]}, ${caption}`, markdown, summaries };
}

/** What each peer claims per protocol, and where it says so, for a scenario's method. */
export function claimsTable(protocols: readonly Protocol[]): string {
  const rows = Object.entries(protocolClaims).map(([system, byProtocol]) => [
    system,
    ...protocols.map((protocol) => {
      const claim = byProtocol[protocol];
      return claim.claimed ? `yes: ${claim.source}` : `**not claimed**: ${claim.reason}`;
    }),
  ]);
  return markdownTable(['system', ...protocols], rows);
}
