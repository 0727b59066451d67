/**
 * The saturated mode: one `node -e 'for(;;){}'` per core, started before a scenario and killed by
 * pid after it, whatever happens, so that every process of the scenario competes for the CPU.
 */
import { availableParallelism } from 'node:os';
import { startBinary, type Child } from './child';

/** How busy the machine is during a scenario: as it is, or every core spinning. */
export type Mode = 'idle' | 'saturated';
/** Both modes, idle first. */
export const modes: readonly Mode[] = ['idle', 'saturated'];

/** Runs `scenario` with `count` busy loops spinning beside it (none: just runs it). */
export async function withBusyLoops<T>(count: number, scenario: () => Promise<T>): Promise<T> {
  const loops: Child[] = [];
  try {
    for (let i = 0; i < count; i++) loops.push(startBinary(`busy loop ${i + 1}`, process.execPath, ['-e', 'for(;;){}']));
    return await scenario();
  } finally {
    await Promise.all(loops.map((loop) => loop.kill()));
  }
}

/** Busy loops for `mode`: none when idle, one per core when saturated. */
export function busyLoopsFor(mode: Mode): number {
  return mode === 'saturated' ? availableParallelism() : 0;
}
