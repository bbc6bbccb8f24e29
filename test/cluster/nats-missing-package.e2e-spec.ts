import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const DIST = pathToFileURL(join(import.meta.dirname, '../../dist/index.js')).href;

/**
 * Node resolves '@nats-io/*' as if from a directory without node_modules: exactly what a user
 * without the optional peer gets, with Node's own error.
 */
const HOOKS = `
  export async function resolve(specifier, context, next) {
    if (specifier.startsWith('@nats-io/')) {
      return next(specifier, { ...context, parentURL: ${JSON.stringify(pathToFileURL(join(tmpdir(), `no-nats-${process.pid}`, 'app.mjs')).href)} });
    }
    return next(specifier, context);
  }`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

/** Runs `main` (an ES module body) in a fresh Node without @nats-io/transport-node; its stdout as JSON. */
async function withoutNats(main: string): Promise<unknown> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, '--input-type=module', '-e', main],
    { timeout: 8000 },
  );
  return JSON.parse(stdout);
}

describe('NatsTransport when @nats-io/transport-node is not installed (an optional peer)', () => {
  it('loads the package; connect() with servers throws MissingPackageError naming the package and the fix', async () => {
    const result = await withoutNats(`
      const { NatsTransport, MissingPackageError } = await import(${JSON.stringify(DIST)});
      let nats = 'installed';
      await import('@nats-io/transport-node').catch((error) => (nats = error.code));
      const transport = new NatsTransport({ servers: 'nats://127.0.0.1:4222' });
      const error = await transport.connect().then(() => null, (error) => error);
      console.log(JSON.stringify({ nats, missing: error instanceof MissingPackageError, code: error?.code, message: error?.message }));
    `);
    expect(result).toEqual({
      nats: 'ERR_MODULE_NOT_FOUND',
      missing: true,
      code: 'RIVERSIDE_ERR_MISSING_PACKAGE',
      message:
        'NatsTransport needs the optional package "@nats-io/transport-node", which is not installed. Run: npm install @nats-io/transport-node',
    });
  });
});
