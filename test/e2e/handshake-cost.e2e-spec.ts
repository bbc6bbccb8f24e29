import { afterEach, describe, expect, it } from 'vitest';
import { OnInit, OnTerminate, RiversideHandler, type Session, type TerminateReason } from 'nestjs-riverside';
import { eventually, type RunningApp, startRiverside } from '../support/riverside-app.js';

// What every handshake and every dropped connection costs is kept small (issue 12); what a
// handler sees stays the same.

@RiversideHandler({ path: '/ids' })
class IdsHandler {
  static ids: string[] = [];
  static reasons: TerminateReason[] = [];

  @OnInit()
  onInit(session: Session) {
    IdsHandler.ids.push(session.id);
  }

  @OnTerminate()
  onTerminate(reason: TerminateReason) {
    IdsHandler.reasons.push(reason);
  }
}

describe('handshake and drop costs', () => {
  let app: RunningApp;
  afterEach(() => app?.close());

  it('gives every session without an id of its own a distinct random 40-hex id, across pool refills', async () => {
    IdsHandler.ids = [];
    app = await startRiverside({}, [IdsHandler]);
    for (let batch = 0; batch < 3; batch++) {
      const clients = await Promise.all(Array.from({ length: 100 }, () => app.connect('/ids')));
      for (const client of clients) client.ws.terminate();
    }

    await eventually(() => expect(IdsHandler.ids).toHaveLength(300));
    for (const id of IdsHandler.ids) expect(id).toMatch(/^[0-9a-f]{40}$/);
    expect(new Set(IdsHandler.ids).size).toBe(300);
  });

  it('tells @OnTerminate of a dropped TCP connection with a ConnectionLostError that carries no stack frames', async () => {
    IdsHandler.reasons = [];
    app = await startRiverside({}, [IdsHandler]);
    const client = await app.connect('/ids');

    client.ws.terminate();

    await eventually(() => expect(IdsHandler.reasons).toHaveLength(1));
    const reason = IdsHandler.reasons[0] as { kind: 'error'; error: Error };
    expect(reason.kind).toBe('error');
    expect(reason.error.name).toBe('ConnectionLostError');
    expect(reason.error.message).toBe('connection lost without a close frame');
    expect(reason.error.stack).toBe('ConnectionLostError: connection lost without a close frame');
  });
});
