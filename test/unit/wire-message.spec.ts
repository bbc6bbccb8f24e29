import { describe, expect, it } from 'vitest';
import { decodeWireMessage, encodeWireMessage } from '../../src/cluster/wire-message.js';
import { channelTopic, sessionTopic, topicOf, userTopic } from '../../src/cluster/topics.js';

describe('wire messages between nodes', () => {
  it('round-trips a text delivery', () => {
    const payload = encodeWireMessage({ v: 1, kind: 'deliver', origin: 'node-a', binary: false, data: Buffer.from('{"a":1}') });
    expect(decodeWireMessage(payload)).toEqual({ v: 1, kind: 'deliver', origin: 'node-a', binary: false, data: Buffer.from('{"a":1}') });
  });

  it('round-trips a binary delivery, bytes untouched', () => {
    const data = Buffer.from([0xff, 0, 1, 2]);
    const decoded = decodeWireMessage(encodeWireMessage({ v: 1, kind: 'deliver', origin: 'n', binary: true, data }));
    expect(decoded).toMatchObject({ kind: 'deliver', binary: true });
    expect([...(decoded as { data: Buffer }).data]).toEqual([...data]);
  });

  it('round-trips an info as JSON', () => {
    const payload = encodeWireMessage({ v: 1, kind: 'info', origin: 'n', info: { refresh: [1, 2] } });
    expect(decodeWireMessage(payload)).toEqual({ v: 1, kind: 'info', origin: 'n', info: { refresh: [1, 2] } });
  });

  it('round-trips a close with its code and reason', () => {
    const payload = encodeWireMessage({ v: 1, kind: 'close', origin: 'n', code: 4001, reason: 'kicked' });
    expect(decodeWireMessage(payload)).toEqual({ v: 1, kind: 'close', origin: 'n', code: 4001, reason: 'kicked' });
  });

  it('reads what an external publisher sends as a text frame when it is UTF-8', () => {
    expect(decodeWireMessage(Buffer.from('{"hello":1}'))).toEqual({
      v: 0,
      kind: 'external',
      binary: false,
      data: Buffer.from('{"hello":1}'),
    });
  });

  it('reads an external payload that is not UTF-8 as a binary frame', () => {
    expect(decodeWireMessage(Buffer.from([0x80, 0x81]))).toMatchObject({ kind: 'external', binary: true });
  });

  it('refuses a Riverside message of an unknown version or kind', () => {
    const payload = encodeWireMessage({ v: 1, kind: 'info', origin: 'n', info: 1 });
    expect(decodeWireMessage(Buffer.concat([Buffer.from([0xff, 2]), payload.subarray(2)]))).toBeNull();
    expect(decodeWireMessage(Buffer.concat([payload.subarray(0, 2), Buffer.from([9]), payload.subarray(3)]))).toBeNull();
    expect(decodeWireMessage(Buffer.from([0xff, 1]))).toBeNull();
  });
});

describe('topic names (the contract external publishers rely on)', () => {
  it('names user, session and channel topics', () => {
    expect(userTopic('42')).toBe('user:42');
    expect(sessionTopic('42', 'abc')).toBe('session:42/abc');
    expect(channelTopic('room-1')).toBe('channel:room-1');
  });

  it('escapes / and % in a user id so a session topic splits one way only', () => {
    expect(sessionTopic('a/b', 'c')).toBe('session:a%2Fb/c');
    expect(sessionTopic('a%2Fb', 'c')).toBe('session:a%252Fb/c');
    expect(sessionTopic('a', 'b/c')).not.toBe(sessionTopic('a/b', 'c'));
  });

  it('compares ids as strings', () => {
    expect(topicOf({ user: 1 })).toBe(topicOf({ user: '1' }));
    expect(topicOf({ session: [7, 's'] })).toBe('session:7/s');
    expect(topicOf({ channel: 3 })).toBe('channel:3');
  });
});
