/**
 * Packaging configuration, checked here without building installers (the Electron binary and
 * electron-builder's platform tools cannot be downloaded on these machines): the config passes
 * electron-builder's own schema validation, packs only the built output plus the demo models,
 * and declares the file associations.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const require = createRequire(import.meta.url);
const yaml = require('js-yaml') as { load(text: string): unknown };
const config = yaml.load(readFileSync(path.join(root, 'electron-builder.yml'), 'utf8')) as Record<string, unknown>;
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;

describe('electron-builder configuration', () => {
  it("passes electron-builder's own schema validation", async () => {
    const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as {
      validateConfiguration(config: unknown, logger: { isEnabled: boolean; add(k: string, v: unknown): void }): Promise<void>;
    };
    await expect(validateConfiguration(config, { isEnabled: false, add: () => undefined })).resolves.toBeUndefined();
    // And the validator does reject a wrong key (so the pass above means something).
    await expect(validateConfiguration({ ...config, fileAssociation: [] }, { isEnabled: false, add: () => undefined })).rejects.toThrow(
      /fileAssociation/,
    );
  });

  it('packs only the built main, preload and renderer, and the demo models beside the asar', async () => {
    const files = config.files as string[];
    for (const built of ['dist/main/**/*', 'dist/preload/**/*', 'dist/renderer/**/*', 'package.json']) expect(files).toContain(built);
    // Decide inclusion with electron-builder's own glob matcher, on real and made-up paths.
    const { Minimatch } = require('minimatch') as { Minimatch: new (p: string, o?: object) => { match(f: string): boolean; negate: boolean } };
    const included = (file: string) => {
      let inc = false;
      for (const pattern of files) {
        const m = new Minimatch(pattern.replace(/^!/, ''), { dot: true });
        if (m.match(file)) inc = !pattern.startsWith('!');
      }
      return inc;
    };
    for (const f of ['dist/main/main.js', 'dist/preload/preload.cjs', 'dist/renderer/index.html', 'dist/renderer/assets/engine.worker-x.js', 'package.json']) {
      expect(included(f), f).toBe(true);
    }
    for (const f of [
      'app/contract.ts', 'main/main.ts', 'renderer/src/main.tsx', 'shaders/residual_rmsnorm.wgsl', 'test/unit/x.test.ts',
      'test/fixtures/golden/mamba1-tied/model.safetensors', 'scripts/train/mamba_torch.py', 'dist/main/main.js.map',
      'dist/cli/cli.js', 'node_modules/react/index.js', 'resources/models/x/model.safetensors', 'README.md',
    ]) {
      expect(included(f), f).toBe(false);
    }
    expect(config.asar).toBe(true);
    expect(config.extraResources).toEqual([{ from: 'resources/models', to: 'models', filter: ['**/*'] }]);
    expect(readFileSync(path.join(root, 'main/main.ts'), 'utf8')).toMatch(/path\.join\(process\.resourcesPath, 'models'\)/);
    // Nothing needs node_modules at run time: every dependency is bundled into dist/.
    expect(pkg.dependencies).toEqual({});
  });

  it('flips the Electron fuses that close the packaged binary, with the keys electron-builder 26 reads', async () => {
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableCookieEncryption: true,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
    });
    // electron-builder turns them into @electron/fuses options: each key maps to a fuse (a
    // misspelt key would be dropped silently, so check the mapping, not just the schema).
    const { PlatformPackager } = require('app-builder-lib') as {
      PlatformPackager: { prototype: { generateFuseConfig(this: unknown, fuses: unknown): Promise<Record<string, unknown>> } };
    };
    const { FuseV1Options, FuseVersion } = require('@electron/fuses') as { FuseV1Options: Record<string, number>; FuseVersion: Record<string, string> };
    const fuses = await PlatformPackager.prototype.generateFuseConfig.call({}, config.electronFuses);
    expect(fuses).toEqual({
      version: FuseVersion.V1,
      resetAdHocDarwinSignature: undefined,
      [FuseV1Options.RunAsNode as number]: false,
      [FuseV1Options.EnableNodeOptionsEnvironmentVariable as number]: false,
      [FuseV1Options.EnableNodeCliInspectArguments as number]: false,
      [FuseV1Options.EnableCookieEncryption as number]: true,
      [FuseV1Options.EnableEmbeddedAsarIntegrityValidation as number]: true,
      [FuseV1Options.OnlyLoadAppFromAsar as number]: true,
    });
    // The schema refuses an unknown fuse key.
    const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as {
      validateConfiguration(config: unknown, logger: { isEnabled: boolean; add(k: string, v: unknown): void }): Promise<void>;
    };
    await expect(
      validateConfiguration({ ...config, electronFuses: { runAsnode: false } }, { isEnabled: false, add: () => undefined }),
    ).rejects.toThrow(/electronFuses/);
  });

  it('declares .safetensors, .gguf and .mamba-session associations, and targets every platform', () => {
    expect((config.fileAssociations as { ext: string }[]).map((a) => a.ext)).toEqual(['safetensors', 'gguf', 'mamba-session']);
    expect((config.linux as { target: string[] }).target).toEqual(['AppImage', 'deb']);
    expect((config.linux as { maintainer?: string }).maintainer).toBeTruthy();
    expect((config.mac as { target: { target: string; arch: string[] }[] }).target[0]).toEqual({ target: 'dmg', arch: ['x64', 'arm64'] });
    expect((config.win as { target: { target: string }[] }).target[0]?.target).toBe('nsis');
    expect(config.productName).toBe('Mamba Studio');
    const icon = readFileSync(path.join(root, 'build-resources/icon.png'));
    expect(icon.subarray(1, 4).toString()).toBe('PNG');
    expect([icon.readUInt32BE(16), icon.readUInt32BE(20)]).toEqual([1024, 1024]);
  });

  it('has release and CI workflows', () => {
    const release = readFileSync(path.join(root, '.github/workflows/release.yml'), 'utf8');
    const parsed = yaml.load(release) as { on: { push: { tags: string[] } }; jobs: Record<string, { strategy: { matrix: { os: string[] } } }> };
    expect(parsed.on.push.tags).toEqual(['v*']);
    expect(Object.values(parsed.jobs)[0]?.strategy.matrix.os).toEqual(['ubuntu-latest', 'macos-latest', 'windows-latest']);
    expect(existsSync(path.join(root, '.github/workflows/ci.yml'))).toBe(true);
    expect(readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8')).toMatch(new RegExp(`## ${String(pkg.version).replace(/\./g, '\\.')}`));
  });
});
