import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppModule } from '../../sample/app.module.js';
import { RecordingLogger } from '../support/riverside-app.js';

// The sample chat in a real browser (SPEC 12.1): headless Chromium from Debian's package,
// which .ci/run installs. Outside CI, a machine without it skips this file, loudly.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && !process.env.CI) {
  console.warn(`\n!!! ${CHROMIUM} not found: the browser test of the sample is SKIPPED (apt-get install chromium)\n`);
}

describe.skipIf(!available && !process.env.CI)('the sample chat in headless Chromium', () => {
  let app: INestApplication;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    app = await NestFactory.create(AppModule, { logger: new RecordingLogger() });
    await app.listen(0, '127.0.0.1');
    origin = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  async function signIn(name: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(origin);
    await page.fill('#name', name);
    await page.click('#login button');
    await page.waitForSelector(`#status:text("connected as ${name}")`);
    return page;
  }

  it('lets two people chat in the lobby over ws://', async () => {
    const ann = await signIn('ann');
    const bob = await signIn('bob');
    await ann.waitForSelector('#log p:text("bob joined #lobby")');

    await ann.fill('#text', 'hello from a real browser');
    await ann.click('#say button');
    await bob.waitForSelector('#log p:text("#lobby ann: hello from a real browser")');

    await bob.fill('#text', '@ann just for you');
    await bob.click('#say button');
    await ann.waitForSelector('#log p.direct:text("bob → ann: just for you")');
    expect(await ann.locator('#channels li').allTextContents()).toEqual(['#lobby']);
  }, 20_000);

  it('shows the close code when the server kicks the user', async () => {
    const carol = await signIn('carol');
    await fetch(`${origin}/api/users/carol/kick`, { method: 'POST' });
    await carol.waitForSelector('#status:text("disconnected (4001 kicked)")');
  }, 20_000);
});
