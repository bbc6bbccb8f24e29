import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The project layout `nest new` (@nestjs/cli 12, @nestjs/schematics 12.0.x) generates, reduced
 * to what compiling and running needs: its package.json `type`, its tsconfig.json and
 * tsconfig.build.json as the templates `files/ts-esm` (the default, `--type esm`) and
 * `files/ts` (`--type cjs`) render them with `--strict` and no spec files.
 */
const TSCONFIG = {
  compilerOptions: {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    resolvePackageJsonExports: true,
    esModuleInterop: true,
    isolatedModules: true,
    declaration: true,
    removeComments: true,
    emitDecoratorMetadata: true,
    experimentalDecorators: true,
    allowSyntheticDefaultImports: true,
    target: 'ES2023',
    sourceMap: true,
    outDir: './dist',
    rootDir: '.',
    incremental: true,
    skipLibCheck: true,
    strict: true,
    strictPropertyInitialization: false,
    types: ['vitest/globals', 'node'],
  },
};
const TSCONFIG_BUILD = {
  extends: './tsconfig.json',
  compilerOptions: { rootDir: './src' },
  include: ['src'],
  exclude: ['node_modules', 'test', 'dist', '**/*spec.ts'],
};

/** The `main.ts` of the CommonJS template: no top-level await there, and no `.js` suffix. */
export const CJS_MAIN = `import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  await app.listen(process.env.PORT ?? 3000);
}
void bootstrap();
`;

/** The ESM template's `vitest.config.e2e.ts` (what `npm run test:e2e` runs). */
export const VITEST_E2E_CONFIG = `import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { tsconfigPaths: true },
  test: {
    globals: true,
    root: './',
    include: ['**/*.e2e-spec.ts'],
  },
});
`;

export type ModuleType = 'esm' | 'cjs';

/**
 * Packs this project as npm would publish it (`npm pack`: only the `files` of package.json go
 * in) into `dir`, and returns the tarball's path. Needs dist/ built (test/support/build-once.ts).
 */
export async function packProject(dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, timeout: 60_000 });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  return join(dir, filename);
}

/**
 * A fresh app directory in the OS temp dir with the scaffold's config files and `files` (paths
 * relative to the app, e.g. `src/main.ts`). Its node_modules links every package this project
 * has installed (Nest 12, ws, @types/node...), and holds `nestjs-riverside` unpacked from
 * `tarball` as `npm install` would: a real directory, so that its own imports resolve there.
 */
export async function scaffoldApp(type: ModuleType, tarball: string, files: Record<string, string>): Promise<string> {
  const app = mkdtempSync(join(tmpdir(), `riverside-nest-${type}-`));
  const packageJson = { name: `quick-start-${type}`, version: '0.0.1', private: true, ...(type === 'esm' ? { type: 'module' } : {}) };
  writeFileSync(join(app, 'package.json'), JSON.stringify(packageJson, null, 2));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  writeFileSync(join(app, 'tsconfig.build.json'), JSON.stringify(TSCONFIG_BUILD, null, 2));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(app, path)), { recursive: true });
    writeFileSync(join(app, path), text);
  }
  const modules = join(app, 'node_modules');
  mkdirSync(modules);
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name.startsWith('.')) continue;
    symlinkSync(join(ROOT, 'node_modules', name), join(modules, name), 'dir');
  }
  mkdirSync(join(modules, 'nestjs-riverside'));
  await run('tar', ['xzf', tarball, '--strip-components=1', '-C', join(modules, 'nestjs-riverside')], { timeout: 30_000 });
  return app;
}

/**
 * `tsc -p tsconfig.build.json` in the app, as `nest build` runs it (or, with `project`
 * 'tsconfig.json', type-checks every file, tests included, as an editor does); rejects with the
 * compiler's output.
 */
export async function compileApp(app: string, project = 'tsconfig.build.json'): Promise<void> {
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  const args = project === 'tsconfig.build.json' ? ['-p', project] : ['-p', project, '--noEmit'];
  try {
    await run(process.execPath, [tsc, ...args], { cwd: app, timeout: 60_000 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`The quick start does not compile in a ${app} scaffold:\n${stdout}${stderr}`);
  }
}
