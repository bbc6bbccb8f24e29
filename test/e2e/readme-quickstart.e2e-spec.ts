import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RiversideServer } from 'nestjs-riverside';
import { TestClient } from 'nestjs-riverside/testing';

// The README's quick start, run as written (only the port is made ephemeral), so that the
// first thing a newcomer copies keeps working.

const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const WORKDIR = fileURLToPath(new URL('../../.readme-quickstart/', import.meta.url));

/** The ```ts blocks of the README's "Quick start" section, by the file name in their first line. */
function quickStartFiles(): Map<string, string> {
  const readme = readFileSync(README, 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1));
  const files = new Map<string, string>();
  for (const [, code] of section.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const name = /^\/\/ (\S+\.ts)/.exec(code)?.[1];
    if (name) files.set(name, code);
  }
  return files;
}

describe('the README quick start', () => {
  let app: INestApplicationContext;
  let url: string;

  beforeAll(async () => {
    const files = quickStartFiles();
    expect([...files.keys()]).toEqual(['echo.handler.ts', 'app.module.ts', 'main.ts']);
    rmSync(WORKDIR, { recursive: true, force: true });
    mkdirSync(WORKDIR, { recursive: true });
    writeFileSync(`${WORKDIR}echo.handler.ts`, files.get('echo.handler.ts')!);
    writeFileSync(`${WORKDIR}app.module.ts`, files.get('app.module.ts')!.replace('port: 3000', 'port: 0'));
    const { AppModule } = await import(`${WORKDIR}app.module.ts`);
    app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    url = app.get(RiversideServer).url('/ws');
  });

  afterAll(async () => {
    await app?.close();
    rmSync(WORKDIR, { recursive: true, force: true });
  });

  it('echoes to an authenticated client what the README shows', async () => {
    const client = await TestClient.connect(url, { basic: { username: 'alice', password: 'secret' } });
    client.send({ hello: 'world' });
    expect(await client.expectMessage()).toEqual({ echo: { hello: 'world' }, from: 'alice' });
    client.ws.terminate();
  });

  it('refuses a wrong password with 401 and the Basic challenge the README shows', async () => {
    const refusal = await TestClient.expectRefused(url, { basic: { username: 'alice', password: 'wrong' } });
    expect(refusal.status).toBe(401);
    expect(refusal.headers['www-authenticate']).toBe('Basic realm="example.org"');
  });
});
