/**
 * The real desktop app through Playwright's Electron driver. Runs when the Electron binary is
 * installed (a normal `npm install`); on machines installed with ELECTRON_SKIP_BINARY_DOWNLOAD=1
 * it reports itself skipped with that reason.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { _electron as electron } from 'playwright-core';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');

function electronBinary(): { path: string } | { reason: string } {
  try {
    const binary = createRequire(import.meta.url)('electron') as unknown;
    if (typeof binary === 'string') return { path: binary };
    return { reason: 'the electron package did not give a binary path' };
  } catch (error) {
    return {
      reason: `Electron binary not installed (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); install without ELECTRON_SKIP_BINARY_DOWNLOAD to run this test`,
    };
  }
}

describe('desktop app (Electron)', () => {
  it('opens one secure window with the status bar and the bundled models', async (test) => {
    const binary = electronBinary();
    if (!('path' in binary)) return test.skip(binary.reason);
    const args = [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '.'];
    const app = await electron.launch({ executablePath: binary.path, args, cwd: root });
    try {
      const window = await app.firstWindow();
      await window.waitForLoadState('domcontentloaded');
      expect(await window.title()).toBe('Mamba Studio');
      expect(window.url()).toBe('app://studio/index.html');
      await expect.poll(() => window.getByTestId('app-version').textContent(), { timeout: 30_000 }).toMatch(/desktop \(Electron/);
      await expect.poll(() => window.getByTestId('gpu-status').textContent(), { timeout: 60_000 }).toMatch(/^WebGPU/);
      // The page has no Node: the preload exposes only the contract.
      expect(await window.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined');
      expect(await window.evaluate(() => Object.keys((globalThis as unknown as { studio: object }).studio).sort())).toEqual(
        ['getAppInfo', 'getNotices', 'listModels', 'on', 'openModelDialog', 'openModelPaths', 'removeModel'],
      );
      // Sandboxed and context-isolated: the page sees neither Node's process nor Electron's ipcRenderer.
      expect(await window.evaluate(() => typeof (globalThis as { process?: unknown }).process)).toBe('undefined');
      expect(await window.evaluate(() => typeof (globalThis as { ipcRenderer?: unknown }).ipcRenderer)).toBe('undefined');
      // Navigation away from the app is blocked.
      await window.evaluate(() => {
        location.href = 'https://example.invalid/';
      });
      await new Promise((r) => setTimeout(r, 500));
      expect(window.url()).toBe('app://studio/index.html');
      mkdirSync(path.join(root, 'test-results'), { recursive: true });
      await window.screenshot({ path: path.join(root, 'test-results', 'electron-main-window.png') });
    } finally {
      await app.close();
    }
  });
});
