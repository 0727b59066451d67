import { expect } from 'chai';
import { itAlongside, type Program, Programs } from './support/program';
import type { RawClient } from './support/sockets';

// spec/fixtures/main-service.ts: a service whose main is `graceful.shutdownOn(fromSignals('SIGTERM',
// 'SIGINT'))` and a listen, run in a child process and signalled as an orchestrator or a Ctrl-C
// would. Each case mostly waits for its service to start: they run alongside each other.
describe("the one-line main: shutdownOn(fromSignals('SIGTERM', 'SIGINT')) in a real process", function () {
  this.timeout(30000);

  const programs = new Programs();

  function start(env: Record<string, string> = {}): Program {
    return programs.start('spec/fixtures/main-service.ts', env);
  }

  /** Starts a service, and sends GET `path` on a keep-alive connection once it listens and the handler has it. */
  async function startWithRequest(path: string): Promise<{ service: Program; client: RawClient }> {
    const service = start();
    const client = await programs.connect(await service.port('listening on ', 20000));
    client.get(path);
    await service.line(`request ${path}`, 5000);
    return { service, client };
  }

  /** The ShutdownResult the service printed when `wait()` settled. */
  async function stopped(service: Program, ms: number): Promise<Record<string, unknown>> {
    return JSON.parse((await service.line('stopped ', ms)).slice('stopped '.length)) as Record<string, unknown>;
  }

  async function expectExitedByItself(service: Program): Promise<void> {
    expect(await service.exit(5000)).to.deep.equal({ code: 0, signal: null });
  }

  itAlongside(
    'drains the request in flight on one SIGTERM, leaves no signal listener, and exits by itself with code 0',
    async () => {
      const { service, client } = await startWithRequest('/slow');
      service.signal('SIGTERM');

      const response = await client.read(5000);
      expect(response).to.deep.include({ status: 200, body: 'slow done' });
      expect(response.headers.connection).to.equal('close');
      expect(await stopped(service, 5000)).to.include({ killed: 0, drained: 1, forced: false });
      expect(await service.line('listeners left ', 3000)).to.equal('listeners left SIGTERM=0 SIGINT=0');
      await expectExitedByItself(service);
    },
  );

  itAlongside('kills a hung request at the second signal and exits by itself with code 0, long before the timeout', async () => {
    const { service, client } = await startWithRequest('/hang');
    service.signal('SIGTERM');
    // Signals do not queue: the second one goes once the first has started the drain.
    await service.line('phase draining', 5000);
    const secondAt = Date.now();
    service.signal('SIGINT');

    await client.waitClosed(5000);
    expect(await stopped(service, 5000)).to.include({ killed: 1, forced: true, timedOut: false });
    await expectExitedByItself(service);
    expect(Date.now() - secondAt, 'ms from the second signal to the exit (the timeout is 30 s)').to.be.below(10000);
  });

  itAlongside(
    'stops right after it listens when SIGTERM came while it was still starting, and exits by itself with code 0',
    async () => {
      const service = start({ START_DELAY: '1500' });
      await service.line('starting', 20000);
      service.signal('SIGTERM');
      const signalledAt = service.lines.length;

      const listening = await service.line('listening on ', 10000);
      expect(service.lines.indexOf(listening), 'the line number of "listening on"').to.be.at.least(signalledAt);
      expect(await stopped(service, 2000)).to.include({ killed: 0, closedIdle: 0, drained: 0 });
      await expectExitedByItself(service);
    },
  );
});
