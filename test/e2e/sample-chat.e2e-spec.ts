import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestClient } from 'nestjs-riverside/testing';
import { AppModule } from '../../sample/app.module.js';
import { RecordingLogger } from '../support/riverside-app.js';

// The sample chat (SPEC 12.1) as its users see it: one port for the page, the HTTP API and
// the WebSocket.

describe('the sample chat', () => {
  let app: INestApplication;
  let base: string;
  const clients: TestClient[] = [];

  beforeEach(async () => {
    app = await NestFactory.create(AppModule, { logger: new RecordingLogger() });
    await app.listen(0, '127.0.0.1');
    base = `127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.ws.terminate();
    await app.close();
  });

  async function connect(name: string): Promise<TestClient> {
    const client = await TestClient.connect(`ws://${base}/chat`, { query: { name } });
    clients.push(client);
    expect(await client.expectMessage()).toEqual({ welcome: name, channels: ['lobby'] });
    expect(await client.expectMessage()).toMatchObject({ event: 'joined', channel: 'lobby', user: name });
    return client;
  }

  /** The server stamps what it pushes with its clock: a number of ms since the epoch. */
  const at = expect.any(Number);

  function post(path: string, body?: unknown): Promise<Response> {
    return fetch(`http://${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  it('serves the chat page at /', async () => {
    const response = await fetch(`http://${base}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toContain('<title>Riverside chat</title>');
  });

  it('refuses a handshake without a valid name with 400', async () => {
    const refusal = await TestClient.expectRefused(`ws://${base}/chat`, { query: { name: 'no spaces allowed' } });
    expect(refusal.status).toBe(400);
    expect(refusal.headers['x-chat-error']).toBe('name must be 1-32 letters, digits, _ . -');
  });

  it('puts everyone in the lobby and tells its members who joined', async () => {
    const ann = await connect('ann');
    await connect('bob');
    expect(await ann.expectMessage()).toEqual({ event: 'joined', channel: 'lobby', user: 'bob', members: ['ann', 'bob'], at });
  });

  it('lists each user once in a channel, however many tabs they have open', async () => {
    const annPhone = await connect('ann');
    await connect('ann');
    expect(await annPhone.expectMessage()).toEqual({ event: 'joined', channel: 'lobby', user: 'ann', members: ['ann'], at });
  });

  it('tells a channel who left, with the member list without them, when a connection ends', async () => {
    const ann = await connect('ann');
    const bob = await connect('bob');
    await ann.expectMessage(); // bob joined
    bob.ws.terminate();
    expect(await ann.expectMessage()).toEqual({ event: 'left', channel: 'lobby', user: 'bob', members: ['ann'], at });
  });

  it('answers a join or leave of a badly named channel with an error frame and keeps the connection', async () => {
    const ann = await connect('ann');
    ann.send({ join: 'no spaces' });
    expect(await ann.expectMessage()).toEqual({
      error: 'cannot join "no spaces": a channel name is 1-32 letters, digits, _ . -',
      join: 'no spaces',
    });
    ann.send({ join: 'x'.repeat(33) });
    expect(await ann.expectMessage()).toMatchObject({ error: expect.stringContaining('a channel name is 1-32 letters') });
    ann.send({ leave: 42 });
    expect(await ann.expectMessage()).toEqual({ error: 'cannot leave number: a channel name is 1-32 letters, digits, _ . -', leave: 42 });
    ann.send({ say: 'still here', to: 'lobby' });
    expect(await ann.expectMessage()).toEqual({ from: 'ann', channel: 'lobby', say: 'still here', at });
  });

  it('answers a join past the channel limit with an error frame and keeps the connection', async () => {
    const ann = await connect('ann');
    // Nine more channels (ten with the lobby), paced under the flood limit of 20 frames a second.
    for (let i = 1; i <= 9; i++) {
      ann.send({ join: `room${i}` });
      await ann.expectMessages(2); // the joined event and the ack
      if (i === 5) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    ann.send({ join: 'one-too-many' });
    expect(await ann.expectMessage()).toEqual({
      error: 'cannot join "one-too-many": you are in as many channels as allowed; leave one first',
      join: 'one-too-many',
    });
    ann.send({ leave: 'room1' });
    expect(await ann.expectMessage()).toEqual({ left: 'room1' });
    ann.send({ join: 'one-too-many' });
    expect(await ann.expectMessage()).toMatchObject({ event: 'joined', channel: 'one-too-many' });
    expect(await ann.expectMessage()).toEqual({ joined: 'one-too-many', members: ['ann'] });
  });

  it('serves a favicon', async () => {
    for (const path of ['/favicon.ico', '/favicon.svg']) {
      const response = await fetch(`http://${base}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('image/svg+xml');
      expect(await response.text()).toContain('<svg');
    }
  });

  it('delivers a message said in a channel to every member, the sender included', async () => {
    const ann = await connect('ann');
    const bob = await connect('bob');
    await ann.expectMessage(); // bob joined
    ann.send({ say: 'hello all', to: 'lobby' });
    for (const client of [ann, bob]) {
      expect(await client.expectMessage()).toEqual({ from: 'ann', channel: 'lobby', say: 'hello all', at });
    }
  });

  it('joins and leaves channels with acks, and keeps channels apart', async () => {
    const ann = await connect('ann');
    const bob = await connect('bob');
    await ann.expectMessage(); // bob joined the lobby
    ann.send({ join: 'rust' });
    expect(await ann.expectMessage()).toEqual({ event: 'joined', channel: 'rust', user: 'ann', members: ['ann'], at });
    expect(await ann.expectMessage()).toEqual({ joined: 'rust', members: ['ann'] });
    ann.send({ say: 'only rustaceans', to: 'rust' });
    expect(await ann.expectMessage()).toEqual({ from: 'ann', channel: 'rust', say: 'only rustaceans', at });
    await bob.expectNoMessage(100);
    bob.send({ join: 'rust' });
    expect(await ann.expectMessage()).toEqual({ event: 'joined', channel: 'rust', user: 'bob', members: ['ann', 'bob'], at });
    ann.send({ leave: 'rust' });
    expect(await ann.expectMessage()).toEqual({ left: 'rust' });
    expect(await bob.expectMessage()).toEqual({ event: 'joined', channel: 'rust', user: 'bob', members: ['ann', 'bob'], at });
    expect(await bob.expectMessage()).toEqual({ joined: 'rust', members: ['ann', 'bob'] });
    expect(await bob.expectMessage()).toEqual({ event: 'left', channel: 'rust', user: 'ann', members: ['bob'], at });
  });

  it('closes with 3000 "cannot send to channel" when saying into a channel one is not in', async () => {
    const ann = await connect('ann');
    ann.send({ say: 'hi', to: 'secret' });
    expect(await ann.expectClose(3000)).toEqual({ code: 3000, reason: 'cannot send to channel' });
  });

  it('closes with 3000 "invalid message" on a frame that is not JSON', async () => {
    const ann = await connect('ann');
    ann.sendRaw('not json');
    expect(await ann.expectClose(3000)).toEqual({ code: 3000, reason: 'invalid message' });
  });

  it('answers a malformed say with the ValidationPipe messages as an error frame, and keeps the connection', async () => {
    const ann = await connect('ann');
    ann.send({ say: 42, to: 'lobby' });
    expect(await ann.expectMessage()).toEqual({ error: { status: 400, message: ['say must be a string'] } });
    ann.send({ say: 'still here', to: 'lobby' });
    expect(await ann.expectMessage()).toEqual({ from: 'ann', channel: 'lobby', say: 'still here', at });
  });

  it('closes with 3000 "invalid message" on a JSON frame that is no command (no route takes it)', async () => {
    const ann = await connect('ann');
    ann.send({ shout: 'hi' });
    expect(await ann.expectClose(3000)).toEqual({ code: 3000, reason: 'invalid message' });
  });

  it('delivers a direct message to every device of the recipient and the sender\'s other devices', async () => {
    const annPhone = await connect('ann');
    const annLaptop = await connect('ann');
    await annPhone.expectMessage(); // the laptop joined the lobby
    const bob = await connect('bob');
    await annPhone.expectMessage();
    await annLaptop.expectMessage();
    bob.send({ say: 'psst', toUser: 'ann' });
    const direct = { from: 'bob', toUser: 'ann', say: 'psst', at };
    expect(await annPhone.expectMessage()).toEqual(direct);
    expect(await annLaptop.expectMessage()).toEqual(direct);
    expect(await bob.expectMessage()).toEqual(direct);
  });

  it('tells the sender when the recipient of a direct message is not connected', async () => {
    const ann = await connect('ann');
    ann.send({ say: 'anyone?', toUser: 'ghost' });
    expect(await ann.expectMessage()).toEqual({ from: 'ann', toUser: 'ghost', say: 'anyone?', at });
    expect(await ann.expectMessage()).toEqual({ undelivered: 'ghost' });
  });

  it('delivers into a channel from the HTTP API and lists its members', async () => {
    const ann = await connect('ann');
    const response = await post('/api/channels/lobby/messages', { text: 'maintenance at noon' });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ delivered: 1 });
    expect(await ann.expectMessage()).toEqual({ from: 'server', channel: 'lobby', say: 'maintenance at noon', at });
    const members = (await (await fetch(`http://${base}/api/channels/lobby/members`)).json()) as { userId: string }[];
    expect(members.map((member) => member.userId)).toEqual(['ann']);
  });

  it('kicks a user from the HTTP API through @OnInfo: 4001, and the channel hears that they left', async () => {
    const ann = await connect('ann');
    const bob = await connect('bob');
    await ann.expectMessage(); // bob joined
    const response = await post('/api/users/bob/kick');
    expect(await response.json()).toEqual({ sessions: 1 });
    expect(await bob.expectMessage()).toEqual({ kicked: 'by an administrator' });
    expect(await bob.expectClose(4001)).toEqual({ code: 4001, reason: 'kicked' });
    expect(await ann.expectMessage()).toEqual({ event: 'left', channel: 'lobby', user: 'bob', members: ['ann'], at });
  });

  it('answers a plain GET on the WebSocket path with 426', async () => {
    expect((await fetch(`http://${base}/chat`)).status).toBe(426);
  });
});
