/**
 * The web build for e2e tests: `vite preview` of the renderer build on a free port, Chromium
 * (see browser.ts) with one page at the app, and the page's errors (uncaught exceptions and
 * console errors) collected into `pageErrors`. `useWebApp` does it once per test file.
 */
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, expect } from 'vitest';
import { launchChromium } from './browser';
import { CHROMIUM_UNSAFE_PORTS, previewPort } from './ports';

const root = path.resolve(import.meta.dirname, '../..');

export interface WebApp {
  server: PreviewServer;
  browser: Browser;
  page: Page;
  /** Closes the browser and the preview server. */
  close(): Promise<void>;
}

/** Serves the built web app, opens it in Chromium at `chromiumPath` and records its errors into `pageErrors`. */
export async function openWebApp(
  chromiumPath: string,
  viewport: { width: number; height: number },
  pageErrors: string[],
  options: { query?: string; bypassCSP?: boolean } = {},
): Promise<WebApp> {
  let server: PreviewServer | null = null;
  let browser: Browser | null = null;
  const close = async () => {
    await browser?.close();
    await server?.close();
  };
  try {
    // vite takes the next port when one is busy, which could still land on a refused one: retry.
    for (let attempt = 0; ; attempt++) {
      server = await preview({
        configFile: path.join(root, 'vite.renderer.config.ts'),
        logLevel: 'warn',
        preview: { host: '127.0.0.1', port: previewPort(), strictPort: false },
      });
      const port = Number(new URL(server.resolvedUrls?.local[0] ?? 'http://127.0.0.1:0').port);
      if (!CHROMIUM_UNSAFE_PORTS.has(port) || attempt >= 4) break;
      await server.close();
    }
    const url = server.resolvedUrls?.local[0];
    if (!url) throw new Error('vite preview did not report a URL');
    browser = await launchChromium(chromiumPath);
    const page = await browser.newPage({ viewport, ...(options.bypassCSP ? { bypassCSP: true } : {}) });
    // Keep file-chooser interception on for the page's life. Playwright turns it on when a
    // 'filechooser' listener is added, with a request it does not wait for, and off when the last
    // one goes: a test that waits for a second chooser and presses Ctrl+O at once can otherwise
    // race that request, and Chromium then opens a real (headless: invisible) dialog instead.
    page.on('filechooser', () => undefined);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    await page.goto(`${url}${options.query ?? ''}`);
    return { server, browser, page, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Opens the web app before the file's tests (when `chromium` found a browser) and closes it after
 * them; `onPage` receives the page, and `pageErrors` collects its errors.
 */
export function useWebApp(
  chromium: { path: string } | { reason: string },
  viewport: { width: number; height: number },
  pageErrors: string[],
  onPage: (page: Page) => void,
): void {
  let app: WebApp | null = null;
  beforeAll(async () => {
    if (!('path' in chromium)) return;
    app = await openWebApp(chromium.path, viewport, pageErrors);
    onPage(app.page);
  });
  afterAll(async () => {
    await app?.close();
  });
}

/**
 * In the web app on `page`: waits for the GPU status, opens `files` (paths) through the "Open
 * model…" file picker and loads the model onto the GPU (after `beforeLoad`, e.g. load settings),
 * waiting until it is there.
 */
export async function openAndLoadModel(page: Page, files: readonly string[], beforeLoad?: (page: Page) => Promise<void>): Promise<void> {
  await expect.poll(() => page.getByTestId('gpu-status').textContent(), { timeout: 60_000 }).toMatch(/^WebGPU: (?!looking)\S+/);
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Open model…' }).click();
  await (await chooser).setFiles([...files]);
  // The opened model is selected asynchronously: until its files are the ones shown, the Load button is the previous model's.
  const names = files.map((f) => f.split(/[\\/]/).pop() ?? f).sort();
  await expect
    .poll(async () => ((await page.getByTestId('model-files').textContent().catch(() => '')) ?? '').split(', ').sort().join(','), { timeout: 30_000 })
    .toBe(names.join(','));
  await beforeLoad?.(page);
  await page.getByRole('button', { name: 'Load onto the GPU' }).click();
  await expect.poll(() => page.getByTestId('load-done').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/On the GPU/);
}
