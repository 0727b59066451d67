import { expect } from 'chai';
import { initialState } from '../../src/core/state';
import { Programs } from '../support/program';

describe('warmUpAdapterShutdown', function () {
  this.timeout(30000);
  const programs = new Programs();

  it("leaves nothing behind in a fresh process and shows nothing on the user's server: no change, no resource, and the process exits by itself", async () => {
    const program = programs.start('spec/fixtures/warm-up-only.ts');
    expect(await program.line('seen ', 15000)).to.equal('seen []');
    expect(JSON.parse((await program.line('state ', 1000)).slice('state '.length))).to.deep.equal(initialState);
    expect(await program.line('phase ', 1000)).to.equal('phase stopped killed 0');
    for (const when of ['constructed', 'resources']) {
      const line = await program.line(`${when} `, 1000);
      const [left, before] = new RegExp(`^${when} (.*) before (.*)$`).exec(line)?.slice(1) ?? [];
      expect(left, line).to.equal(before);
    }
    expect(await program.exit(5000)).to.deep.equal({ code: 0, signal: null });
  });
});
