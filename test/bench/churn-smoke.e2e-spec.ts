import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { benchFiles, childOutput, ROOT } from '../support/bench-files.js';

// `npm run soak:churn` (bench/soak/churn.mjs) at CHURN_SMOKE's scale: 2 batches of 1,000
// connections, the whole mix (refused, reset, echoed and closed, FIN-closed), against each
// server it can run. Figures are not asserted (the machine is shared). What its user relies on:
// it exits 0 (every connection played its part, else it fails), prints one sample per batch, and
// after every batch the server holds nothing of the connections that have gone.
/** CHURN_SMOKE's defaults (bench/soak/churn.mjs). */
const BATCHES = 2;
const CONNECTIONS = 1000;
/** Connection kinds 1..9 of every 10 are accepted; kind 0 is refused at the handshake (401). */
const ACCEPTED_PER_BATCH = (CONNECTIONS * 9) / 10;

async function churn(contender: 'riverside' | 'raw-ws'): Promise<Record<string, number | string>[]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['bench/soak/churn.mjs'], {
    cwd: ROOT,
    env: { ...process.env, CHURN_SMOKE: '1', CHURN_CONTENDER: contender, CHURN_MAX_MINUTES: '1' },
    timeout: 70_000,
  }).catch((error: unknown) => {
    throw new Error(`npm run soak:churn (CHURN_SMOKE=1, ${contender}) failed: ${childOutput(error)}`);
  });
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number | string>);
}

describe('npm run soak:churn (smoke)', () => {
  it('churns 2 batches of connections through Riverside, which holds none of them afterwards', async () => {
    const before = benchFiles();
    const samples = await churn('riverside');
    expect(samples.map((sample) => sample.batch)).toEqual(Array.from({ length: BATCHES }, (_, batch) => batch));
    for (const sample of samples) {
      expect(sample.contender).toBe('riverside');
      expect(sample.connPerS).toBeGreaterThan(0);
      expect(sample.opened).toBe(ACCEPTED_PER_BATCH * ((sample.batch as number) + 1));
      expect({
        openNow: sample.openNow,
        connections: sample.connections,
        users: sample.users,
        channelMembers: sample.channelMembers,
        handshakes: sample.handshakes,
        handshakeDeadlines: sample.handshakeDeadlines,
        preUpgradeGuard: sample.preUpgradeGuard,
        pendingTerminations: sample.pendingTerminations,
        relaySubscribing: sample.relaySubscribing,
        gatewayClients: sample.gatewayClients,
      }).toEqual({
        openNow: 0,
        connections: 0,
        users: 0,
        channelMembers: 0,
        handshakes: 0,
        handshakeDeadlines: 0,
        preUpgradeGuard: 0,
        pendingTerminations: 0,
        relaySubscribing: 0,
        gatewayClients: 0,
      });
    }
    expect(benchFiles()).toEqual(before);
  }, 80_000);

  it('churns the same through raw ws, the baseline', async () => {
    const samples = await churn('raw-ws');
    expect(samples.map((sample) => sample.batch)).toEqual(Array.from({ length: BATCHES }, (_, batch) => batch));
    for (const sample of samples) {
      expect(sample.contender).toBe('raw-ws');
      expect(sample.connPerS).toBeGreaterThan(0);
      expect({ openNow: sample.openNow, clients: sample.clients, channelMembers: sample.channelMembers }).toEqual({
        openNow: 0,
        clients: 0,
        channelMembers: 0,
      });
    }
  }, 80_000);
});
