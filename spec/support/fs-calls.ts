import fs from 'node:fs';

/** The `fs` functions a read of an accept queue calls. */
export const acceptQueueReads = ['openSync', 'fstatSync', 'readSync', 'closeSync'] as const;
export type AcceptQueueRead = (typeof acceptQueueReads)[number];

/** One recorded call: the function's name and its first argument (a path for `openSync`, else a descriptor). */
export interface FsCall {
  readonly name: AcceptQueueRead;
  readonly first: unknown;
}

/**
 * Records every call of `acceptQueueReads` that anything makes in this process, the library under
 * test included (it calls them through the `node:fs` module object), until `restore()` puts Node's
 * own functions back.
 */
export function recordFsCalls(): { readonly calls: FsCall[]; restore(): void } {
  const calls: FsCall[] = [];
  const writable = fs as unknown as Record<AcceptQueueRead, (...args: unknown[]) => unknown>;
  const originals = acceptQueueReads.map((name) => [name, writable[name]] as const);
  for (const [name, original] of originals) {
    writable[name] = (...args: unknown[]): unknown => {
      calls.push({ name, first: args[0] });
      return original(...args);
    };
  }
  return {
    calls,
    restore: () => {
      for (const [name, original] of originals) writable[name] = original;
    },
  };
}
