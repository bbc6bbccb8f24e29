import 'reflect-metadata';
import { type INestApplicationContext, type LoggerService, Module, type Provider, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RiversideModule, type RiversideModuleOptions, RiversideServer } from 'nestjs-riverside';
import { TestClient, type TestClientOptions } from 'nestjs-riverside/testing';

/** Records what the app logs, so tests can assert that an error was logged once. */
export class RecordingLogger implements LoggerService {
  readonly entries: { level: string; message: string }[] = [];
  log(message: unknown) { this.entries.push({ level: 'log', message: String(message) }); }
  error(message: unknown) { this.entries.push({ level: 'error', message: String(message) }); }
  warn(message: unknown) { this.entries.push({ level: 'warn', message: String(message) }); }
  debug(message: unknown) { this.entries.push({ level: 'debug', message: String(message) }); }
  verbose(message: unknown) { this.entries.push({ level: 'verbose', message: String(message) }); }
  errors(): string[] {
    return this.entries.filter((entry) => entry.level === 'error').map((entry) => entry.message);
  }
}

export interface RunningApp {
  readonly app: INestApplicationContext;
  readonly server: RiversideServer;
  readonly logger: RecordingLogger;
  url(path?: string): string;
  httpUrl(path?: string): string;
  connect(path?: string, options?: TestClientOptions): Promise<TestClient>;
  close(): Promise<void>;
}

/**
 * Boots a Nest application context with RiversideModule on an ephemeral port and the given
 * handler classes, as a user's app would.
 */
export async function startRiverside(
  options: RiversideModuleOptions,
  providers: Provider[],
  imports: Type<unknown>[] = [],
): Promise<RunningApp> {
  @Module({ imports: [RiversideModule.forRoot({ port: 0, host: '127.0.0.1', ...options }), ...imports], providers })
  class TestAppModule {}
  const logger = new RecordingLogger();
  // abortOnError: false, so that a boot failure rejects instead of exiting the test process.
  const app = await NestFactory.createApplicationContext(TestAppModule, { logger, abortOnError: false });
  return running(app, logger);
}

export function running(app: INestApplicationContext, logger: RecordingLogger): RunningApp {
  const server = app.get(RiversideServer);
  const clients: TestClient[] = [];
  return {
    app,
    server,
    logger,
    url: (path) => server.url(path),
    httpUrl: (path = '/') => `${server.url(path).replace(/^ws/, 'http')}`,
    async connect(path, clientOptions) {
      const client = await TestClient.connect(server.url(path), clientOptions);
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.ws.terminate();
      await app.close();
    },
  };
}

/**
 * The Nest apps and clients a test file opens itself (its own `@Module` importing
 * RiversideModule, or NestFactory.create), so that one
 * `afterEach(() => opened.closeAll())` closes whatever the test left open.
 */
export class OpenedApps {
  private readonly apps: { close(): Promise<unknown> }[] = [];
  private readonly clients: TestClient[] = [];

  /** Boots `module` as NestFactory.createApplicationContext, as a user's app would. */
  async boot(module: Type<unknown>, logger = new RecordingLogger()): Promise<INestApplicationContext> {
    // abortOnError: false, so that a boot failure rejects instead of exiting the test process.
    return this.track(await NestFactory.createApplicationContext(module, { logger, abortOnError: false }));
  }

  /** The error booting `module` rejects with; fails the test if it boots. */
  async bootFailure(module: Type<unknown>): Promise<Error> {
    try {
      await this.boot(module);
    } catch (error) {
      return error as Error;
    }
    throw new Error(`Expected ${module.name} to fail at boot, but it started`);
  }

  /** Closes `app` in closeAll(); returns it. */
  track<App extends { close(): Promise<unknown> }>(app: App): App {
    this.apps.push(app);
    return app;
  }

  /** A client on `url`, terminated in closeAll(). */
  async connect(url: string, options: TestClientOptions = {}): Promise<TestClient> {
    const client = await TestClient.connect(url, options);
    this.clients.push(client);
    return client;
  }

  /** A client on `path` of the Riverside server in `app`, terminated in closeAll(). */
  connectToApp(app: INestApplicationContext, path = '/', options: TestClientOptions = {}): Promise<TestClient> {
    return this.connect(app.get(RiversideServer).url(path), options);
  }

  /** Terminates every client, then closes every app, in the order they were opened. */
  async closeAll(): Promise<void> {
    for (const client of this.clients.splice(0)) client.ws.terminate();
    for (const app of this.apps.splice(0)) await app.close();
  }
}

/** Polls until `check` stops throwing or rejecting (for counters updated asynchronously). */
export async function eventually(check: () => void | Promise<unknown>, timeout = 2000): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
