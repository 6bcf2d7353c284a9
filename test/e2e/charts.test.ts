/**
 * Charts a researcher can read and publish (issue 15), in the web build (Chromium + WebGPU): trace
 * a short selective-copy prompt and check that every heatmap has a token axis (token text when
 * there is room), a channel / state / layer axis and a colour bar with values; the layer overview
 * labels its rows and marks the selected layer; B and C use the diverging map on a range
 * symmetric about 0; line charts have axes and a legend. The Δ and B canvases take the keyboard:
 * arrows move the readout, whose value equals the float64 reference of the model at that cell;
 * + zooms both axes. The SVG export downloads a well-formed figure with a title, axis labels and a
 * colour bar; the PNG export is a PNG at the chosen scale; the compare figure's SVG has its title,
 * legend and axes. Screenshots of each panel at 1280×720
 * and 1920×1080 go to test-results/charts-*.png, the exported figures to charts-export-*.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { folderModelFiles } from '../../app/node/folder';
import { studioHints } from '../../renderer/src/panels/selection';
import { findChromium } from '../support/browser';
import { expectTraceStats, fillTraceBox } from '../support/trace-wait';
import { useWebApp } from '../support/web-app';

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-results');
const modelDir = path.join(root, 'resources/models/selective-copy');
const chromiumFound = findChromium();

let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 720 }, pageErrors, (p) => (page = p));

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const T = 24;

const download = async (p: Page, button: string) => {
  const [file] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: button, exact: true }).click()]);
  return { name: file.suggestedFilename(), bytes: readFileSync((await file.path())!) };
};

/** The tick labels of an axis (HeatmapAxes draws one <g data-tick> per tick). */
const tickLabels = (p: Page, testId: string) => p.getByTestId(testId).locator('g[data-tick] text').allTextContents();

