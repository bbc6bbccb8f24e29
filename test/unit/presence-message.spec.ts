import { describe, expect, it } from 'vitest';
import { decodePresence, MAX_MESSAGE_BYTES, packOps } from '../../src/cluster/presence/presence-message.js';

describe('presence messages', () => {
  it('packs ops into one message when they fit, numbering nothing', () => {
    const [message, ...rest] = packOps(['["s+","ann","s1"]', '["m+","room","ann","s1",{"nick":"A"}]'], () => '{"p":1,"t":"delta","n":"abc","s":1}');
    expect(rest).toEqual([]);
    expect(decodePresence(message)).toEqual({ p: 1, t: 'delta', n: 'abc', s: 1, ops: [['s+', 'ann', 's1'], ['m+', 'room', 'ann', 's1', { nick: 'A' }]] });
  });

  it(`splits ops over messages of at most ~${MAX_MESSAGE_BYTES} bytes (NATS refuses payloads over 1 MiB by default), each told its part`, () => {
    const op = JSON.stringify(['m+', 'room', 'user', 'session', { text: 'x'.repeat(1000) }]);
    const ops = Array.from({ length: 1000 }, () => op);
    const messages = packOps(ops, (part, parts) => `{"p":1,"t":"state","n":"abc","s":7,"part":${part},"parts":${parts}}`);
    expect(messages.length).toBeGreaterThan(1);
    for (const message of messages) expect(message.length).toBeLessThan(MAX_MESSAGE_BYTES + 2000);
    const decoded = messages.map((message) => decodePresence(message));
    expect(decoded.map((message) => message && 'part' in message && [message.part, message.parts])).toEqual(
      messages.map((_, index) => [index, messages.length]),
    );
    expect(decoded.flatMap((message) => (message && 'ops' in message ? message.ops : []))).toHaveLength(1000);
  });

  it('reads anything that is not a presence message of this version as null', () => {
    for (const payload of ['', 'hello', '{"p":2,"t":"hb","n":"a","s":1}', '{"p":1,"t":"hb","n":"a"}', '{"p":1,"t":"delta","n":"a","s":1}', '{"p":1,"t":"nope","n":"a"}', 'null']) {
      expect(decodePresence(Buffer.from(payload))).toBeNull();
    }
    expect(decodePresence(Buffer.from('{"p":1,"t":"bye","n":"a"}'))).toEqual({ p: 1, t: 'bye', n: 'a' });
  });
});
