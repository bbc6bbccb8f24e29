import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { type IpcChannel, IpcHub, IpcTransport } from 'nestjs-riverside';
import { eventually } from '../support/riverside-app.js';
import { runTransportContract } from './transport.contract.js';

const DIST = new URL('../../dist/index.js', import.meta.url).href;

/**
 * The two ends of a worker_threads MessageChannel as the IpcChannel a cluster worker and its
 * cluster.Worker handle are: structured-clone messages, delivered asynchronously, in order.
 * (test/cluster/workers.e2e-spec.ts runs the same transport over real cluster IPC.)
 */
function channelPair(serialization: 'advanced' | 'json' = 'advanced'): { worker: IpcChannel; primary: IpcChannel; close(): void } {
  const { port1, port2 } = new MessageChannel();
  const end = (port: MessagePort): IpcChannel => ({
    send(message, callback) {
      // 'json': what Node's default IPC serialization leaves of a message.
      port.postMessage(serialization === 'json' ? JSON.parse(JSON.stringify(message)) : message);
      callback?.(null);
      return true;
    },
    on: (event, listener) => port.on(event, listener),
    off: (event, listener) => port.off(event, listener),
  });
  return { worker: end(port1), primary: end(port2), close: () => port1.close() };
}

function attached(hub: IpcHub, prefix: string, readyTimeout?: number, serialization: 'advanced' | 'json' = 'advanced') {
  const pair = channelPair(serialization);
  hub.attach(pair.primary);
  return { transport: new IpcTransport({ channel: pair.worker, prefix, readyTimeout }), pair };
}

for (const serialization of ['advanced', 'json'] as const) {
  runTransportContract(`IpcTransport through an IpcHub (${serialization} IPC serialization)`, async () => {
    const hub = new IpcHub();
    const nodes = [attached(hub, 'test', undefined, serialization), attached(hub, 'test', undefined, serialization), attached(hub, 'other', undefined, serialization)];
    return {
      a: nodes[0].transport,
      b: nodes[1].transport,
      otherPrefix: nodes[2].transport,
      cleanup: async () => {
        await Promise.all(nodes.map(({ transport }) => transport.close()));
        for (const { pair } of nodes) pair.close();
      },
    };
  });
}

