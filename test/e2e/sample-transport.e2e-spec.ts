import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisTransport, type RiversideTransport, ShardedTransport } from 'nestjs-riverside';
import { chatTransport } from '../../sample/transport.js';
import { uniquePrefix } from '../support/brokers.js';
import { OwnRedisServer, REDIS_URL, redisAvailable, redisServerAvailable, subscriberCount } from '../support/redis.js';
import { eventually } from '../support/riverside-app.js';

// STYLE 18: skipped (loudly) only outside CI when Redis is unreachable; under CI this throws.
const redisUp = await redisAvailable();
const redisServerUp = await redisServerAvailable();

// README "Try it": `TRANSPORT=redis npm start` on REDIS_URL, and on several servers when it lists them.
describe.runIf(redisUp && redisServerUp)('the sample chat with TRANSPORT=redis', () => {
  const environment = { ...process.env };
  const opened: RiversideTransport[] = [];
  const observers: Redis[] = [];
  let second: OwnRedisServer;
  beforeAll(async () => {
    second = await OwnRedisServer.start();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((transport) => transport.close()));
    for (const observer of observers.splice(0)) observer.disconnect();
    process.env = { ...environment };
  });
  afterAll(() => second?.stop());

  /** The transport the sample builds from these variables. */
  function chatTransportWith(variables: Record<string, string>): RiversideTransport {
    delete process.env.CHAT_REDIS_URL;
    Object.assign(process.env, variables);
    const transport = chatTransport();
    opened.push(transport);
    return transport;
  }

  it('runs on the one Redis of REDIS_URL', () => {
    expect(chatTransportWith({ TRANSPORT: 'redis', REDIS_URL, CHAT_PREFIX: uniquePrefix('chat') })).toBeInstanceOf(RedisTransport);
  });

  it('shards the chat over every server of a comma-separated REDIS_URL, and carries its messages', async () => {
    const prefix = uniquePrefix('chat-sharded');
    const variables = { TRANSPORT: 'redis', REDIS_URL: `${REDIS_URL}, ${second.url}`, CHAT_PREFIX: prefix };
    const [a, b] = [chatTransportWith(variables), chatTransportWith(variables)];
    expect(a).toBeInstanceOf(ShardedTransport);
    await Promise.all([a.connect(), b.connect()]);
    const users = ['ann', 'bob', 'cy', 'dee', 'eve', 'fay', 'gus', 'hal'];
    const received: string[] = [];
    for (const user of users) await b.subscribe(`user:${user}`, (payload) => received.push(Buffer.from(payload).toString()));

    const servers = [new Redis(REDIS_URL), new Redis(second.url)];
    observers.push(...servers);
    const held = await Promise.all(servers.map(async (server) => (await Promise.all(users.map((user) => subscriberCount(server, `${prefix}:user:${user}`)))).reduce((sum, n) => sum + n, 0)));
    expect(held[0]).toBeGreaterThan(0);
    expect(held[1]).toBeGreaterThan(0);
    expect(held[0] + held[1]).toBe(users.length);

    for (const user of users) await a.publish(`user:${user}`, Buffer.from(user));
    await eventually(() => expect([...received].sort()).toEqual(users));
  });
});
