import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { NatsTransport, RedisTransport } from 'nestjs-riverside';
import { ClusterNodeHandler } from '../cluster/cluster-delivery.contract.js';
import { uniquePrefix } from '../support/brokers.js';
import { NATS_URL, natsAvailable } from '../support/nats.js';
import { REDIS_URL, redisAvailable } from '../support/redis.js';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

// The README's "Publishing from other services" commands, run as written (prefix `riverside`
// replaced by a unique one): `redis-cli PUBLISH` itself, and `nats pub` as the bytes it sends
// (INFO read, CONNECT, PUB) over a plain TCP socket when the nats CLI is not installed.
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('### Publishing from other services'), readme.indexOf('### When the broker is down'));
const commands = section.split('\n').filter((line) => /^(redis-cli PUBLISH|nats pub) /.test(line));

/** The words of a shell command line with single-quoted arguments. */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2]);
}

/** What `nats pub <subject> <payload>` sends: CONNECT, PUB and a PING whose PONG confirms it. */
function natsPub(url: string, subject: string, payload: string): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = createConnection(Number(port), hostname);
    let received = '';
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      received += chunk.toString();
      if (received.startsWith('INFO ') && received.includes('\r\n') && !socket.writableEnded && !received.includes('PONG')) {
        const bytes = Buffer.from(payload);
        socket.write(`CONNECT {"verbose":false,"pedantic":false}\r\nPUB ${subject} ${bytes.length}\r\n`);
        socket.write(Buffer.concat([bytes, Buffer.from('\r\nPING\r\n')]));
      }
      if (received.includes('PONG')) {
        socket.end();
        resolve();
      }
      if (received.includes('-ERR')) reject(new Error(received));
    });
  });
}

const brokers = {
  redis: { up: await redisAvailable(), transport: (prefix: string) => new RedisTransport({ url: REDIS_URL, prefix }) },
  nats: { up: await natsAvailable(), transport: (prefix: string) => new NatsTransport({ servers: NATS_URL, prefix }) },
};

describe('the README examples of publishing from other services', () => {
  let node: RunningApp | undefined;
  afterEach(async () => {
    await node?.close();
    node = undefined;
  });

  it('lists a redis-cli and a nats pub example for a user and for the bridge', () => {
    expect(commands).toHaveLength(4);
    expect(commands.filter((line) => line.startsWith('redis-cli'))).toHaveLength(2);
    expect(commands.filter((line) => line.startsWith('nats pub'))).toHaveLength(2);
  });

  for (const line of commands) {
    const broker = line.startsWith('redis-cli') ? 'redis' : 'nats';
    it.runIf(brokers[broker].up)(`runs \`${line}\``, async () => {
      const prefix = uniquePrefix('readme');
      node = await startRiverside({ transport: brokers[broker].transport(prefix), bridge: true }, [ClusterNodeHandler]);
      const user42 = await node.connect('/', { query: { user: '42' } });
      const user43 = await node.connect('/', { query: { user: '43' } });
      const [, , target, payload] = words(line);
      const topic = target.replace(/^riverside/, prefix);
      if (broker === 'redis') await promisify(execFile)('redis-cli', ['-u', REDIS_URL, 'PUBLISH', topic, payload]);
      else await natsPub(NATS_URL, topic, payload);
      if (topic.endsWith('bridge')) {
        // Through the codec, to each recipient.
        expect(await user42.expectMessage()).toEqual({ hello: 2 });
        expect(await user43.expectMessage()).toEqual({ hello: 2 });
      } else {
        const frame = await user42.expectFrame();
        expect([frame.isBinary, frame.data.toString()]).toEqual([false, payload]);
        await user43.expectNoMessage(100);
      }
    });
  }
});
