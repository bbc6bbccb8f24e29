import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidOptionsError, MissingPackageError, type RedisClientLike, RedisTransport, type RedisTransportOptions } from 'nestjs-riverside';
import { serverOf } from '../../src/cluster/redis-transport.options.js';

/** Structurally an ioredis client; never connected by these tests. */
function fakeClient() {
  const method = () => {};
  return {
    status: 'wait',
    publish: method,
    subscribe: method,
    unsubscribe: method,
    on: method,
    off: method,
    duplicate: method,
    connect: method,
    quit: method,
    disconnect: method,
  } as unknown as NonNullable<RedisTransportOptions['client']>;
}

function invalid(options: unknown): InvalidOptionsError {
  try {
    new RedisTransport(options as RedisTransportOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error('expected an InvalidOptionsError');
}

describe(RedisTransport, () => {
  describe('constructor', () => {
    it('takes { url }, { client } or { publisher, subscriber }, with the default prefix "riverside"', () => {
      expect(new RedisTransport({ url: 'redis://127.0.0.1:6379' }).prefix).toBe('riverside');
      expect(new RedisTransport({ url: 'rediss://user:pw@redis.example:6380/2', prefix: 'chat' }).prefix).toBe('chat');
      expect(new RedisTransport({ client: fakeClient() }).prefix).toBe('riverside');
      expect(new RedisTransport({ publisher: fakeClient(), subscriber: fakeClient(), prefix: 'p' }).prefix).toBe('p');
    });

    it('rejects options that are not an object', () => {
      const error = invalid('redis://localhost');
      expect(error.option).toBe('options');
      expect(error.message).toBe(
        'RedisTransport: invalid option "options": expected an object: { url }, { client } or { publisher, subscriber }, got "redis://localhost".',
      );
    });

    it('asks for a connection when none is given', () => {
      const error = invalid({ prefix: 'chat' });
      expect(error.option).toBe('client');
      expect(error.message).toBe(
        'RedisTransport: no Redis connection given: pass { url: "redis://..." }, { client } (an ioredis client; ' +
          'the subscriber is its duplicate()) or { publisher, subscriber } (two ioredis clients).',
      );
    });

    it('rejects two ways of connecting at once', () => {
      const error = invalid({ url: 'redis://localhost', client: fakeClient() });
      expect(error.option).toBe('client');
      expect(error.message).toBe(
        'RedisTransport: options "url" and "client" exclude each other: pass only one of { url }, { client } or { publisher, subscriber }.',
      );
    });

    it('wants publisher and subscriber together, and as two different connections', () => {
      expect(invalid({ publisher: fakeClient() }).message).toBe(
        'RedisTransport: invalid option "subscriber": expected an ioredis client dedicated to subscribing, given with publisher, got undefined.',
      );
      expect(invalid({ subscriber: fakeClient() }).option).toBe('publisher');
      const client = fakeClient();
      const same = invalid({ publisher: client, subscriber: client });
      expect(same.option).toBe('subscriber');
      expect(same.message).toBe(
        'RedisTransport: invalid option "subscriber": it is the same client as "publisher", but a Redis connection ' +
          'that subscribes cannot publish. Pass a second client, or { client } to let RedisTransport duplicate it.',
      );
    });

    it('names what a client lacks', () => {
      const error = invalid({ client: { status: 'ready', publish() {} } });
      expect(error.option).toBe('client');
      expect(error.message).toBe(
        'RedisTransport: invalid option "client": expected an ioredis client (status, publish, duplicate, on, off, connect, quit, ' +
          'disconnect), got {"status":"ready"} without duplicate(), on(), off(), connect(), quit(), disconnect().',
      );
      expect(invalid({ publisher: fakeClient(), subscriber: 'redis://x' }).message).toBe(
        'RedisTransport: invalid option "subscriber": expected an ioredis client (status, subscribe, unsubscribe, on, off, connect, quit, disconnect), got "redis://x".',
      );
    });

    it('accepts only redis:// and rediss:// URLs', () => {
      for (const url of ['localhost:6379', 'http://localhost:6379', '', 42]) {
        const error = invalid({ url });
        expect(error.option).toBe('url');
        expect(error.message).toBe(
          `RedisTransport: invalid option "url": expected a redis:// or rediss:// URL, got ${typeof url === 'string' ? JSON.stringify(url) : url}.`,
        );
      }
    });

    it('rejects an empty prefix, a bad readyTimeout or maxReconnectDelay, and unknown options', () => {
      expect(invalid({ url: 'redis://localhost', prefix: '' }).message).toBe(
        'RedisTransport: invalid option "prefix": expected a non-empty string, got "".',
      );
      expect(invalid({ url: 'redis://localhost', readyTimeout: 0 }).message).toBe(
        'RedisTransport: invalid option "readyTimeout": expected a positive integer (ms), got 0.',
      );
      expect(invalid({ url: 'redis://localhost', maxReconnectDelay: -5 }).message).toBe(
        'RedisTransport: invalid option "maxReconnectDelay": expected a positive integer (ms), got -5.',
      );
      const unknown = invalid({ url: 'redis://localhost', channelPrefix: 'x' });
      expect(unknown.option).toBe('channelPrefix');
      expect(unknown.message).toBe(
        'RedisTransport: unknown option "channelPrefix" (got "x"); the known options are url, client, publisher, subscriber, prefix, readyTimeout, maxReconnectDelay.',
      );
    });
  });

  describe('without ioredis installed', () => {
    afterEach(() => {
      vi.doUnmock('node:module');
      vi.resetModules();
    });

    async function withoutIoredis() {
      vi.resetModules();
      vi.doMock('node:module', async (importOriginal) => {
        const actual = await importOriginal<typeof import('node:module')>();
        const createRequire = (from: string | URL) => {
          const require = actual.createRequire(from);
          return Object.assign((id: string) => {
            if (id === 'ioredis') throw Object.assign(new Error("Cannot find module 'ioredis'"), { code: 'MODULE_NOT_FOUND' });
            return require(id);
          }, require);
        };
        return { ...actual, createRequire, default: { ...actual, createRequire } };
      });
      return (await import('../../src/cluster/redis.transport.js')).RedisTransport;
    }

    it('throws MissingPackageError for { url }, naming the package and the feature', async () => {
      const Transport = await withoutIoredis();
      const { MissingPackageError: FreshMissingPackageError } = await import('../../src/errors/missing-package.error.js');
      let thrown: unknown;
      try {
        new Transport({ url: 'redis://localhost' });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(FreshMissingPackageError);
      expect((thrown as MissingPackageError).code).toBe('RIVERSIDE_ERR_MISSING_PACKAGE');
      expect((thrown as MissingPackageError).message).toBe(
        'RedisTransport needs the optional package "ioredis", which is not installed. Run: npm install ioredis',
      );
    });

    it('needs no ioredis when given clients', async () => {
      const Transport = await withoutIoredis();
      expect(new Transport({ client: fakeClient() }).prefix).toBe('riverside');
    });
  });
});

describe('the Redis server as errors and logs name it', () => {
  const client = (options: unknown) => ({ options }) as unknown as RedisClientLike;

  it.each([
    [{ host: '10.0.0.2', port: 6380, password: 'secret', username: 'app' }, '10.0.0.2:6380'],
    [{ host: '::1', port: 6379 }, '[::1]:6379'],
    [{ path: '/run/redis.sock', host: 'localhost', port: 6379 }, '/run/redis.sock'],
    [{ host: 'redis.internal' }, 'redis.internal'],
    [undefined, 'Redis'],
    [{ host: '' }, 'Redis'],
  ])('%j is %s, never its credentials', (options, shown) => {
    expect(serverOf(client(options))).toBe(shown);
  });
});
