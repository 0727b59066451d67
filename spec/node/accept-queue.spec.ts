import { expect } from 'chai';
import fs from 'node:fs';
import { warmUpAcceptQueue } from '../../src/node/accept-queue';

/** The calls of Node's `fs` functions a read of the accept queue makes, by name. */
const readCalls = ['openSync', 'fstatSync', 'readSync', 'closeSync'] as const;
type ReadCall = (typeof readCalls)[number];

/** Runs `work` with each of `readCalls` recorded in `calls` as it is made, then puts Node's own back. */
function recordingReads(calls: ReadCall[], work: () => void): void {
  const originals = readCalls.map((name) => [name, fs[name]] as const);
  const writable = fs as unknown as Record<ReadCall, (...args: unknown[]) => unknown>;
  for (const [name, original] of originals) {
    writable[name] = (...args: unknown[]): unknown => {
      calls.push(name);
      return (original as (...args: unknown[]) => unknown)(...args);
    };
  }
  try {
    work();
  } finally {
    for (const [name, original] of originals) writable[name] = original as (...args: unknown[]) => unknown;
  }
}

describe('warmUpAcceptQueue', () => {
  it("runs Node's open, fstat, read and close of a descriptor once each, and leaves no descriptor open", function () {
    if (process.platform !== 'linux') this.skip(); // the accept queue is read on Linux only
    const calls: ReadCall[] = [];
    const before = fs.readdirSync('/proc/self/fd').length;
    recordingReads(calls, () => warmUpAcceptQueue());
    expect(calls).to.deep.equal(['openSync', 'fstatSync', 'readSync', 'closeSync']);
    expect(fs.readdirSync('/proc/self/fd').length, 'descriptors open').to.equal(before);
  });
});
