import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, uniquePrefix } from '../support/brokers.js';
import { REDIS_URL, redisAvailable } from '../support/redis.js';

// The sample chat as two node processes on one Redis (CHAT_REDIS_URL), two browser pages, one on
// each node: the member list and direct messages span both (SPEC 9.3, 12.1). Skipped like
// sample-browser.e2e-spec.ts without Chromium, and like the cluster tests without Redis.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM) && (await redisAvailable());
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface ChatNode {
  readonly child: ChildProcess;
  readonly origin: string;
}

/** Compiles the sample as `npm start` does (sample/dist, against the package's dist/). */
async function buildSample(): Promise<void> {
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', 'sample/tsconfig.json'], { cwd: ROOT, timeout: 90_000 });
  cpSync(join(ROOT, 'sample/public'), join(ROOT, 'sample/dist/public'), { recursive: true });
}

async function startChatNode(prefix: string): Promise<ChatNode> {
  const port = await freePort();
  const child = spawn(process.execPath, ['sample/dist/main.js'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), CHAT_REDIS_URL: REDIS_URL, CHAT_PREFIX: prefix },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the sample did not start within 30 s\n${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`the sample exited (${code})\n${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('Chat on')) return;
      clearTimeout(timer);
      resolve();
    });
  });
  return { child, origin: `http://127.0.0.1:${port}` };
}

describe.skipIf(!available && !process.env.CI)('the sample chat on two node processes, in headless Chromium', () => {
  let nodes: ChatNode[] = [];
  let browser: Browser;

  beforeAll(async () => {
    await buildSample();
    const prefix = uniquePrefix('sample-chat');
    nodes = await Promise.all([startChatNode(prefix), startChatNode(prefix)]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all(
      nodes.map(
        ({ child }) =>
          new Promise((resolve) => {
            child.once('exit', resolve);
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
  });

  async function signIn(node: ChatNode, name: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
    await page.goto(node.origin);
    await page.fill('#name', name);
    await page.click('#login button');
    await page.waitForSelector(`#status:text("connected as ${name}")`);
    return page;
  }

  const members = (page: Page) => page.locator('#members li').allTextContents();

  it('shows one live member list across both nodes, and reaches a user on the other node directly', async () => {
    const ann = await signIn(nodes[0], 'ann');
    const bob = await signIn(nodes[1], 'bob');

    // bob's join happened on the other node: ann's page hears it, with the cluster's list.
    await ann.waitForSelector('#log li:has-text("bob joined #lobby")');
    expect(await members(ann)).toEqual(['ann', 'bob']);
    // bob's own list, from the join reply of his node, has ann from the first node.
    await bob.waitForSelector('#members li:text("ann")');
    expect(await members(bob)).toEqual(['ann', 'bob']);

    await bob.fill('#text', '@ann across nodes');
    await bob.click('#say button');
    await ann.waitForSelector('#log li.direct:has-text("bob → ann") :text("across nodes")');
    // ann is on the other node, but online: no "is not connected".
    await bob.waitForTimeout(300);
    expect(await bob.locator('#log li:has-text("is not connected")').count()).toBe(0);

    await bob.close();
    await ann.waitForSelector('#log li:has-text("bob left #lobby")');
    expect(await members(ann)).toEqual(['ann']);
    await ann.close();
  }, 60_000);
});