describe('IpcTransport', () => {
  it('fails connect() clearly when no hub answers within readyTimeout', async () => {
    const { worker, close } = channelPair();
    const transport = new IpcTransport({ channel: worker, readyTimeout: 100 });
    await expect(transport.connect()).rejects.toThrow(
      'IpcTransport: no IpcHub answered within readyTimeout (100 ms). Start the workers with runRiversideWorkers()',
    );
    close();
  });

  it("fails a subscription that waits for the hub's answer when the channel to the primary closes", async () => {
    const hub = new IpcHub();
    const pair = channelPair();
    hub.attach(pair.primary);
    // A cluster worker's `process`: it emits 'disconnect' when the primary goes.
    const lifecycle = new EventEmitter();
    const worker = {
      send: pair.worker.send,
      on: (event: string, listener: (message: unknown) => void) => (event === 'message' ? pair.worker.on('message', listener) : lifecycle.on(event, listener)),
      off: (event: string, listener: (message: unknown) => void) => (event === 'message' ? pair.worker.off('message', listener) : lifecycle.off(event, listener)),
    } as IpcChannel;
    const transport = new IpcTransport({ channel: worker });
    await transport.connect();
    hub.detach(pair.primary); // the primary stops answering
    const subscribed = transport.subscribe('user:1', () => undefined);
    lifecycle.emit('disconnect');
    await expect(subscribed).rejects.toThrow('IpcTransport: the IPC channel to the primary is closed');
    await transport.close();
    pair.close();
  });

  it('fails connect() clearly in a process without an IPC channel', async () => {
    // Vitest's own workers have an IPC channel: a plain node process, on the built package, has none.
    const script = `import { IpcTransport } from ${JSON.stringify(DIST)}; await new IpcTransport().connect();`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('IpcTransport: this process has no IPC channel (process.send is undefined)');
  });

  it('names the bad option', () => {
    expect(() => new IpcHub({ maxWorkerBacklog: 1.5 })).toThrow('IpcHub: invalid option "maxWorkerBacklog": expected a positive integer (bytes), got 1.5.');
    expect(() => new IpcHub({ max: 1 } as never)).toThrow('IpcHub: invalid option "max"');
    expect(() => new IpcTransport({ readyTimeout: -1 })).toThrow('IpcTransport: invalid option "readyTimeout": expected a positive integer (ms), got -1.');
    expect(() => new IpcTransport({ prefix: '' })).toThrow('IpcTransport: invalid option "prefix"');
    expect(() => new IpcTransport({ url: 'x' } as never)).toThrow('IpcTransport: invalid option "url"');
  });

  it("forgets a worker's topics when it closes or is detached, and carries one turn's publications in one message", async () => {
    const hub = new IpcHub();
    const a = attached(hub, 'p');
    const b = attached(hub, 'p');
    await Promise.all([a.transport.connect(), b.transport.connect()]);
    const received: string[] = [];
    await b.transport.subscribe('user:1', (payload) => received.push(Buffer.from(payload).toString()));
    await b.transport.subscribe('user:2', (payload) => received.push(Buffer.from(payload).toString()));
    expect(hub.topics().sort()).toEqual(['p:user:1', 'p:user:2']);

    let messages = 0;
    b.pair.worker.on('message', () => messages++);
    for (let i = 0; i < 50; i++) await a.transport.publish(i % 2 ? 'user:1' : 'user:2', Buffer.from(String(i)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(received).toHaveLength(50);
    expect(messages).toBe(1);

    // The primary publishes like an external service would on Redis: bytes as they are.
    hub.publish('p:user:1', 'from the primary');
    await eventually(() => expect(received.at(-1)).toBe('from the primary'));

    await b.transport.close();
    await eventually(() => expect(hub.topics()).toEqual([]));
    await b.transport.connect();
    await b.transport.subscribe('user:3', () => {});
    hub.detach(b.pair.primary);
    expect(hub.topics()).toEqual([]);
    await a.transport.close();
    await b.transport.close();
  });

  it('sends payloads as bytes over a channel that carries them, as base64 over a JSON one, and between the two', async () => {
    const hub = new IpcHub();
    const cloning = attached(hub, 'p', undefined, 'advanced');
    const json = attached(hub, 'p', undefined, 'json');
    await Promise.all([cloning.transport.connect(), json.transport.connect()]);
    const seen = { cloning: [] as unknown[], json: [] as unknown[] };
    // What each end of each channel receives: payloads are the third entry of an 'ops', the second of a 'msg'.
    const payloadsOf = (message: unknown): unknown[] => {
      const m = message as { riverside: string; ops?: unknown[]; batch?: unknown[] };
      if (m.riverside === 'ops') return (m.ops ?? []).filter((_, i, ops) => ops[i - 2] === 'p');
      if (m.riverside === 'msg') return (m.batch ?? []).filter((_, i) => i % 2 === 1);
      return [];
    };
    for (const [name, pair] of [['cloning', cloning.pair], ['json', json.pair]] as const) {
      pair.primary.on('message', (message) => seen[name].push(...payloadsOf(message)));
      pair.worker.on('message', (message) => seen[name].push(...payloadsOf(message)));
    }
    const received = { cloning: [] as string[], json: [] as string[] };
    await cloning.transport.subscribe('user:1', (payload) => received.cloning.push(Buffer.from(payload).toString()));
    await json.transport.subscribe('user:1', (payload) => received.json.push(Buffer.from(payload).toString()));

    await cloning.transport.publish('user:1', Buffer.from('from the cloning worker'));
    await json.transport.publish('user:1', Buffer.from('from the json worker'));
    await eventually(() => {
      expect(received.json).toEqual(['from the cloning worker']);
      expect(received.cloning).toEqual(['from the json worker']);
    });
    expect(seen.cloning).toHaveLength(2);
    for (const payload of seen.cloning) expect(payload).toBeInstanceOf(Uint8Array);
    expect(seen.json).toEqual([Buffer.from('from the json worker').toString('base64'), Buffer.from('from the cloning worker').toString('base64')]);
    await Promise.all([cloning.transport.close(), json.transport.close()]);
  });
});
