/**
 * The app runs a Mamba-2 model (the golden fixture mamba2-one-group: 4 heads, vocabulary 300
 * and no tokenizer, so prompts are token ids; the two-group case, whose 256-token vocabulary the
 * app reads as bytes, is covered through the engine in test/gpu/engine-analysis.test.ts) in Chromium with WebGPU: opened from the file picker, loaded onto the GPU, its greedy
 * continuation of the fixture's prompt equals transformers' (`generated_ids`), and a trace shows
 * Δ per head — the heatmap's value under the cursor equals transformers' Δ at that (token, head) —
 * and B. Screenshot: test-results/mamba2-panels.png.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { folderModelFiles } from '../../app/node/folder';
import { cellCentre, fullView } from '../../renderer/src/panels/selection';
import { findChromium } from '../support/browser';
import { readGolden } from '../support/golden';
import { openAndLoadModel, useWebApp } from '../support/web-app';
import { expectTraceStats, fillTraceBox } from '../support/trace-wait';

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-results');
const dir = path.join(root, 'test/fixtures/golden/mamba2-one-group');
const chromiumFound = findChromium();
/** Float32 on SwiftShader against transformers' float32 (the issue's bound). */
const TOL = 1e-3;

let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 1400 }, pageErrors, (p) => (page = p));

describe('a Mamba-2 model in the app', () => {
  it('opens, loads, generates transformers’ greedy continuation and traces Δ per head', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    const files = await folderModelFiles(dir);
    const { config } = await inspectModel(files);
    await files.close();
    const { nHeads: H, nGroups: G, dState: N, nLayer: L } = config;
    const golden = await readGolden(dir);
    const ids = [...(await golden.ints('input_ids'))];
    const generated = [...(await golden.ints('generated_ids'))];
    const T = ids.length;

    await openAndLoadModel(p, [path.join(dir, 'config.json'), path.join(dir, 'model.safetensors')]);

    // Greedy generation from the fixture's prompt (token ids: the model has no tokenizer).
    await p.getByLabel('Prompt').fill(ids.join(', '));
    await p.getByLabel('Max tokens').fill(String(generated.length));
    await p.getByLabel('Temperature').fill('0');
    await p.getByLabel('Prompt').press('Control+Enter');
    await expect.poll(() => p.getByTestId('generation-stats').textContent(), { timeout: 170_000 }).toMatch(new RegExp(`^${generated.length} tokens · .* stopped: max-tokens`));
    const output = (await p.getByTestId('generation-output').textContent()) ?? '';
    // The prompt's ids, then the generated ones, one space between every two.
    expect(output.trim().split(/\s+/).map(Number)).toEqual([...ids, ...generated]);

    // Trace: Δ per head, B and C per group.
    await fillTraceBox(p, ids.join(', '));
    await p.getByRole('button', { name: 'Trace', exact: true }).click();
    await expectTraceStats(p, `${T} tokens · ${L} layers · ${H} heads`, pageErrors, 170_000);
    for (const [layer, token, head] of [
      [0, 101, H - 1],
      [1, 37, 1],
    ] as [number, number, number][]) {
      await p.getByLabel('Layer', { exact: true }).selectOption(String(layer));
      const delta = await golden.f32(`layers.${layer}.delta`);
      await p.mouse.move(0, 0);
      await p.getByTestId('heatmap-canvas').scrollIntoViewIfNeeded();
      const box = (await p.getByTestId('heatmap-canvas').boundingBox())!;
      const at = cellCentre(fullView(T), H, token, head, box.width, box.height);
      await p.mouse.move(box.x + at.x, box.y + at.y);
      const span = p.getByTestId('heatmap-readout').locator('span[data-token]');
      await expect.poll(() => span.getAttribute('data-token')).toBe(String(token));
      expect(await span.getAttribute('data-channel')).toBe(String(head));
      expect(await span.textContent()).toContain(`head ${head} · layer ${layer}`);
      const value = Number(await span.getAttribute('data-value'));
      const expected = delta[token * H + head]!;
      expect(Math.abs(value - expected) / Math.abs(expected), `Δ[${token}, head ${head}] in layer ${layer}`).toBeLessThanOrEqual(TOL);
    }
    // B of the last group, state 3, at token 60 (columns: groups in order).
    const B = await golden.f32('layers.1.B');
    const group = G - 1;
    const canvas = p.getByTestId('bc-heatmap-B');
    await p.mouse.move(0, 0);
    await canvas.scrollIntoViewIfNeeded();
    const b = (await canvas.boundingBox())!;
    const column = group * N + 3;
    const at = cellCentre(fullView(T), G * N, 60, column, b.width, b.height);
    await p.mouse.move(b.x + at.x, b.y + at.y);
    const bc = p.getByTestId('bc-readout').locator('span[data-token]');
    await expect.poll(() => bc.getAttribute('data-state')).toBe(String(column));
    expect(await bc.textContent()).toContain(G > 1 ? `group ${group} state 3` : 'state 3');
    const bValue = Number(await bc.getAttribute('data-value'));
    expect(Math.abs(bValue - B[60 * G * N + column]!) / Math.abs(B[60 * G * N + column]!)).toBeLessThanOrEqual(TOL);

    // The memory panel draws one state-norm curve per head of the selected layer.
    const heads = await p.getByTestId('state-norms-by-head').locator('polyline').evaluateAll((lines) => [...new Set(lines.map((l) => l.getAttribute('data-series')))]);
    expect(heads).toEqual(Array.from({ length: H }, (_, h) => `head ${h}`));

    mkdirSync(artifacts, { recursive: true });
    await p.getByTestId('selection-panels').screenshot({ path: path.join(artifacts, 'mamba2-panels.png') });
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  });
});
