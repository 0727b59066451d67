import { expect } from 'chai';
import type { Protocol } from '../stress/messages';
import { randomSeed, trialSeed } from '../stress/prng';
import { runTrial, type TrialResult } from '../stress/trial';

/** `STRESS_SEED=N npm test` replays the moments of a failed run; otherwise each run draws its own. */
const seed = process.env['STRESS_SEED'] === undefined ? randomSeed() : Number(process.env['STRESS_SEED']);

function expectNothingLost(result: TrialResult): void {
  const where = `${result.protocol} trial ${result.trial}, seed ${result.seed} (replay: npm run stress -- --protocol=${result.protocol} --trials=1 --seed=${result.seed} --quick)`;
  expect(result.problems, `problems in ${where}`).to.deep.equal([]);
  expect(result.anomalies, `anomalies in ${where}`).to.deep.equal([]);
  expect(result.lost, `lost requests in ${where}: ${JSON.stringify(result.lostRequests.slice(0, 5))}`).to.equal(0);
  expect(result.completed, `completed in ${where}`).to.be.greaterThan(0);
  expect(result.sent, `sent = completed + refused + reset + lost in ${where}`).to.equal(
    result.completed + result.refused + result.reset + result.lost,
  );
  expect(result.shutdown?.killed, `killed in ${where}`).to.equal(0);
}

describe(`shutdown under load (stress, quick: 100 keep-alive clients, seed ${seed})`, function () {
  // A quick trial takes about 1.5 s (two forked processes, 0.2–1 s of load, the drain); the bound
  // leaves room for a slow machine, and for the 5 s timeout should the drain ever need it.
  this.timeout(30_000);

  const trials: Array<{ protocol: Protocol; index: number }> = [
    { protocol: 'http', index: 0 },
    { protocol: 'http', index: 1 },
    { protocol: 'https', index: 2 },
    { protocol: 'h2', index: 3 },
  ];
  for (const { protocol, index } of trials) {
    it(`loses no request when an ${protocol} server shuts down at a random moment (trial ${index + 1})`, async function () {
      const result = await runTrial({ protocol, seed: trialSeed(seed, index), quick: true, trial: index + 1 });
      expectNothingLost(result);
    });
  }
});
