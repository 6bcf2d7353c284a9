/**
 * Get models in the web build (Chromium): our test Hub (test/support/hub-server.ts: the hub and
 * a second "CDN" server, with CORS) serves a tiny model; the user searches, opens the repo, sees
 * its files, size, license and the GPU verdict, downloads it (through the browser's fetch, the
 * resolve's 302 followed to the other server) and the model is in the library, selected, and loads.
 * The page's policy lets web mode reach only the Hub's hosts (a unit test checks it), so this test
 * bypasses it for the test servers on 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium } from '../support/browser';
import { startHubServer, type HubServer } from '../support/hub-server';
import { openWebApp, type WebApp } from '../support/web-app';

const chromiumFound = findChromium();
const pageErrors: string[] = [];
const fixture = path.resolve(import.meta.dirname, '../../resources/models/selective-copy');
// The bundled selective-copy model's config, weights and studio.json (web mode reads the studio.json
// of a model held in memory from its File: it once fetched a web-file:// URL, a page error).
const files = {
  'config.json': new Uint8Array(readFileSync(path.join(fixture, 'config.json'))),
  'model.safetensors': new Uint8Array(readFileSync(path.join(fixture, 'model.safetensors'))),
  'studio.json': new Uint8Array(readFileSync(path.join(fixture, 'studio.json'))),
};
let server: HubServer | null = null;
let app: WebApp | null = null;

beforeAll(async () => {
  server = await startHubServer([{ repo: 'studio-test/selective-copy', commit: '4'.repeat(40), files, modelType: 'mamba', tags: ['mamba'], license: 'mit' }]);
  if (!('path' in chromiumFound)) return;
  app = await openWebApp(chromiumFound.path, { width: 1280, height: 800 }, pageErrors, {
    query: `?hub-endpoint=${encodeURIComponent(server.endpoint)}`,
    bypassCSP: true,
  });
});
afterAll(async () => {
  await app?.close();
  await server?.close();
});

describe('get models (web build)', () => {
  it('finds a repo, downloads a tiny model and opens it', async (test) => {
    if (!app || !server) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p: Page = app.page;
    await p.getByRole('button', { name: 'Get models…' }).click();
    const dialog = p.getByRole('dialog', { name: 'Get models from the Hugging Face Hub' });
    await dialog.getByLabel('Hub repo id, URL or search words').fill('selective');
    await dialog.getByRole('button', { name: 'Search' }).click();
    await dialog.getByRole('button', { name: 'studio-test/selective-copy' }).click();
    const choice = dialog.getByTestId('hub-choice');
    await expect.poll(() => choice.textContent(), { timeout: 10_000 }).toMatch(/safetensors.*963 kB/);
    // The memory plan from the headers read over the Hub (SwiftShader's memory is unknown).
    await expect.poll(() => choice.getByTestId('hub-verdict').textContent(), { timeout: 10_000 }).toMatch(/^needs [\d.]+ MB: weights .* · GPU memory unknown/);
    expect(await dialog.textContent()).toMatch(/License: mit · not gated/);
    await choice.getByRole('button', { name: 'Download' }).click();
    await expect.poll(() => dialog.getByTestId('hub-job-text').textContent(), { timeout: 20_000 }).toMatch(/963 kB of 963 kB · done/);
    // The bytes came from the second server, by the redirect.
    expect(server.cdnRequests.some((r) => r.method === 'GET' && r.url.startsWith('/blobs/'))).toBe(true);
    await p.keyboard.press('Escape');
    await expect.poll(() => p.getByRole('dialog').count()).toBe(0);
    // Named by its studio.json, as the bundled model is: the second one of that name, the user's.
    const named = p.getByRole('option', { name: /Selective copying \(Mamba-1\)/ });
    await expect.poll(() => named.count(), { timeout: 10_000 }).toBe(2);
    const option = named.nth(1);
    await expect.poll(() => option.getAttribute('aria-selected'), { timeout: 10_000 }).toBe('true');
    await expect.poll(() => p.getByTestId('gpu-selftest').textContent(), { timeout: 60_000 }).toMatch(/GPU check passed/);
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 60_000 }).toMatch(/On the GPU/);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 150_000);
});
