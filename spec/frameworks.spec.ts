import { expect } from 'chai';
import type * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import Fastify from 'fastify';
import { GracefulServer } from '../src';
import { portOf, RawClient, until, waitForValue } from './support/sockets';

/** Sends `count` slow requests on their own keep-alive connections and shuts down while all are in flight. */
async function shutdownWithRequestsInFlight(graceful: GracefulServer, port: number, count: number) {
  const clients = await Promise.all(Array.from({ length: count }, () => RawClient.connect(port)));
  try {
    clients.forEach((c, i) => c.get('/slow', `r${i}`));
    await waitForValue(graceful.state$, (s) => s.active === count, 3000, `${count} requests in flight`);
    graceful.shutdown();
    const responses = await Promise.all(clients.map((c) => c.read(3000)));
    return { responses, result: await graceful.wait() };
  } finally {
    for (const c of clients) c.destroy();
  }
}

describe('frameworks', function () {
  this.timeout(15000);

  it('Express 5: wraps what app.listen() returns, before it listens; every in-flight request completes', async () => {
    const app = express();
    app.get('/slow', async (_req, res) => {
      await sleep(300);
      res.send('express ok');
    });
    // The README's recipe: wrap what app.listen() returns, which is not listening yet.
    const server: http.Server = app.listen(0, '127.0.0.1');
    const graceful = new GracefulServer(server, { timeout: 5000 });
    try {
      expect(server.listening).to.equal(false);
      await waitForValue(graceful.state$, (s) => s.phase === 'serving', 2000, 'the serving phase');
      const { responses, result } = await shutdownWithRequestsInFlight(graceful, portOf(server.address() ?? ''), 5);
      for (const r of responses) {
        expect(r).to.deep.include({ status: 200, body: 'express ok' });
        expect(r.headers.connection).to.equal('close');
      }
      expect(result).to.include({ killed: 0, drained: 5 });
    } finally {
      server.close();
    }
  });

  it('Fastify 5: wraps fastify.server after listen; every in-flight request completes', async () => {
    const fastify = Fastify();
    fastify.get('/slow', async () => {
      await sleep(300);
      return 'fastify ok';
    });
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    const graceful = new GracefulServer(fastify.server, { timeout: 5000 });
    try {
      const { responses, result } = await shutdownWithRequestsInFlight(graceful, portOf(fastify.server.address() ?? ''), 5);
      for (const r of responses) {
        expect(r).to.deep.include({ status: 200, body: 'fastify ok' });
        expect(r.headers.connection).to.equal('close');
      }
      expect(result).to.include({ killed: 0, drained: 5 });
      await until(() => !fastify.server.listening, 1000, 'the listener closed');
    } finally {
      await fastify.close();
    }
  });
});
