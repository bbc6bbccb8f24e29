import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { API } from 'typescript/unstable/sync';
import { beforeAll, describe, expect, it } from 'vitest';

// What `npm publish` would ship, checked on the tarball `npm pack` builds from the dist/ that
// test/support/build-once.ts compiled: the files the README points to, the metadata the
// registry page shows, and a doc comment on every public export.

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const manifest = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as Record<string, unknown>;
const REPOSITORY = 'https://github.com/nestjs-riverside/nestjs-riverside';

/** Markdown links and images, and HTML `src`/`href`, that point somewhere (not a `#` anchor). */
function linkTargets(markdown: string): string[] {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  const targets = [
    ...[...withoutCode.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1]!),
    ...[...withoutCode.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((match) => match[1]!),
  ];
  return targets.filter((target) => !target.startsWith('#'));
}

describe('the published package', () => {
  let files: string[];

  beforeAll(async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: ROOT, timeout: 60_000 });
    files = (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((file) => file.path);
  }, 60_000);

  it('ships the code, its types, the docs, the changelog and the license', () => {
    for (const path of [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'docs/api.md',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/testing/index.js',
      'dist/testing/index.d.ts',
    ]) {
      expect(files, path).toContain(path);
    }
    expect(files.filter((path) => path.startsWith('src/') || path.startsWith('test/') || path.startsWith('sample/'))).toEqual([]);
  });

  it('holds every file a relative README link points to; everything else is an absolute URL', () => {
    const readme = readFileSync(`${ROOT}README.md`, 'utf8');
    const broken: string[] = [];
    for (const target of linkTargets(readme)) {
      if (/^(https?:|mailto:)/.test(target)) continue;
      const path = decodeURI(target.split('#')[0]!).replace(/^\.\//, '');
      const shipped = path.endsWith('/') ? files.some((file) => file.startsWith(path)) : files.includes(path);
      if (!shipped) broken.push(target);
    }
    expect(broken, 'README links that are dead on the registry page (ship the file, or link it absolutely)').toEqual([]);
  });

  it('names its license, and the LICENSE file is that license', () => {
    expect(manifest.license).toBe('MIT');
    const license = readFileSync(`${ROOT}LICENSE`, 'utf8');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} nestjs-riverside contributors\n/);
    expect(license).toContain('THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND');
  });

  it('points to its repository, home page and issue tracker', () => {
    expect(manifest.repository).toEqual({ type: 'git', url: `git+${REPOSITORY}.git` });
    expect(manifest.homepage).toBe(`${REPOSITORY}#readme`);
    expect(manifest.bugs).toEqual({ url: `${REPOSITORY}/issues` });
  });

  it('keeps a changelog in the Keep a Changelog format, with an Unreleased section', () => {
    const changelog = readFileSync(`${ROOT}CHANGELOG.md`, 'utf8');
    expect(changelog).toContain('[Keep a Changelog](https://keepachangelog.com/');
    expect(changelog).toMatch(/^## \[Unreleased\]$/m);
  });

  it('declares no side effects, and importing it indeed changes nothing global', async () => {
    expect(manifest.sideEffects).toBe(false);
    // A bundler may drop an import of a package without side effects; check the claim holds:
    // loading both entry points adds no global, no process listener and no timer beyond what
    // its peer dependencies, loaded first (as an app has), already did.
    const peers = ['reflect-metadata', '@nestjs/common', '@nestjs/core', '@nestjs/platform-ws', 'ws'];
    const script = `
      ${peers.map((peer) => `await import('${peer}');`).join(' ')}
      const snapshot = () => JSON.stringify({
        globals: Object.getOwnPropertyNames(globalThis).sort(),
        listeners: process.eventNames().map((name) => [String(name), process.listenerCount(name)]),
        // Timers, sockets, servers; file reads still settling from the imports are not ours.
        handles: process.getActiveResourcesInfo().filter((kind) => !/^(FSReq|CloseReq|FileHandle)/.test(kind)).sort(),
      });
      const before = snapshot();
      await import('${ROOT}dist/index.js');
      await import('${ROOT}dist/testing/index.js');
      await new Promise((resolve) => setImmediate(resolve));
      const after = snapshot();
      console.log(JSON.stringify({ same: before === after, before, after }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    const { same, before, after } = JSON.parse(stdout) as { same: boolean; before: string; after: string };
    expect(after).toBe(before);
    expect(same).toBe(true);
  });

  describe('doc comments', () => {
    // The TypeScript 7 compiler API: a checker over the emitted .d.ts, as an editor sees them.
    let api: API;
    let tsconfig: string;
    beforeAll(() => {
      const dir = mkdtempSync(join(tmpdir(), 'riverside-tsdoc-'));
      tsconfig = join(dir, 'tsconfig.json');
      const compilerOptions = { module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, typeRoots: [`${ROOT}node_modules/@types`] };
      writeFileSync(tsconfig, JSON.stringify({ compilerOptions, files: [`${ROOT}dist/index.d.ts`, `${ROOT}dist/testing/index.d.ts`] }));
      api = new API({ cwd: ROOT });
      return () => {
        api.close();
        rmSync(dir, { recursive: true, force: true });
      };
    });

    /** The exports of a built entry point that have no doc comment on their declaration. */
    function undocumentedExports(entry: string): { exports: number; undocumented: string[] } {
      const snapshot = api.updateSnapshot({ openProjects: [tsconfig] });
      const project = snapshot.getProject(tsconfig)!;
      const file = project.program.getSourceFile(`${ROOT}${entry}`)!;
      const module = project.checker.getSymbolAtLocation(file)!;
      const exported = project.checker.getExportsOfModule(module);
      const undocumented = exported
        .filter((symbol) => {
          const target = project.checker.getAliasedSymbol(symbol);
          const declared = project.checker.isUnknownSymbol(target) ? symbol : target;
          return project.checker.getDocumentationCommentOfSymbol(declared).trim() === '';
        })
        .map((symbol) => symbol.name);
      return { exports: exported.length, undocumented };
    }

    it.each(['dist/index.d.ts', 'dist/testing/index.d.ts'])('are on every export of %s', (entry) => {
      const { exports, undocumented } = undocumentedExports(entry);
      expect(exports).toBeGreaterThan(5);
      expect(undocumented, `exports of ${entry} without a /** doc comment */`).toEqual([]);
    }, 30_000);
  });
});
