import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { NatsTransport, type TransportMessageHandler } from 'nestjs-riverside';
import { accepting, binaryAvailable, freePort } from './brokers.js';
import { serviceAvailable } from './service-gate.js';

/** The shared NATS server of the suite (`.ci/run` starts it on 4222). */
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** The nats-server binary that OwnNatsServer runs. */
const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

/** Whether the shared NATS server answers (see serviceAvailable for what happens when not). */
export function natsAvailable(): Promise<boolean> {
  return serviceAvailable('NATS', NATS_URL, async () => {
    const probe = await connect({ servers: NATS_URL, timeout: 1000, reconnect: false });
    await probe.close();
  });
}

/** A nats-server of a test's own on a port of its own, so the shared server is never touched. */
export class OwnNatsServer {
  private process: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    /** A nats-server configuration file (`-c`), e.g. users and their permissions. */
    private readonly configFile?: string,
  ) {}

  /** `config`: nats-server configuration text (users, permissions...), written to a file of its own. */
  static async start(config?: string): Promise<OwnNatsServer> {
    let configFile: string | undefined;
    if (config !== undefined) {
      configFile = join(mkdtempSync(join(tmpdir(), 'nats-conf-')), 'nats.conf');
      writeFileSync(configFile, config);
    }
    const server = new OwnNatsServer(await freePort(), configFile);
    await server.restart();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again, on the same port) and waits until it accepts connections. */
  async restart(): Promise<void> {
    const config = this.configFile === undefined ? [] : ['-c', this.configFile];
    const child = spawn(NATS_SERVER_BIN, [...config, '-a', '127.0.0.1', '-p', String(this.port)], { stdio: 'ignore' });
    this.process = child;
    const exited = new Promise<never>((_, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`${NATS_SERVER_BIN} exited with ${code} before accepting connections`)));
    });
    const deadline = Date.now() + 5000;
    const up = (async () => {
      while (!(await accepting(this.port, 200))) {
        if (Date.now() > deadline) throw new Error(`${NATS_SERVER_BIN} did not accept connections on ${this.port} within 5 s`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await Promise.race([up, exited]);
    exited.catch(() => undefined);
  }

  /** Kills the server abruptly, as a crash would, and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }
}

/** Whether a nats-server binary can be run (for tests that stop and restart their own). */
export function natsServerAvailable(): Promise<boolean> {
  return binaryAvailable('nats-server', NATS_SERVER_BIN);
}

/**
 * A NatsTransport that records the topics whose subscribe() resolved, i.e. that the server has:
 * a test waits on it before publishing from another node.
 */
export class TrackedNatsTransport extends NatsTransport {
  readonly subscribed = new Set<string>();

  override async subscribe(topic: string, handler: TransportMessageHandler): Promise<void> {
    await super.subscribe(topic, handler);
    this.subscribed.add(topic);
  }

  override async unsubscribe(topic: string): Promise<void> {
    this.subscribed.delete(topic);
    await super.unsubscribe(topic);
  }
}
