import { describe, expect, it } from 'vitest';
import { EncodeError } from '../../src/errors/encode.error.js';
import { serialize } from 'node:v8';
import { decodeWireMessage, encodeWireMessage, isFromOrigin } from '../../src/cluster/wire-message.js';
import { withNextMinor } from '../support/wire.js';
import { channelTopic, sessionTopic, topicOf, userTopic } from '../../src/cluster/topics.js';

describe('wire messages between nodes (version 2)', () => {
  const address = { origin: 'node-a', session: null };

  it('carries a delivery as data, structure included: binary, BigInt, Date, Map, undefined', () => {
    const message = { bin: Buffer.from([0xff, 0, 1]), big: 10n, at: new Date(0), map: new Map([[1, 'a']]), none: undefined };
    const decoded = decodeWireMessage(encodeWireMessage({ ...address, kind: 'deliver', message }));
    expect(decoded).toEqual({ ...address, kind: 'deliver', message });
    expect(Buffer.isBuffer((decoded as { message: typeof message }).message.bin)).toBe(true);
  });

  it('carries a raw Frame as it is, text or binary', () => {
    const data = Buffer.from([0xff, 0, 1, 2]);
    expect(decodeWireMessage(encodeWireMessage({ ...address, kind: 'frame', binary: true, data }))).toEqual({
      ...address,
      kind: 'frame',
      binary: true,
      data,
    });
    expect(decodeWireMessage(encodeWireMessage({ ...address, kind: 'frame', binary: false, data: Buffer.from('hi') }))).toMatchObject({
      kind: 'frame',
      binary: false,
    });
  });

  it('carries an info as data, and a close with its code and reason, for one session of the topic\'s user', () => {
    const session = { origin: 'n', session: 'phone.1 ✓' };
    expect(decodeWireMessage(encodeWireMessage({ ...session, kind: 'info', info: { at: new Date(5), ids: new Set([1]) } }))).toEqual({
      ...session,
      kind: 'info',
      info: { at: new Date(5), ids: new Set([1]) },
    });
    expect(decodeWireMessage(encodeWireMessage({ ...session, kind: 'close', code: 4001, reason: 'kicked' }))).toEqual({
      ...session,
      kind: 'close',
      code: 4001,
      reason: 'kicked',
    });
  });

  it('lays a delivery out as 2.0 always did: header, body length, then V8 serialize() of the message', () => {
    const message = { t: 123456789n, text: 'héllo' };
    const wire = encodeWireMessage({ origin: 'node-a', session: 'ph', kind: 'deliver', message });
    const body = serialize(message);
    const head = Buffer.from([0xff, 0x52, 2, 0, 0, 4, 0, 1 + 6 + 2 + 2, 6, ...Buffer.from('node-a'), 0, 2, ...Buffer.from('ph'), 0, 0, 0, body.length]);
    expect(wire).toEqual(Buffer.concat([head, body]));
  });

  it('lays out a delivery of plain data, written without V8\'s serializer, byte for byte as V8 would', () => {
    // Latin-1 only: V8 aligns a two-byte string on the offset from the start of the wire message, not of the body.
    const message = { text: 'héllo', n: [1, -2, 3], half: 2.5, nested: { ok: true, none: null } };
    const wire = encodeWireMessage({ origin: 'node-a', session: null, kind: 'deliver', message });
    const body = serialize(message);
    const head = Buffer.from([0xff, 0x52, 2, 0, 0, 0, 0, 1 + 6, 6, ...Buffer.from('node-a'), 0, 0, 0, body.length]);
    expect(wire.equals(Buffer.concat([head, body]))).toBe(true);
    expect(decodeWireMessage(wire)).toEqual({ origin: 'node-a', session: null, kind: 'deliver', message });
  });

  it("recognizes a node's own messages from their bytes, and nothing else", () => {
    const own = Buffer.from('0123456789abcdef', 'latin1');
    for (const kind of ['deliver', 'info', 'close', 'frame'] as const) {
      const mine = encodeWireMessage({ origin: '0123456789abcdef', session: null, kind, message: 1, info: 1, code: 1000, reason: '', binary: false, data: Buffer.from('x') } as never);
      expect(isFromOrigin(mine, own)).toBe(true);
      const theirs = encodeWireMessage({ origin: '0123456789abcdeg', session: null, kind, message: 1, info: 1, code: 1000, reason: '', binary: false, data: Buffer.from('x') } as never);
      expect(isFromOrigin(theirs, own)).toBe(false);
    }
    expect(isFromOrigin(encodeWireMessage({ origin: '0123456789abcde', session: null, kind: 'info', info: 1 }), own)).toBe(false);
    expect(isFromOrigin(Buffer.concat([Buffer.from([0xff, 1, 0, 0, 16]), own, Buffer.from('old')]), own)).toBe(false);
    expect(isFromOrigin(Buffer.from('{"hello":1}'), own)).toBe(false);
    expect(isFromOrigin(new Uint8Array(0), own)).toBe(false);
  });

  it('throws an EncodeError for what cannot cross nodes (a function)', () => {
    expect(() => encodeWireMessage({ ...address, kind: 'deliver', message: { f() {} } })).toThrow(EncodeError);
    expect(() => encodeWireMessage({ ...address, kind: 'deliver', message: { f() {} } })).toThrow(/structured clone/);
  });

  it('rejects, with a reason, bytes that are not a Riverside message: external text, truncation, trailing bytes', () => {
    const payload = encodeWireMessage({ ...address, kind: 'info', info: 1 });
    expect(decodeWireMessage(Buffer.from('{"hello":1}'))).toMatchObject({ kind: 'rejected', reason: expect.stringContaining('magic') });
    expect(decodeWireMessage(Buffer.from([0xff, 0x01, 0x02]))).toMatchObject({ kind: 'rejected' });
    expect(decodeWireMessage(payload.subarray(0, payload.length - 1))).toMatchObject({ kind: 'rejected', reason: expect.stringContaining('body length') });
    expect(decodeWireMessage(Buffer.concat([payload, Buffer.from([0])]))).toMatchObject({ kind: 'rejected' });
    expect(decodeWireMessage(Buffer.from([0xff, 0x52, 2, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]))).toMatchObject({ kind: 'rejected' });
    // An info body that is not structured-clone data.
    const garbage = Buffer.from(payload);
    garbage.fill(0xee, garbage.length - 2);
    expect(decodeWireMessage(garbage)).toMatchObject({ kind: 'rejected' });
  });

  it('rejects an unknown major version or kind', () => {
    const payload = encodeWireMessage({ ...address, kind: 'info', info: 1 });
    const nextMajor = Buffer.from(payload);
    nextMajor[2] = 3;
    expect(decodeWireMessage(nextMajor)).toMatchObject({ kind: 'rejected', reason: expect.stringContaining('wire version 3.0') });
    const unknownKind = Buffer.from(payload);
    unknownKind[4] = 9;
    expect(decodeWireMessage(unknownKind)).toMatchObject({ kind: 'rejected', reason: 'unknown kind 9' });
  });

  it('reads a message of a newer minor version, skipping its optional fields and flags', () => {
    const message = encodeWireMessage({ origin: 'future', session: 's1', kind: 'deliver', message: { hi: 1 } });
    expect(decodeWireMessage(withNextMinor(message))).toEqual({ origin: 'future', session: 's1', kind: 'deliver', message: { hi: 1 } });
  });

  it('reads version 1 messages of nestjs-riverside 0.1 nodes: a delivery is a frame already encoded, an info JSON', () => {
    const v1 = (kind: number, flags: number, body: Buffer) => Buffer.concat([Buffer.from([0xff, 1, kind, flags, 3]), Buffer.from('old'), body]);
    expect(decodeWireMessage(v1(0, 0, Buffer.from('{"a":1}')))).toEqual({
      origin: 'old',
      session: null,
      kind: 'frame',
      binary: false,
      data: Buffer.from('{"a":1}'),
    });
    expect(decodeWireMessage(v1(1, 0, Buffer.from('{"refresh":true}')))).toEqual({ origin: 'old', session: null, kind: 'info', info: { refresh: true } });
    expect(decodeWireMessage(v1(2, 0, Buffer.from([0x0f, 0xa1, 0x62, 0x79, 0x65])))).toEqual({
      origin: 'old',
      session: null,
      kind: 'close',
      code: 4001,
      reason: 'bye',
    });
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
    // A session target rides on its user's topic.
    expect(topicOf({ session: [7, 's'] })).toBe('user:7');
    expect(topicOf({ channel: 3 })).toBe('channel:3');
  });
});
