import fs from 'node:fs';
import path from 'node:path';
import type { System } from './system';

export interface SystemEntry {
  id: string;
  /** Loaded only in the server process, so a missing library affects only its own systems. */
  load: () => System;
  /** Why the system cannot run here, or null. */
  unavailable: () => string | null;
}

const librarySource = path.join(__dirname, '..', '..', 'src', 'index.ts');
const libraryMissing = (): string | null =>
  fs.existsSync(librarySource) ? null : `src/index.ts does not exist yet: rx-graceful skipped`;
const always = (): null => null;

/**
 * Every adapter module exports `system`. Required on demand rather than imported, so that the
 * orchestrator and the peers' server processes never load src/ (which may not exist yet).
 */
function adapter(file: string): System {
  return (require(file) as { system: System }).system;
}

/** Every system, bare Node first: the others' ratios are to it. */
export const systems: readonly SystemEntry[] = [
  { id: 'bare', load: () => adapter('./bare'), unavailable: always },
  { id: 'http-shutdown', load: () => adapter('./http-shutdown'), unavailable: always },
  { id: 'http-terminator', load: () => adapter('./http-terminator'), unavailable: always },
  { id: 'stoppable', load: () => adapter('./stoppable'), unavailable: always },
  { id: 'http-graceful-shutdown', load: () => adapter('./http-graceful-shutdown'), unavailable: always },
  { id: 'rx-graceful', load: () => adapter('./rx-graceful'), unavailable: libraryMissing },
  { id: 'rx-graceful-state', load: () => adapter('./rx-graceful-state'), unavailable: libraryMissing },
];

export function findSystem(id: string): SystemEntry {
  const entry = systems.find((candidate) => candidate.id === id);
  if (!entry) throw new Error(`unknown system '${id}'; known: ${systems.map((s) => s.id).join(', ')}`);
  return entry;
}
