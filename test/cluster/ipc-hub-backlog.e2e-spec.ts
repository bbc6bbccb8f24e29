import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IpcHub } from 'nestjs-riverside';
import { eventually } from '../support/riverside-app.js';

const WORKER = fileURLToPath(new URL('./fixtures/ipc-worker.mjs', import.meta.url));
const KIB = 1024;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  vi.restoreAllMocks();
});

/** A real worker process on an IPC channel of the given serialization, attached to `hub`, subscribed to p:user:1. */
async function startWorker(hub: IpcHub, serialization: 'advanced' | 'json'): Promise<ChildProcess> {
  const child = fork(WORKER, { serialization, env: { ...process.env, RIVERSIDE_PREFIX: 'p' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  hub.attach(child);
  await nextMessage(child, 'ready');
  return child;
}

/** The next of the fixture's own messages of this kind (the channel also carries the hub's). */
async function nextMessage<T>(child: ChildProcess, kind: string): Promise<T> {
  for (;;) {
    const [message] = (await once(child, 'message')) as [{ test?: string }];
    if (message?.test === kind) return message as T;
  }
}

async function countOf(child: ChildProcess): Promise<{ count: number; bytes: number }> {
  const answer = nextMessage<{ count: number; bytes: number }>(child, 'count');
  child.send({ test: 'count' });
  return answer;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('IpcHub: a worker that stops reading its IPC channel', () => {
  for (const serialization of ['advanced', 'json'] as const) {
    it(`holds at most maxWorkerBacklog bytes for it, drops the rest (counted, logged once), and delivers again once it reads (${serialization})`, async () => {
      const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => {});
      const hub = new IpcHub({ maxWorkerBacklog: 2048 * KIB });
      const slow = await startWorker(hub, serialization);
      const healthy = await startWorker(hub, serialization);
      slow.kill('SIGSTOP');

      // 400 x 16 KiB = 6.25 MiB, at a pace the healthy worker reads (it would have to stall for
      // 128 of them to reach the bound): far more than the stopped worker's pipe and bound hold.
      const payload = Buffer.alloc(16 * KIB, 7);
      for (let i = 0; i < 400; i++) {
        hub.publish('p:user:1', payload);
        await sleep(3);
      }
      await eventually(async () => expect((await countOf(healthy)).count).toBe(400), 20_000);
      expect(hub.droppedMessages).toBeGreaterThan(150);
      expect(hub.droppedMessages).toBeLessThan(400);
      const drops = warn.mock.calls.filter(([line]) => String(line).includes('maxWorkerBacklog'));
      expect(drops).toHaveLength(1);
      expect(String(drops[0][0])).toContain(`for the worker ${slow.pid}`);

      slow.kill('SIGCONT');
      // Everything the hub did not drop arrives, and nothing more.
      await eventually(async () => expect((await countOf(slow)).count).toBe(400 - hub.droppedMessages), 20_000);
      // Caught up: the next deliveries reach it again.
      const dropped = hub.droppedMessages;
      for (let i = 0; i < 5; i++) hub.publish('p:user:1', payload);
      await eventually(async () => expect((await countOf(slow)).count).toBe(405 - dropped), 20_000);
      expect(hub.droppedMessages).toBe(dropped);
    }, 60_000);
  }
});
