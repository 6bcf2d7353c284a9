/**
 * The app runs a hybrid (issue 22; the golden fixture nemotron-h-tiny: blocks M * − M − * M —
 * Mamba-2, attention, MLP — vocabulary 256 and no tokenizer, so the app reads bytes, as for
 * shakespeare-byte) in Chromium with WebGPU: opened from the file picker, loaded, a text prompt
 * traced. The layer selector names every block by kind (attention and MLP blocks listed, not
 * selectable: they have no Δ, B, C); the hidden-attention viewer shows the SSM block 0's hidden
 * attention and, side by side, attention block 1's pattern of one head for the same tokens — its
 * exported matrix is a distribution per row (sums to 1, zero above the diagonal) and the hover
 * readout is its cell; knocking a token's key out of the attention block changes nothing at its
 * own position (KL exactly 0: its own query still sees it) and every later one (KL > 0); the
 * memory panel's KV cache grows by the model's bytes per token beside the constant SSM state, up
 * to the context chosen in the load panel (its memory plan says so before loading).
 * The model's correctness against transformers is test/gpu/golden-hybrid.test.ts's and
 * test/gpu/attention-pattern.test.ts's. Screenshot: test-results/hybrid-panels.png.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../renderer/src/panels/csv';
import { cellCentre, fullView } from '../../renderer/src/panels/selection';
import { findChromium } from '../support/browser';
import { openAndLoadModel, useWebApp } from '../support/web-app';
import { expectTraceStats, fillTraceBox } from '../support/trace-wait';

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-results');
const dir = path.join(root, 'test/fixtures/golden-hybrid/nemotron-h-tiny');
const chromiumFound = findChromium();
const PROMPT = 'the cat sat on';
const T = PROMPT.length; // bytes

let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 1400 }, pageErrors, (p) => (page = p));

const download = async (p: Page, button: string) => {
  const [file] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: button, exact: true }).click()]);
  return readFileSync((await file.path())!).toString('utf8');
};

describe('a hybrid model in the app', () => {
  it('labels blocks by kind, shows an attention head beside SSM hidden attention, knocks out a key, charts the KV cache', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    // The KV caches sized for a chosen context (1,024 tokens, not the config's 512): the plan says so before loading.
    await openAndLoadModel(p, [path.join(dir, 'config.json'), path.join(dir, 'model.safetensors')], async (page) => {
      await page.getByLabel('Context tokens').fill('1024');
      await expect.poll(() => page.getByTestId('memory-plan').textContent(), { timeout: 30_000 }).toMatch(/\(KV cache [\d.]+ for 1,024 tokens\)/);
    });

    await fillTraceBox(p, PROMPT);
    await p.getByRole('button', { name: 'Trace', exact: true }).click();
    await expectTraceStats(p, `${T} tokens · 3 layers · 8 heads · 7 blocks: 3 SSM, 2 attention, 2 MLP`, pageErrors, 120_000);

    // The layer selector: every block by kind, only the traced SSM layers selectable.
    const options = await p.getByLabel('Layer', { exact: true }).locator('option').evaluateAll((os) => os.map((o) => [o.textContent, (o as HTMLOptionElement).disabled]));
    expect(options).toEqual([
      ['layer 0', false],
      ['layer 1 · attention (no Δ, B, C)', true],
      ['layer 2 · MLP (no Δ, B, C)', true],
      ['layer 3', false],
      ['layer 4 · MLP (no Δ, B, C)', true],
      ['layer 5 · attention (no Δ, B, C)', true],
      ['layer 6', false],
    ]);

    // Hidden attention of SSM block 0 (mean over heads), and beside it attention block 1, head 2.
    const panel = p.getByTestId('hidden-attention-panel');
    await panel.scrollIntoViewIfNeeded();
    const blockOptions = await p.getByLabel('Hidden attention block').locator('option').evaluateAll((os) => os.map((o) => o.textContent));
    expect(blockOptions).toEqual(['layer 0', 'layer 1 · attention', 'layer 2 · MLP (no token mixing)', 'layer 3', 'layer 4 · MLP (no token mixing)', 'layer 5 · attention', 'layer 6']);
    await p.getByRole('button', { name: 'Compute hidden attention' }).click();
    await expect.poll(() => p.getByTestId('hidden-attention-range').getAttribute('data-kind').catch(() => ''), { timeout: 60_000 }).toBe('ssm');
    await p.getByLabel('Hidden attention side by side').check();
    const b = p.getByTestId('hidden-attention-b-viewer');
    expect(await b.getAttribute('data-kind')).toBe('attention');
    expect(await b.getAttribute('data-layer')).toBe('1');
    await p.getByLabel('Second viewer unit').selectOption('one');
    await p.getByLabel('Second viewer head').fill('2');
    await p.getByRole('button', { name: 'Second viewer: compute attention pattern' }).click();
    await expect.poll(() => p.getByTestId('hidden-attention-b-range').textContent().catch(() => ''), { timeout: 60_000 }).toMatch(/^layer 1 · attention, head 2 · p /);
    await expect.poll(() => panel.getAttribute('aria-busy')).toBe('false');
    // Both matrices on screen at once, for the same tokens.
    expect(await p.getByTestId('hidden-attention-canvas').isVisible()).toBe(true);
    expect(await p.getByTestId('hidden-attention-b-canvas').isVisible()).toBe(true);
    expect(await p.getByTestId('hidden-attention-canvas').getAttribute('aria-label')).toBe(`Hidden attention of layer 0, mean over heads: ${T} × ${T}`);
    expect(await p.getByTestId('hidden-attention-b-canvas').getAttribute('aria-label')).toBe(`Attention pattern of layer 1 · attention, head 2: ${T} × ${T}`);

    // The pattern: each row a distribution over j ≤ i.
    const csv = parseCsv(await download(p, 'Second viewer: export CSV'));
    expect(csv[0]!.slice(0, 3)).toEqual(['token', 'id', 'text']);
    const probs = csv.slice(1, T + 1).map((r) => r.slice(3).map(Number));
    expect(probs).toHaveLength(T);
    for (let i = 0; i < T; i++) {
      expect(probs[i]!.length).toBe(T);
      expect(Math.abs(probs[i]!.reduce((a, v) => a + v, 0) - 1), `row ${i} sums to 1`).toBeLessThan(1e-5);
      expect(probs[i]!.slice(i + 1).every((v) => v === 0), `row ${i} is 0 above the diagonal`).toBe(true);
      expect(probs[i]!.slice(0, i + 1).every((v) => v > 0 && v <= 1), `row ${i} is positive up to the diagonal`).toBe(true);
    }
    // The hover readout is that cell of the matrix.
    const canvas = p.getByTestId('hidden-attention-b-canvas');
    await p.mouse.move(0, 0);
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    const [row, col] = [T - 2, 3];
    const at = cellCentre(fullView(T), T, col, row, box.width, box.height);
    await p.mouse.move(box.x + at.x, box.y + at.y);
    const readout = p.getByTestId('hidden-attention-b-readout').locator('span[data-row]');
    await expect.poll(() => readout.getAttribute('data-row')).toBe(String(row));
    expect(await readout.getAttribute('data-col')).toBe(String(col));
    expect(await readout.getAttribute('data-kind')).toBe('attention');
    expect(await readout.textContent()).toContain(`token ${row} “${PROMPT[row]}” attends to token ${col} “${PROMPT[col]}”: p = `);
    expect(Number(await readout.getAttribute('data-alpha'))).toBe(probs[row]![col]);

    // Knockout of token 4's key in attention block 1: nothing changes at position 4, everything after.
    const j = 4;
    await p.getByTestId('knockout-panel').scrollIntoViewIfNeeded();
    await p.getByLabel('Knockout token').fill(String(j));
    await p.getByLabel('Knockout layers').selectOption({ label: 'layer 1 · attention (mask key j)' });
    await p.getByRole('button', { name: 'Filter this token' }).click();
    const positions = p.getByTestId('knockout-positions');
    await expect.poll(() => positions.getAttribute('data-token').catch(() => ''), { timeout: 60_000 }).toBe(String(j));
    expect(await p.getByTestId('knockout-summary').getAttribute('data-layers')).toBe('1');
    expect(await p.getByTestId('knockout-summary').textContent()).toContain(`token ${j} “${PROMPT[j]}” filtered in layer 1 · attention`);
    const kl = (await positions.getAttribute('data-kl-by-position'))!.split(',').map(Number);
    expect(kl).toHaveLength(T - j);
    expect(kl[0], 'KL at the knocked key’s own position').toBe(0);
    for (let i = 1; i < kl.length; i++) expect(kl[i], `KL at position ${j + i}`).toBeGreaterThan(0);

    // Memory: the KV caches grow by the bytes per token, the SSM state stays.
    const growth = p.getByTestId('kv-growth');
    await growth.scrollIntoViewIfNeeded();
    // 2 attention blocks × (2 KV heads × 16 dims × (k, v) + 1 mask word) × 4 bytes; capacity the context chosen above.
    expect(await growth.getAttribute('data-capacity')).toBe('1024');
    expect(await growth.getAttribute('data-bytes-per-token')).toBe(String(2 * 4 * (2 * 2 * 16 + 1)));
    const fixed = Number(await growth.getAttribute('data-fixed-bytes'));
    const ssm = Number(await growth.getAttribute('data-ssm-bytes'));
    expect(ssm).toBeGreaterThan(0);
    const chart = p.getByTestId('kv-growth-chart');
    expect(await p.getByTestId('kv-growth-chart-x-axis').getAttribute('data-label')).toBe('context (tokens)');
    expect(await p.getByTestId('kv-growth-chart-y-axis').getAttribute('data-label')).toMatch(/^memory \((B|KiB|MiB)\)$/);
    await p.mouse.move(0, 0);
    await chart.scrollIntoViewIfNeeded();
    const c = (await chart.boundingBox())!;
    const left = Number(await chart.getAttribute('data-plot-left'));
    const width = Number(await chart.getAttribute('data-plot-width'));
    await p.mouse.move(c.x + left + width / 2, c.y + 30);
    const mem = p.getByTestId('kv-growth-readout').locator('span[data-tokens]');
    await expect.poll(() => mem.getAttribute('data-tokens')).toBe('512');
    expect(Number(await mem.getAttribute('data-kv'))).toBeCloseTo(fixed + 520 * 512, 6);
    expect(Number(await mem.getAttribute('data-ssm'))).toBeCloseTo(ssm, 6);

    mkdirSync(artifacts, { recursive: true });
    await panel.screenshot({ path: path.join(artifacts, 'hybrid-panels.png') });
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  });
});