describe('charts in Chromium', () => {
  it('draws axes and colour bars, takes the keyboard, exports figures', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    mkdirSync(artifacts, { recursive: true });
    const hints = studioHints(JSON.parse(readFileSync(path.join(modelDir, 'studio.json'), 'utf8')));
    const ids = hints.suggestedIds!.slice(0, T);
    const labels = hints.labels!;

    await expect.poll(() => p.getByTestId('gpu-status').textContent(), { timeout: 60_000 }).toMatch(/^WebGPU: (?!looking)\S+/);
    await p.getByRole('option', { name: /Selective copying/ }).click();
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 60_000 }).toMatch(/On the GPU/);
    await fillTraceBox(p, ids.join(', '));
    await p.getByRole('button', { name: 'Trace', exact: true }).click();
    await expectTraceStats(p, `${T} tokens · 2 layers · d_inner 256`, pageErrors);

    // The reference the readouts must show.
    const files = await folderModelFiles(modelDir);
    const inspection = await inspectModel(files);
    const table = await readAllTensorsF32(files, inspection);
    await files.close();
    const ref = mamba1ForwardRef(inspection.config, (n) => table.get(n), ids);
    const Di = inspection.config.dInner;
    const N = inspection.config.dState;

    // Δ heatmap: 24 tokens over ~1000 px leave room for token text on the x axis.
    await expect.poll(() => p.getByTestId('heatmap-x-axis').getAttribute('data-kind')).toBe('text');
    expect(await tickLabels(p, 'heatmap-x-axis')).toEqual(ids.map((id) => labels[id]!.replace(/ /g, '␣')));
    const yTicks = (await tickLabels(p, 'heatmap-y-axis')).map(Number);
    expect(yTicks.length).toBeGreaterThanOrEqual(2);
    for (const v of yTicks) expect(Number.isInteger(v) && v >= 0 && v < Di).toBe(true);
    expect(await p.getByTestId('heatmap-y-axis').getAttribute('data-label')).toBe('channel');
    const bar = p.getByTestId('heatmap-colorbar');
    expect(await bar.getAttribute('data-scale')).toBe('log');
    expect(await bar.locator('g[data-value]').count()).toBeGreaterThanOrEqual(2);
    // Layer overview: labelled rows, the selected layer marked.
    const focusLayer = hints.focusLayer!;
    expect(await tickLabels(p, 'layer-overview-y-axis')).toEqual(['layer 0', 'layer 1'].map((l, i) => (i === focusLayer ? `▶ ${l}` : l)));
    expect(await p.getByTestId('layer-overview-y-axis').locator('[data-selected="true"]').textContent()).toBe(`▶ layer ${focusLayer}`);
    expect(await p.getByTestId('layer-overview-selected').count()).toBe(1);
    expect(await p.getByTestId('layer-overview-colorbar').locator('g[data-value]').count()).toBeGreaterThanOrEqual(1);
    // B and C: a diverging map centred on 0, so 0 is a colour-bar value and the ends mirror.
    for (const which of ['B', 'C']) {
      expect(await p.getByLabel('B/C colormap').inputValue()).toBe('diverging');
      const values = (await p.getByTestId(`bc-${which}-colorbar`).locator('g[data-value]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value'))))) as number[];
      expect(values).toContain(0);
      expect(Math.min(...values)).toBeCloseTo(-Math.max(...values), 9);
      expect(await p.getByTestId(`bc-${which}-x-axis`).locator('g[data-tick]').count()).toBe(T);
      expect((await tickLabels(p, `bc-${which}-y-axis`)).length).toBeGreaterThanOrEqual(2);
    }
    // Line charts: axes with labels (units) and a legend.
    for (const id of ['bc-norms', 'retention-curve', 'state-norms']) {
      expect(await p.getByTestId(`${id}-x-axis`).getAttribute('data-label')).toBeTruthy();
      expect(await p.getByTestId(`${id}-y-axis`).getAttribute('data-label')).toBeTruthy();
      expect(await p.getByTestId(`${id}-y-axis`).locator('text').count()).toBeGreaterThanOrEqual(3);
      expect(await p.getByTestId(`${id}-legend`).locator('[data-series]').count()).toBeGreaterThanOrEqual(1);
    }
    expect(await p.getByTestId('retention-curve-y-axis').getAttribute('data-label')).toMatch(/retention/);

    // The mouse still reads every cell, the corners included (the axes do not cover the plot).
    const { cellCentre2d } = await import('../../renderer/src/panels/chart-scale');
    for (const [token, channel] of [
      [T - 1, Di - 1],
      [0, 0],
      [T - 1, 0],
      [0, Di - 1],
    ] as const) {
      await p.mouse.move(0, 0);
      await p.getByTestId('heatmap-canvas').evaluate((el) => el.scrollIntoView({ block: 'center' }));
      const box = (await p.getByTestId('heatmap-canvas').boundingBox())!;
      const at = cellCentre2d({ x: { start: 0, count: T }, y: { start: 0, count: Di } }, token, channel, box.width, box.height);
      await p.mouse.move(box.x + at.x, box.y + at.y);
      const span = p.getByTestId('heatmap-readout').locator('span[data-token]');
      await expect.poll(() => span.getAttribute('data-token').catch(() => null)).toBe(String(token));
      expect(await span.getAttribute('data-channel')).toBe(String(channel));
    }

    // Keyboard: the Δ canvas takes focus; arrows move the readout to the reference's value.
    const canvas = p.getByTestId('heatmap-canvas');
    await canvas.focus();
    await canvas.press('ArrowRight'); // the cursor appears at (0, 0)
    for (const key of ['ArrowRight', 'ArrowRight', 'ArrowDown', 'ArrowDown', 'ArrowDown']) await canvas.press(key);
    const readout = p.getByTestId('heatmap-readout').locator('span[data-token]');
    await expect.poll(() => readout.getAttribute('data-token').catch(() => null)).toBe('2');
    expect(await readout.getAttribute('data-channel')).toBe('3');
    const check = async (token: number, channel: number) => {
      const layer = Number(await readout.getAttribute('data-layer'));
      const got = Number(await readout.getAttribute('data-value'));
      const want = ref.delta[layer]![token * Di + channel]!;
      expect(Math.abs(got - want), `Δ L${layer} (${token}, ${channel}): ${got} vs ${want}`).toBeLessThanOrEqual(1e-4 * Math.abs(want) + 1e-6);
      expect(await readout.textContent()).toContain(`Δ = ${got.toPrecision(6)}`);
    };
    await check(2, 3);
    expect(await p.getByTestId('heatmap-cursor').count()).toBe(1);
    // + zooms both axes ×2 about the cursor: its cell's centre stays at the same place in the view.
    const viewOf = async () => {
      const v = p.getByTestId('heatmap-view');
      return Promise.all(['data-x-start', 'data-x-count', 'data-y-start', 'data-y-count'].map(async (a) => Number(await v.getAttribute(a))));
    };
    await canvas.press('+');
    await expect.poll(async () => (await viewOf())[1]).toBe(T / 2);
    const [xs, xc, ys, yc] = await viewOf();
    expect(yc).toBe(Di / 2);
    expect((2.5 - xs!) / xc!).toBeCloseTo(2.5 / T, 9);
    expect((3.5 - ys!) / yc!).toBeCloseTo(3.5 / Di, 9);
    await canvas.press('End');
    await expect.poll(() => readout.getAttribute('data-token')).toBe(String(T - 1));
    await check(T - 1, 3);
    await expect.poll(() => p.getByTestId('heatmap-view').textContent()).toMatch(/^tokens 12–23 of 24/);
    await p.getByTestId('heatmap-axes').screenshot({ path: path.join(artifacts, 'charts-delta-zoomed-1280.png') });
    await p.getByRole('button', { name: 'Δ heatmap: reset view' }).click();

    // Keyboard on B.
    const bCanvas = p.getByTestId('bc-heatmap-B');
    await bCanvas.focus();
    for (const key of ['ArrowRight', 'ArrowRight', 'ArrowDown']) await bCanvas.press(key);
    const bReadout = p.getByTestId('bc-readout').locator('span[data-token]');
    await expect.poll(() => bReadout.getAttribute('data-token').catch(() => null)).toBe('1');
    expect(await bReadout.getAttribute('data-state')).toBe('1');
    const bLayer = Number(await bReadout.getAttribute('data-layer'));
    const bRef = ref.B[bLayer]!;
    const bScale = bRef.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(Math.abs(Number(await bReadout.getAttribute('data-value')) - bRef[1 * N + 1]!)).toBeLessThanOrEqual(1e-4 * bScale + 1e-6);

    // Exports for publication: SVG with title, axis labels and colour bar; PNG at ×2.
    await p.getByLabel('Δ figure scale').selectOption('2');
    const svg = await download(p, 'Export Δ SVG');
    expect(svg.name).toBe(`delta-layer${focusLayer}.svg`);
    const text = svg.bytes.toString('utf8');
    expect(text).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(text).toMatch(/<text data-role="title"[^>]*>Δ of layer \d: tokens × channels<\/text>/);
    expect(text).toMatch(/<text data-role="x-label"[^>]*>token \(position in the prompt\)<\/text>/);
    expect(text).toMatch(/<text data-role="y-label"[^>]*>channel \(index\)<\/text>/);
    expect(text).toMatch(/<g data-role="colorbar"[\s\S]*fill="url\(#colorbar-gradient\)"/);
    expect(text).toMatch(/<image [^>]*href="data:image\/png;base64,/);
    expect(text).toContain('width="1800" height="1040" viewBox="0 0 900 520"');
    expect(text.trimEnd().endsWith('</svg>')).toBe(true);
    const png = await download(p, 'Export Δ PNG');
    expect([...png.bytes.subarray(0, 8)]).toEqual(PNG_MAGIC);
    expect([png.bytes.readUInt32BE(16), png.bytes.readUInt32BE(20)]).toEqual([1800, 1040]);
    writeFileSync(path.join(artifacts, 'charts-export-delta.png'), png.bytes);
    writeFileSync(path.join(artifacts, 'charts-export-delta.svg'), svg.bytes);
    const bSvg = await download(p, 'Export B SVG');
    writeFileSync(path.join(artifacts, 'charts-export-B.svg'), bSvg.bytes);
    // The browser's own SVG parser reads the figure (an image that decodes at its size), and shows it.
    const decoded = await p.evaluate(async (svgText) => {
      const img = new Image();
      img.src = URL.createObjectURL(new Blob([svgText], { type: 'image/svg+xml' }));
      await img.decode();
      return [img.naturalWidth, img.naturalHeight];
    }, bSvg.bytes.toString('utf8'));
    expect(decoded).toEqual([1800, 1040]);
    const viewer = await p.context().browser()!.newPage();
    await viewer.setViewportSize({ width: 1800, height: 1040 });
    await viewer.setContent(`<body style="margin:0">${bSvg.bytes.toString('utf8')}</body>`);
    await viewer.screenshot({ path: path.join(artifacts, 'charts-export-B-svg.png') });
    await viewer.close();
    expect(bSvg.bytes.toString('utf8')).toMatch(/<text data-role="colorbar-label"[^>]*>B_t\[n\] \(linear, centred on 0\)<\/text>/);

    // Hidden attention: computed, with its axes; its row view is a line chart with axes.
    await p.getByRole('button', { name: 'Compute hidden attention' }).click();
    await expect.poll(() => p.getByTestId('hidden-attention-range').textContent().catch(() => ''), { timeout: 60_000 }).toMatch(/^layer/);
    await expect.poll(() => p.getByTestId('hidden-attention-x-axis').locator('g[data-tick]').count()).toBeGreaterThanOrEqual(2);
    expect((await tickLabels(p, 'hidden-attention-y-axis')).length).toBeGreaterThanOrEqual(2);
    expect(await p.getByTestId('hidden-attention-colorbar').locator('g[data-value]').count()).toBeGreaterThanOrEqual(2);
    await p.getByLabel('Hidden attention row').fill(String(T - 1));
    await p.getByRole('button', { name: 'Show row' }).click();
    await expect.poll(() => p.getByTestId('hidden-attention-row-chart-x-axis').getAttribute('data-label').catch(() => null), { timeout: 60_000 }).toMatch(/token j/);

    // Compare: a legend says which colour is which prompt.
    const idsB = ids.map((id, t) => (t === 5 ? (id === 1 ? 2 : 1) : id));
    await p.getByLabel('Compare prompt B').fill(idsB.join(', '));
    await p.getByRole('button', { name: 'Compare', exact: true }).click();
    await expect.poll(() => p.getByTestId('compare-stats').textContent().catch(() => ''), { timeout: 60_000 }).toMatch(/ids differ at 1 position: 5/);
    const legend = p.getByTestId('compare-legend');
    const entries = await legend.locator('[data-prompt]').evaluateAll((els) => els.map((e) => [e.getAttribute('data-prompt'), e.getAttribute('data-colour'), e.textContent]));
    expect(entries.map((e) => e[0])).toEqual(['A', 'B']);
    expect(entries[0]![1]).not.toBe(entries[1]![1]);
    expect(entries[1]![2]).toContain(`B: prompt B (thin line, ${T} tokens): “${idsB.slice(0, 3).map((id) => labels[id]).join(' ')}`);
    // The compare figure, rendered from the data: title, a legend entry per series, both axes with units.
    const cmpSvg = (await download(p, 'Export compare SVG')).bytes.toString('utf8');
    writeFileSync(path.join(artifacts, 'charts-export-compare.svg'), cmpSvg);
    expect(cmpSvg).toMatch(/<text data-role="title"[^>]*>Selection score ‖Δ_t‖ per layer: prompt A and prompt B<\/text>/);
    expect([...cmpSvg.matchAll(/<text data-role="legend"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1])).toEqual(['A: the trace on screen', 'B: prompt B', 'B − A (‖Δ_t‖ of B minus A)']);
    expect(cmpSvg).toMatch(/<text data-role="x-label"[^>]*>position \(aligned token index\)<\/text>/);
    expect(cmpSvg.match(/<text data-role="y-label"[^>]*>‖Δ_t‖ \(L2\)<\/text>/g)).toHaveLength(2);
    expect(cmpSvg.match(/<polyline data-role="series"/g)!.length).toBeGreaterThanOrEqual(4);
    expect(cmpSvg).toMatch(/<text data-role="x-axis"[^>]*>0<\/text>/);
    expect(cmpSvg).toMatch(/^<svg [^>]*width="1800" height="\d+" viewBox="0 0 900 \d+"/); // ×2, the default
    // The PNG: the same figure drawn on a canvas, at ×1.
    await p.getByLabel('compare figure scale').selectOption('1');
    const cmpPng = (await download(p, 'Export compare PNG')).bytes;
    expect([...cmpPng.subarray(0, 8)]).toEqual(PNG_MAGIC);
    expect(cmpPng.readUInt32BE(16)).toBe(900);
    // Knockout: run once so that its chart shows in the screenshots.
    await p.getByLabel('Knockout token').fill('5');
    await p.getByRole('button', { name: 'Filter this token' }).click();
    await expect.poll(() => p.getByTestId('knockout-summary').getAttribute('data-kl').catch(() => null), { timeout: 60_000 }).not.toBeNull();

    // Screenshots of each panel at both sizes.
    for (const [w, h] of [
      [1280, 720],
      [1920, 1080],
    ] as const) {
      await p.setViewportSize({ width: w, height: h });
      for (const id of ['delta', 'bc', 'memory', 'hidden-attention', 'compare', 'knockout']) {
        const frame = p.getByTestId(`frame-${id}`);
        await frame.scrollIntoViewIfNeeded();
        await frame.screenshot({ path: path.join(artifacts, `charts-${id}-${w}x${h}.png`) });
      }
    }
    expect(pageErrors).toEqual([]);
  });
});
