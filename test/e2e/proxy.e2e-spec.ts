import fc from 'fast-check';
import { isIP } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuthRequest, type AuthResult, OnAuthenticate, OnInit, type PeerAddress, RiversideHandler, type Session } from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

// Issue 6, point 5: `trustProxy` gives `peer.forwardedFor` Express's meaning (the right-most
// address that is not a trusted proxy); without it, forwardedFor is the client-controlled
// left-most entry.

@RiversideHandler({ path: '/peer' })
class PeerHandler {
  @OnAuthenticate()
  authenticate(req: AuthRequest): AuthResult<PeerAddress> {
    return { userId: 'peer', state: req.peer };
  }

  @OnInit()
  init(session: Session<PeerAddress>) {
    return session.state;
  }
}

let running: RunningApp;
afterEach(() => running?.close());

async function peerSeenWith(forwardedFor: string | undefined): Promise<PeerAddress> {
  const client = await TestClient.connect(running.url('/peer'), {
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  });
  try {
    return (await client.expectMessage()) as PeerAddress;
  } finally {
    client.ws.terminate();
  }
}

const CHAIN = '198.51.100.23, 203.0.113.7, 10.0.0.1';

describe('trustProxy as a hop count', () => {
  it('0 hops: forwardedFor is the socket address, whatever the header says', async () => {
    running = await startRiverside({ trustProxy: 0 }, [PeerHandler]);
    expect(await peerSeenWith(CHAIN)).toMatchObject({ address: '127.0.0.1', forwardedFor: '127.0.0.1' });
  });

  it('1 hop: forwardedFor is the right-most entry (what the one proxy saw)', async () => {
    running = await startRiverside({ trustProxy: 1 }, [PeerHandler]);
    expect((await peerSeenWith(CHAIN)).forwardedFor).toBe('10.0.0.1');
  });

  it('2 hops: forwardedFor is the second entry from the right; entries the client prepended are ignored', async () => {
    running = await startRiverside({ trustProxy: 2 }, [PeerHandler]);
    expect((await peerSeenWith(CHAIN)).forwardedFor).toBe('203.0.113.7');
    expect((await peerSeenWith(`6.6.6.6, ${CHAIN}`)).forwardedFor).toBe('203.0.113.7');
  });

  it('more hops than entries: forwardedFor is the left-most entry', async () => {
    running = await startRiverside({ trustProxy: 5 }, [PeerHandler]);
    expect((await peerSeenWith(CHAIN)).forwardedFor).toBe('198.51.100.23');
  });

  it('without the header: forwardedFor is the socket address', async () => {
    running = await startRiverside({ trustProxy: 1 }, [PeerHandler]);
    expect((await peerSeenWith(undefined)).forwardedFor).toBe('127.0.0.1');
  });

  it('an entry that is not an IP address where the walk stops: forwardedFor is empty', async () => {
    running = await startRiverside({ trustProxy: 2 }, [PeerHandler]);
    expect((await peerSeenWith('198.51.100.23, <script>, 10.0.0.1')).forwardedFor).toBe('');
  });
});

describe('trustProxy as addresses and ranges', () => {
  it('walks right to left past the trusted proxies (loopback, 10.0.0.0/8) to the first untrusted address', async () => {
    running = await startRiverside({ trustProxy: ['loopback', '10.0.0.0/8'] }, [PeerHandler]);
    expect((await peerSeenWith('198.51.100.23, 203.0.113.7, 10.1.2.3, 10.0.0.1')).forwardedFor).toBe('203.0.113.7');
  });

  it('stops at the socket address when the peer itself is not a trusted proxy', async () => {
    running = await startRiverside({ trustProxy: '10.0.0.0/8' }, [PeerHandler]);
    expect((await peerSeenWith(CHAIN)).forwardedFor).toBe('127.0.0.1');
  });

  it('fails the boot with the option named for an invalid range', async () => {
    await expect(startRiverside({ trustProxy: ['10.0.0.0/33'] }, [PeerHandler])).rejects.toThrow(
      'RiversideModule: invalid option "trustProxy": expected true, false, a number of proxy hops',
    );
    await expect(startRiverside({ trustProxy: -1 }, [PeerHandler])).rejects.toThrow('invalid option "trustProxy"');
    await expect(startRiverside({ trustProxy: ['proxy.internal'] }, [PeerHandler])).rejects.toThrow('got "proxy.internal"');
  });
});

describe('without trustProxy', () => {
  it('forwardedFor is the left-most entry, which the client controls', async () => {
    running = await startRiverside({}, [PeerHandler]);
    expect((await peerSeenWith(`6.6.6.6, ${CHAIN}`)).forwardedFor).toBe('6.6.6.6');
  });
});

describe('arbitrary X-Forwarded-For values (property)', () => {
  /** Header values Node's HTTP client will send (it refuses control characters). */
  const entry = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ maxLength: 12 }), fc.constant(''));
  const header = fc
    .tuple(fc.array(entry, { maxLength: 6 }), fc.constantFrom(',', ', ', ' , '))
    .map(([entries, separator]) => entries.join(separator))
    .filter((value) => /^[\x20-\x7e]*$/.test(value));

  for (const trustProxy of [2, ['loopback', '10.0.0.0/8']] as const) {
    it(`never fails a handshake, and forwardedFor is a listed address, the socket address or '' (trustProxy ${JSON.stringify(trustProxy)})`, async () => {
      running = await startRiverside({ trustProxy: trustProxy as number | string[] }, [PeerHandler]);
      await fc.assert(
        fc.asyncProperty(header, async (value) => {
          const peer = await peerSeenWith(value);
          const listed = value.split(',').map((item) => item.trim()).filter((item) => isIP(item) !== 0);
          expect(peer.address).toBe('127.0.0.1');
          expect(['', '127.0.0.1', ...listed]).toContain(peer.forwardedFor);
          if (trustProxy === 2) {
            // Hop 0 is the socket, hop 1 the right-most entry, hop 2 the one before it; an entry
            // that is not an IP address ends the walk with ''.
            const entries = value.trim() === '' ? [] : value.split(',').map((item) => item.trim()).reverse();
            const walked = ['127.0.0.1', ...entries].slice(0, 3);
            const expected = walked.every((address) => isIP(address) !== 0) ? walked[walked.length - 1] : '';
            expect(peer.forwardedFor).toBe(expected);
          }
        }),
        { numRuns: 60 },
      );
    }, 30_000);
  }
});
