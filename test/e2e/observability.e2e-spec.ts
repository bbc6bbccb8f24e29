import { Controller, Get, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthError,
  type AuthRequest,
  OnAuthenticate,
  OnMessage,
  RiversideHandler,
  RiversideHealthIndicator,
  RiversideModule,
  RiversideServer,
  RiversideStats,
} from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { fetchRaw } from '../support/http.js';
import { eventually, RecordingLogger, type RunningApp, startRiverside } from '../support/riverside-app.js';

// SPEC 10.2: Prometheus metrics (prom-client, optional peer) and a @nestjs/terminus indicator.

@RiversideHandler()
class EchoHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest) {
    if (req.queries.user === undefined) throw AuthError.unauthorized();
    return { userId: String(req.queries.user) };
  }

  @OnMessage()
  onMessage(message: unknown) {
    return message;
  }
}

/** The value of one sample line (`name{labels} value`) in a Prometheus exposition. */
function sample(exposition: string, series: string): number | undefined {
  const line = exposition.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Prometheus metrics', () => {
  let running: RunningApp;
  afterEach(() => running?.close());

  it('serves connection, frame, rejection and termination counts at /metrics of the standalone server', async () => {
    const registry = new Registry();
    running = await startRiverside({ metrics: { registry } }, [EchoHandler]);
    const client = await running.connect('/', { query: { user: 'ann' } });
    client.send({ n: 1 });
    await client.expectMessage();
    await TestClient.expectRefused(running.url('/'));
    const leaving = await running.connect('/', { query: { user: 'bob' } });
    await leaving.close(4000, 'bye');

    // The server notices bob's close asynchronously.
    await eventually(() => expect(running.app.get(RiversideStats).currentConnections).toBe(1));
    const response = await fetch(running.httpUrl('/metrics'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(sample(text, 'riverside_connections')).toBe(1);
    expect(sample(text, 'riverside_connections_total')).toBe(2);
    expect(sample(text, 'riverside_frames_received_total')).toBe(1);
    expect(sample(text, 'riverside_frames_sent_total')).toBe(1);
    expect(sample(text, 'riverside_handshake_rejections_total{status="401"}')).toBe(1);
    expect(sample(text, 'riverside_terminations_total{reason="remote"}')).toBe(1);
  });

  it('uses the given prefix, and with path false only registers the metrics', async () => {
    const registry = new Registry();
    running = await startRiverside({ metrics: { registry, prefix: 'chat_ws_', path: false } }, [EchoHandler]);
    await running.connect('/', { query: { user: 'ann' } });
    expect((await fetch(running.httpUrl('/metrics'))).status).toBe(404);
    expect(sample(await registry.metrics(), 'chat_ws_connections')).toBe(1);
  });

  it("serves the metrics on the Nest HTTP server with port 'http'", async () => {
    const registry = new Registry();
    @Module({ imports: [RiversideModule.forRoot({ port: 'http', metrics: { registry } })], providers: [EchoHandler] })
    class SharedAppModule {}
    const app = await NestFactory.create(SharedAppModule, { logger: new RecordingLogger() });
    try {
      await app.listen(0, '127.0.0.1');
      const port = (app.getHttpServer().address() as AddressInfo).port;
      const client = await TestClient.connect(app.get(RiversideServer).url('/'), { query: { user: 'ann' } });
      // node:http without an agent: no keep-alive connection to hold app.close().
      const response = await fetchRaw(`http://127.0.0.1:${port}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toContain('text/plain');
      expect(sample(response.body, 'riverside_connections')).toBe(1);
      client.ws.terminate();
    } finally {
      await app.close();
    }
  });

  it('serves the metrics on a port of their own with metrics.port, and not beside the handlers', async () => {
    const registry = new Registry();
    running = await startRiverside({ metrics: { registry, port: 0, host: '127.0.0.1' } }, [EchoHandler]);
    await running.connect('/', { query: { user: 'ann' } });
    const metricsPort = running.server.metricsAddress()?.port;
    expect(metricsPort).toBeGreaterThan(0);
    expect(metricsPort).not.toBe(running.server.address().port);
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(response.status).toBe(200);
    expect(sample(await response.text(), 'riverside_connections')).toBe(1);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/health`)).status).toBe(404);
    expect((await fetch(running.httpUrl('/metrics'))).status).toBe(404);
    await running.close();
    await expect(fetch(`http://127.0.0.1:${metricsPort}/metrics`)).rejects.toThrow();
  });

  it('fails the boot with the option named when metrics.host comes without metrics.port', async () => {
    await expect(startRiverside({ metrics: { host: '127.0.0.1' } }, [EchoHandler])).rejects.toThrow(
      'RiversideModule: invalid option "metrics.host": expected nothing without metrics.port',
    );
  });

  it('removes its metrics from the registry at shutdown', async () => {
    const registry = new Registry();
    running = await startRiverside({ metrics: { registry } }, [EchoHandler]);
    expect(registry.getSingleMetric('riverside_connections')).toBeDefined();
    await running.close();
    expect(registry.getSingleMetric('riverside_connections')).toBeUndefined();
  });

  it('fails the boot with the option named when metrics.registry is not a prom-client registry', async () => {
    await expect(startRiverside({ metrics: { registry: {} } }, [EchoHandler])).rejects.toThrow(
      'RiversideModule: invalid option "metrics.registry": expected a prom-client Registry, got {}.',
    );
  });
});

describe('RiversideHealthIndicator with @nestjs/terminus', () => {
  @Controller('status')
  class StatusController {
    constructor(
      private readonly health: HealthCheckService,
      private readonly riverside: RiversideHealthIndicator,
    ) {}

    @Get()
    @HealthCheck()
    check() {
      return this.health.check([() => this.riverside.isHealthy()]);
    }
  }

  @Module({
    imports: [RiversideModule.forRoot({ port: 0, host: '127.0.0.1' }), TerminusModule],
    controllers: [StatusController],
    providers: [EchoHandler],
  })
  class HealthAppModule {}

  let app: INestApplication;
  afterEach(() => app?.close());

  it('reports up with the connection count while accepting, and down (503) once the server stopped accepting', async () => {
    app = await NestFactory.create(HealthAppModule, { logger: new RecordingLogger() });
    await app.listen(0, '127.0.0.1');
    const status = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/status`;
    const client = await TestClient.connect(app.get(RiversideServer).url('/'), { query: { user: 'ann' } });

    const up = await fetch(status);
    expect(up.status).toBe(200);
    expect(await up.json()).toMatchObject({
      status: 'ok',
      info: { riverside: { status: 'up', connections: 1, maxConnections: 65536, transportErrors: 0 } },
    });

    await app.get(RiversideServer).close();
    await client.expectClose(1001);
    const down = await fetch(status);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: 'error', error: { riverside: { status: 'down', connections: 0 } } });
  });
});
