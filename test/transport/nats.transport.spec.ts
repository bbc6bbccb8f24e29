import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionsError, NatsTransport, type NatsConnectionLike, type NatsTransportOptions } from 'nestjs-riverside';
import { channelTopic, sessionTopic, userTopic } from '../../src/cluster/topics.js';
import { escapeNatsToken, natsSubject } from '../../src/cluster/nats-subjects.js';
import { uniquePrefix } from '../support/brokers.js';
import { NATS_URL, natsAvailable, natsServerAvailable, OwnNatsServer } from '../support/nats.js';
import { runTransportContract } from './transport.contract.js';

// Compile-time proof that a real v3 connection fits the structural type NatsTransport accepts.
const _fits: (connection: NatsConnection) => NatsConnectionLike = (connection) => connection;

const enabled = await natsAvailable();
const ownServer = await natsServerAvailable();

describe('natsSubject (SPEC 9.4: the subject contract for external publishers)', () => {
  it('maps user, channel and session topics to <prefix>.<kind>.<id> subjects', () => {
    expect(natsSubject('riverside', userTopic('42'))).toBe('riverside.user.42');
    expect(natsSubject('riverside', channelTopic('room-1'))).toBe('riverside.channel.room-1');
    expect(natsSubject('riverside', sessionTopic('42', 'phone'))).toBe('riverside.session.42.phone');
    expect(natsSubject('acme.rv', userTopic('ann'))).toBe('acme.rv.user.ann');
  });

  it("percent-escapes '.', '*', '>', whitespace, control characters and '%' itself", () => {
    expect(escapeNatsToken('a.b')).toBe('a%2Eb');
    expect(escapeNatsToken('*')).toBe('%2A');
    expect(escapeNatsToken('>')).toBe('%3E');
    expect(escapeNatsToken('a b\tc\r\nd')).toBe('a%20b%09c%0D%0Ad');
    expect(escapeNatsToken('\u00a0\u3000')).toBe('%C2%A0%E3%80%80');
    expect(escapeNatsToken('\u0000\u007f')).toBe('%00%7F');
    expect(escapeNatsToken('100%')).toBe('100%25');
    expect(escapeNatsToken('%2E')).toBe('%252E');
    expect(escapeNatsToken('héllo/wörld:1-_~')).toBe('héllo/wörld:1-_~');
    expect(escapeNatsToken('')).toBe('%');
  });

  it('gives session user ids back their "/" and "%" (escaped in the topic) before escaping for NATS', () => {
    expect(natsSubject('p', sessionTopic('a/b', 's'))).toBe('p.session.a/b.s');
    expect(natsSubject('p', sessionTopic('a%2Fb', 's'))).toBe('p.session.a%252Fb.s');
    expect(natsSubject('p', sessionTopic('x.y', 'z/w.v'))).toBe('p.session.x%2Ey.z/w%2Ev');
  });

  it('is one-to-one and never yields a wildcard, whitespace or an empty token', () => {
    const alphabet = ['a', '.', '*', '>', ' ', '\t', '%', '/', ':', '2', 'E', 'F', 'é', '\u0000'];
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const id = () => Array.from({ length: 1 + Math.floor(random() * 6) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    const seen = new Map<string, string>();
    const wrong: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const kind = Math.floor(random() * 3);
      const topic = kind === 0 ? userTopic(id()) : kind === 1 ? channelTopic(id()) : sessionTopic(id(), id());
      const subject = natsSubject('rv', topic);
      const tokens = subject.split('.');
      if (tokens.length !== (kind === 2 ? 4 : 3) || tokens.some((token) => token === '' || /[*>\s]/u.test(token))) {
        wrong.push(`${JSON.stringify(topic)} -> ${JSON.stringify(subject)}`);
      }
      if ((seen.get(subject) ?? topic) !== topic) wrong.push(`${JSON.stringify(topic)} and ${JSON.stringify(seen.get(subject))} share ${subject}`);
      seen.set(subject, topic);
    }
    expect(wrong).toEqual([]);
    expect(seen.size).toBeGreaterThan(1000);
    expect(natsSubject('rv', userTopic('a.b'))).not.toBe(natsSubject('rv', sessionTopic('a', 'b')));
  });
});

describe('NatsTransport options', () => {
  function rejection(options: unknown): InvalidOptionsError {
    try {
      new NatsTransport(options as NatsTransportOptions);
    } catch (error) {
      if (error instanceof InvalidOptionsError) return error;
      throw error;
    }
    throw new Error(`expected ${JSON.stringify(options)} to be rejected`);
  }
  const fakeConnection = {
    publish() {},
    subscribe() {},
    flush() {},
    drain() {},
    close() {},
    isClosed() {},
    status() {},
  };

  it('accepts either a connection or servers, with the default prefix "riverside"', () => {
    expect(new NatsTransport({ servers: NATS_URL }).prefix).toBe('riverside');
    expect(new NatsTransport({ servers: [NATS_URL, 'nats://10.0.0.2:4222'], prefix: 'acme.rv' }).prefix).toBe('acme.rv');
    expect(new NatsTransport({ connection: fakeConnection as unknown as NatsConnectionLike }).subjectOf('user:7')).toBe('riverside.user.7');
  });

  it('names the option, the value and what is allowed', () => {
    expect(rejection(undefined)).toMatchObject({
      option: 'options',
      message: 'NatsTransport: invalid option "options": expected an object with either "connection" or "servers", got undefined.',
    });
    expect(rejection({})).toMatchObject({
      option: 'servers',
      message:
        'NatsTransport: invalid option "servers": expected either "connection" (a NatsConnection) or "servers" (NATS URLs), exactly one of them, got undefined.',
    });
    expect(rejection({ connection: fakeConnection, servers: NATS_URL })).toMatchObject({ option: 'connection' });
    expect(rejection({ servers: '' })).toMatchObject({
      option: 'servers',
      message:
        'NatsTransport: invalid option "servers": expected a NATS server URL or a non-empty array of them, e.g. "nats://127.0.0.1:4222", got "".',
    });
    expect(rejection({ servers: [] })).toMatchObject({ option: 'servers' });
    expect(rejection({ connection: { publish() {} } })).toMatchObject({
      option: 'connection',
      message: 'NatsTransport: invalid option "connection": expected a NatsConnection from connect() of @nats-io/transport-node v3, got {}.',
    });
    expect(rejection({ servers: NATS_URL, prefix: 'a b' })).toMatchObject({
      option: 'prefix',
      message:
        'NatsTransport: invalid option "prefix": expected one or more "."-separated NATS subject tokens without "*", ">" or whitespace, got "a b".',
    });
    for (const prefix of ['', 'a.', '.a', 'a..b', 'a.*', 'rv>', 42]) expect(rejection({ servers: NATS_URL, prefix })).toMatchObject({ option: 'prefix' });
    expect(rejection({ servers: NATS_URL, closeTimeout: 0 })).toMatchObject({
      option: 'closeTimeout',
      message: 'NatsTransport: invalid option "closeTimeout": expected a positive number of milliseconds, got 0.',
    });
    expect(rejection({ connection: fakeConnection, user: 'ann' })).toMatchObject({
      option: 'user',
      message: 'NatsTransport: option "user" only applies with "servers"; with "connection", configure the connection you pass.',
    });
  });
});

describe.runIf(enabled)('NatsTransport on a real NATS server', () => {
  runTransportContract('NatsTransport({ servers })', async () => {
    const prefix = uniquePrefix('servers');
    const a = new NatsTransport({ servers: NATS_URL, prefix });
    const b = new NatsTransport({ servers: NATS_URL, prefix });
    const otherPrefix = new NatsTransport({ servers: NATS_URL, prefix: `${prefix}other` });
    return {
      a,
      b,
      otherPrefix,
      cleanup: async () => {
        await Promise.all([a.close(), b.close(), otherPrefix.close()]);
      },
    };
  });

  runTransportContract('NatsTransport({ connection })', async () => {
    const prefix = uniquePrefix('connection');
    const connections = await Promise.all([1, 2, 3].map(() => connect({ servers: NATS_URL })));
    const a = new NatsTransport({ connection: connections[0], prefix });
    const b = new NatsTransport({ connection: connections[1], prefix });
    // A prefix that extends the first one by a token: subjects still never meet.
    const otherPrefix = new NatsTransport({ connection: connections[2], prefix: `${prefix}.user` });
    return {
      a,
      b,
      otherPrefix,
      cleanup: async () => {
        await Promise.all([a.close(), b.close(), otherPrefix.close()]);
        await Promise.all(connections.map((connection) => connection.close()));
      },
    };
  });

  describe('NATS specifics', () => {
    const opened: { close(): Promise<void> }[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((resource) => resource.close()));
    });
    async function raw(): Promise<NatsConnection> {
      const connection = await connect({ servers: NATS_URL });
      opened.push(connection);
      return connection;
    }
    function received(): { payloads: string[]; handler: (payload: Uint8Array) => void } {
      const payloads: string[] = [];
      return { payloads, handler: (payload) => payloads.push(Buffer.from(payload).toString()) };
    }
    const until = async (check: () => boolean) => {
      const deadline = Date.now() + 2000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error('timed out');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };

    it('receives what a plain NATS client publishes on the escaped subject, and no other subject', async () => {
      const prefix = uniquePrefix('escape');
      const transport = new NatsTransport({ servers: NATS_URL, prefix });
      opened.push(transport);
      await transport.connect();
      const box = received();
      await transport.subscribe(channelTopic('a.b c*>'), box.handler);
      const publisher = await raw();
      publisher.publish(`${prefix}.channel.a`, 'token a');
      publisher.publish(`${prefix}.channel.a.b`, 'two tokens');
      publisher.publish(`${prefix}.channel.a%2Eb%20c%2A%3E`, 'escaped');
      await publisher.flush();
      await until(() => box.payloads.length > 0);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(box.payloads).toEqual(['escaped']);
    });

    it('leaves a connection it was given open at close(), without its subscriptions', async () => {
      const prefix = uniquePrefix('given');
      const connection = await raw();
      const transport = new NatsTransport({ connection, prefix });
      await transport.connect();
      const box = received();
      await transport.subscribe(userTopic('7'), box.handler);
      const publisher = await raw();
      publisher.publish(`${prefix}.user.7`, 'before');
      await until(() => box.payloads.length === 1);
      await transport.close();
      expect(connection.isClosed()).toBe(false);
      publisher.publish(`${prefix}.user.7`, 'after');
      await publisher.flush();
      await connection.flush();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(box.payloads).toEqual(['before']);
      await expect(transport.publish(userTopic('7'), Buffer.from('x'))).rejects.toThrow('after close()');
    });

    it("the owner's drain() of a connection it was given still delivers what was published before, then ends", async () => {
      const prefix = uniquePrefix('drain');
      const connection = await connect({ servers: NATS_URL });
      const transport = new NatsTransport({ connection, prefix });
      opened.push(transport);
      await transport.connect();
      const box = received();
      await transport.subscribe(userTopic('7'), box.handler);
      await transport.subscribe(channelTopic('lobby'), box.handler);
      const publisher = await raw();
      publisher.publish(`${prefix}.user.7`, 'to the user');
      publisher.publish(`${prefix}.channel.lobby`, 'to the channel');
      await publisher.flush();
      await connection.drain();
      expect(connection.isClosed()).toBe(true);
      expect(box.payloads.sort()).toEqual(['to the channel', 'to the user']);
    });

    it.runIf(ownServer)('refuses a topic without a subject, and restores the others after the server restarts', async () => {
      const server = await OwnNatsServer.start();
      opened.push({ close: () => server.kill() });
      const prefix = uniquePrefix('nosubject');
      const transport = new NatsTransport({ servers: server.url, prefix });
      opened.push(transport);
      await transport.connect();
      const box = received();
      await expect(transport.subscribe('nonsense', box.handler)).rejects.toThrow('"nonsense" is not a Riverside topic');
      await transport.subscribe(userTopic('7'), box.handler);
      await server.kill();
      await server.restart();
      const publisher = await connect({ servers: server.url });
      opened.push(publisher);
      const deadline = Date.now() + 10_000;
      while (box.payloads.length === 0 && Date.now() < deadline) {
        publisher.publish(`${prefix}.user.7`, 'after the restart');
        await publisher.flush();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(box.payloads[0]).toBe('after the restart');
    }, 20_000);

    it('works on a connection that offers only the public NatsConnection API', async () => {
      const prefix = uniquePrefix('public');
      const real = await raw();
      // A wrapper (as an instrumented or proxied connection would be): no client internals.
      const connection: NatsConnectionLike = {
        publish: (subject, payload) => real.publish(subject, payload),
        subscribe: (subject, options) => real.subscribe(subject, options),
        flush: () => real.flush(),
        drain: () => real.drain(),
        close: () => real.close(),
        isClosed: () => real.isClosed(),
        status: () => real.status(),
      };
      const transport = new NatsTransport({ connection, prefix });
      opened.push(transport);
      await transport.connect();
      const box = received();
      await transport.subscribe(userTopic('7'), box.handler);
      const publisher = await raw();
      publisher.publish(`${prefix}.user.7`, 'subscribed');
      await until(() => box.payloads.length === 1);
      await transport.unsubscribe(userTopic('7'));
      await real.flush();
      publisher.publish(`${prefix}.user.7`, 'unsubscribed');
      await publisher.flush();
      await real.flush();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(box.payloads).toEqual(['subscribed']);
    });

    it('rejects publishing once the owner closes the connection it was given', async () => {
      const connection = await connect({ servers: NATS_URL });
      const transport = new NatsTransport({ connection, prefix: uniquePrefix('owner') });
      opened.push(transport);
      await transport.connect();
      await connection.close();
      await expect(transport.publish(userTopic('1'), Buffer.from('x'))).rejects.toThrow(
        'NatsTransport: the NATS connection is closed; dropped a message for user:1',
      );
    });

    it('closes a connection of its own at close(): publishing then rejects', async () => {
      const transport = new NatsTransport({ servers: NATS_URL, prefix: uniquePrefix('own') });
      await transport.connect();
      await transport.publish(userTopic('1'), Buffer.from('fine'));
      await transport.close();
      await transport.close();
      await expect(transport.publish(userTopic('1'), Buffer.from('x'))).rejects.toThrow(
        'NatsTransport: cannot publish to user:1 before connect() or after close()',
      );
    });

    it('rejects a payload over the server max_payload instead of throwing synchronously', async () => {
      const transport = new NatsTransport({ servers: NATS_URL, prefix: uniquePrefix('big') });
      opened.push(transport);
      await transport.connect();
      const publishing = transport.publish(userTopic('1'), Buffer.alloc(2 * 1024 * 1024));
      await expect(publishing).rejects.toThrow(/max_payload/);
    });

    it('fails connect() with the server it tried when none answers', async () => {
      const transport = new NatsTransport({ servers: 'nats://127.0.0.1:1', prefix: 'x' });
      await expect(transport.connect()).rejects.toThrow('NatsTransport could not connect to nats://127.0.0.1:1');
      await transport.close();
    });
  });
});
