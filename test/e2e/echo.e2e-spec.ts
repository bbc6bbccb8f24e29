import { afterEach, describe, expect, it } from 'vitest';
import { OnMessage, RiversideHandler, type Session } from 'nestjs-riverside';
import { type RunningApp, startRiverside } from '../support/riverside-app.js';

// Riverside's test/echo_test.exs (reference B4): the handler echoes what it receives.
@RiversideHandler()
class EchoHandler {
  @OnMessage()
  onMessage(message: unknown, session: Session) {
    session.send(message);
  }
}

describe('echo (Riverside B4)', () => {
  let running: RunningApp;
  afterEach(() => running?.close());

  it('sends back exactly the JSON it received and keeps the connection open', async () => {
    running = await startRiverside({}, [EchoHandler]);
    const client = await running.connect('/');
    client.send({ content: 'Hello' });
    expect(await client.expectMessage()).toEqual({ content: 'Hello' });
    await client.expectNoMessage(100);
    client.send({ content: 'again' });
    expect(await client.expectMessage()).toEqual({ content: 'again' });
  });
});
