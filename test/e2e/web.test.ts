/**
 * The web build in Chromium with WebGPU: the window renders, the status bar names the adapter,
 * the GPU self-check (a real WGSL kernel against its CPU reference, in the engine worker) passes,
 * bundled models are listed, and opening files works and fails clearly. Screenshot kept in
 * test-results/ (not committed).
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { architectureLabel } from '../../app/arch/registry';
import { scanBundledModels } from '../../app/node/bundled';
import { folderModelFiles } from '../../app/node/folder';
import { formatCount } from '../../renderer/src/format';
import { findChromium } from '../support/browser';
import { TINY_CONFIG, TINY_PARAMETERS, writeTinyModel } from '../support/tiny-model';
import { useWebApp } from '../support/web-app';
import { expectTraceStats } from '../support/trace-wait';

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-results');
const chromiumFound = findChromium();

let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 800 }, pageErrors, (p) => (page = p));

describe('web build in Chromium', () => {
  it('renders the window and names the WebGPU adapter in the status bar', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    expect(await page.title()).toBe('Mamba Studio');
    await expect.poll(() => page!.getByTestId('gpu-status').textContent(), { timeout: 60_000 }).toMatch(/^WebGPU: (?!looking)\S+/);
    const status = (await page.getByTestId('gpu-status').textContent()) ?? '';
    expect(status).not.toMatch(/unavailable|looking for/);
    console.info(`[e2e] status bar: ${status}`);
    await expect.poll(() => page!.getByTestId('gpu-selftest').textContent(), { timeout: 60_000 }).toMatch(/GPU check passed/);
    expect(await page.getByTestId('app-version').textContent()).toMatch(/Mamba Studio \d+\.\d+\.\d+ · web/);
    await expect.poll(() => page!.getByRole('navigation', { name: 'Models' }).isVisible()).toBe(true);
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'web-main-window.png') });
    expect(pageErrors, pageErrors.join("\n")).toEqual([]);
  });

  it('lists every bundled model', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const { models } = await scanBundledModels(path.join(root, 'resources/models'), (name) => `bundled/${name}`);
    await expect.poll(() => page!.locator('.sidebar .muted').first().textContent().catch(() => '')).not.toMatch(/Loading/);
    const names = await page.locator('.model-name').allTextContents();
    expect(names).toEqual(models.map((m) => m.name));
  });

  it('opens model files from the picker, and explains a file that is no model', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    let chooser = p.waitForEvent('filechooser');
    await p.getByRole('button', { name: 'Open model…' }).click();
    await (await chooser).setFiles([{ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') }]);
    await expect.poll(() => p.locator('.notice.error').textContent()).toMatch(/notes\.txt: no model here/);

    chooser = p.waitForEvent('filechooser');
    await p.keyboard.press('Control+o'); // the keyboard shortcut opens the same picker
    await (await chooser).setFiles([
      { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(TINY_CONFIG)) },
      { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.alloc(64) },
    ]);
    await expect.poll(() => p.locator('.notice.error').last().textContent()).toMatch(/^model\.safetensors: header is not valid JSON/);

    chooser = p.waitForEvent('filechooser');
    await p.getByRole('button', { name: 'Open model…' }).click();
    const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'tiny-')));
    await (await chooser).setFiles([path.join(dir, 'config.json'), path.join(dir, 'model.safetensors')]);
    // Named from its config's model type and weights file (issue 15, defect 11: not "model.safetensors").
    await expect.poll(() => p.locator('.model.selected .model-name').textContent()).toBe('mamba · model.safetensors');
    expect(await p.getByTestId('model-parameters').textContent()).toBe(formatCount(TINY_PARAMETERS));
    expect(await p.getByTestId('model-config').textContent()).toMatch(/d_model8layers2d_inner16N \(d_state\)4/);

    // Load it onto the GPU in the engine worker (File objects posted to the worker).
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent(), { timeout: 60_000 }).toMatch(
      new RegExp(`On the GPU: ${(TINY_PARAMETERS * 4 / 1024).toFixed(1)} KB of weights`),
    );
    expect(await p.getByTestId('gpu-memory').textContent()).toMatch(/GPU memory: weights /);

    // Generate 20 tokens from token ids (this model has no tokenizer) and watch them stream in.
    await p.getByLabel('Prompt').fill('1, 2, 3');
    await p.getByLabel('Max tokens').fill('20');
    await p.getByLabel('Temperature').fill('0');
    await p.getByLabel('Prompt').press('Control+Enter');
    await expect.poll(() => p.getByTestId('generation-stats').textContent(), { timeout: 120_000 }).toMatch(/^20 tokens · .* stopped: max-tokens/);
    // Prompt and generated ids, one space between every two (this model has no labels: ids shown).
    const output = (await p.getByTestId('generation-output').textContent()) ?? '';
    expect(output.startsWith('1 2 3 ')).toBe(true);
    expect(output.slice('1 2 3'.length).trim().split(/\s+/)).toHaveLength(20);
    // The live trace (on by default) filled the selection panels as the tokens came: the prompt and
    // every generated token that was fed back (all but the last), every layer.
    await expectTraceStats(p, '22 tokens · 2 layers · d_inner 16', pageErrors);
    const tokens = await p.getByTestId('token-strip').locator('[data-score]').allTextContents();
    expect(tokens).toHaveLength(22);
    expect(tokens.slice(0, 3)).toEqual(['1', '2', '3']);
    const generatedIds = output.slice('1 2 3'.length).trim().split(/\s+/);
    expect(tokens.slice(3)).toEqual(generatedIds.slice(0, -1));
  });

  it('opens a model dropped onto the window', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'tiny-')));
    const files = ['config.json', 'model.safetensors'].map((name) => ({ name, data: [...readFileSync(path.join(dir, name))] }));
    const dataTransfer = await page.evaluateHandle((list) => {
      const dt = new DataTransfer();
      for (const f of list) dt.items.add(new File([new Uint8Array(f.data)], f.name));
      return dt;
    }, files);
    await page.dispatchEvent('.app', 'dragover', { dataTransfer });
    await page.dispatchEvent('.app', 'drop', { dataTransfer });
    // The same files as the picker opened above: the same entry, selected, not a second one.
    await expect.poll(() => page!.locator('.model.selected .model-name').textContent()).toBe('mamba · model.safetensors');
    expect(await page.getByRole('option', { name: /mamba · model\.safetensors/ }).count()).toBe(1);
    expect(await page.getByTestId('model-parameters').textContent()).toBe(formatCount(TINY_PARAMETERS));
  });

  it('loads the bundled shakespeare-byte model and generates 20 tokens that stream in', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    await p.getByRole('option', { name: /Shakespeare bytes/ }).click();
    expect(await p.getByTestId('model-parameters').textContent()).toBe('1.8 M');
    expect(await p.getByTestId('model-config').textContent()).toMatch(/d_model256layers4/);
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/On the GPU: 6\.9 MB of weights/);
    await p.getByLabel('Prompt').fill('ROMEO:\n');
    await p.getByLabel('Max tokens').fill('20');
    await p.getByLabel('Seed').fill('7');
    const seen: number[] = [];
    await p.getByRole('button', { name: 'Generate' }).click();
    // Tokens appear while generation runs, not only at the end.
    await expect
      .poll(
        async () => {
          const stats = (await p.getByTestId('generation-stats').textContent()) ?? '';
          seen.push(Number(/^(\d+) tokens/.exec(stats)?.[1] ?? 0));
          return stats;
        },
        { timeout: 180_000, interval: 100 },
      )
      .toMatch(/^20 tokens · [\d.]+ tokens\/s · stopped: max-tokens/);
    expect(seen.some((n) => n > 0 && n < 20)).toBe(true);
    const output = (await p.getByTestId('generation-output').textContent()) ?? '';
    expect(output.startsWith('ROMEO:')).toBe(true);
    expect(output.length).toBeGreaterThan('ROMEO:\n'.length);
    mkdirSync(artifacts, { recursive: true });
    await p.screenshot({ path: path.join(artifacts, 'web-generate.png') });
  });

  it.for(['mamba1-bias-untied', 'mamba2-groups'])('opens the golden fixture %s and shows its config and parameter count', async (name, test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    const dir = path.join(root, 'test/fixtures/golden', name);
    const files = await folderModelFiles(dir);
    const expected = await inspectModel(files); // the same inspection, in Node, as the reference
    await files.close();
    const chooser = p.waitForEvent('filechooser');
    await p.getByRole('button', { name: 'Open model…' }).click();
    await (await chooser).setFiles([path.join(dir, 'config.json'), path.join(dir, 'model.safetensors')]);
    await expect.poll(() => p.getByTestId('model-parameters').textContent()).toBe(formatCount(expected.parameters));
    const panel = (await p.getByTestId('model-panel').textContent()) ?? '';
    expect(panel).toContain(`Architecture${architectureLabel(expected.architecture)}`); // "Mamba", "Mamba-2"
    const config = (await p.getByTestId('model-config').textContent()) ?? '';
    expect(config).toContain(`d_model${expected.config.dModel}layers${expected.config.nLayer}`);
    if (expected.architecture === 'mamba2') expect(config).toContain(`heads${expected.config.nHeads}head_dim${expected.config.headDim}groups${expected.config.nGroups}`);
  });

  it('toggles the sidebar with Ctrl+B', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    await page.keyboard.press('Control+b');
    await expect.poll(() => page!.locator('nav.sidebar').count()).toBe(0);
    await page.keyboard.press('Control+b');
    await expect.poll(() => page!.locator('nav.sidebar').count()).toBe(1);
  });
});
