/**
 * The workspace in the web build at 1280×720 (issue 15, "The workspace" and defect 9): nothing in
 * a panel is cut off or overflows sideways (the knockout values, the Live-trace checkbox beside
 * its label, the Tokens legend's sliders beside theirs), also at 1920×1080; the prompt and
 * generation area sits beside the selection panels; the column split moves with the keyboard and
 * the mouse and comes back after a reload, as do panels moved (buttons) and dragged; hovering a
 * token in the strip marks it in the Δ heatmap, B/C, memory and hidden-attention panels, and
 * hovering the heatmap or a memory chart marks the strip. Screenshots: test-results/workspace-*.png.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { findChromium } from '../support/browser';
import { expectTraceStats, fillTraceBox } from '../support/trace-wait';
import { useWebApp } from '../support/web-app';

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-results');
const chromiumFound = findChromium();
let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 720 }, pageErrors, (p) => (page = p));

/** A short selective-copy prompt (ids: noise 0, data 1–16, marker 17): quick to trace and to knock out. */
const PROMPT = '3, 0, 0, 7, 0, 12, 0, 0, 17, 17';
const T = 10;

async function loadAndTrace(p: Page) {
  await expect.poll(() => p.getByTestId('gpu-status').textContent(), { timeout: 60_000 }).toMatch(/^WebGPU: (?!looking)\S+/);
  await p.getByRole('option', { name: /Selective copying/ }).click();
  await p.getByRole('button', { name: 'Load onto the GPU' }).click();
  await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/On the GPU/);
  await fillTraceBox(p, PROMPT);
  await p.getByRole('button', { name: 'Trace', exact: true }).click();
  await expectTraceStats(p, `${T} tokens · 2 layers · d_inner 256`, pageErrors);
}

/** The column (0 = leftmost) the workspace puts panel `id` in. */
const column = (p: Page, id: string) => p.getByTestId(`workspace-cell-${id}`).getAttribute('data-column');

type Box = { x: number; y: number; width: number; height: number };
const box = async (l: Locator): Promise<Box> => {
  const b = await l.boundingBox();
  if (!b) throw new Error(`${l.toString()} has no bounding box (not rendered)`);
  return b;
};
const centreY = (b: Box) => b.y + b.height / 2;
/** Label and control on one line: their vertical centres within 6 px, the control right of the label and at most 16 px from it. */
async function expectBeside(label: Locator, control: Locator, what: string) {
  const l = await box(label);
  const c = await box(control);
  expect(Math.abs(centreY(l) - centreY(c)), `${what}: vertical centres`).toBeLessThanOrEqual(6);
  const gap = c.x - (l.x + l.width);
  expect(gap, `${what}: gap from label to control`).toBeGreaterThanOrEqual(0);
  expect(gap, `${what}: gap from label to control`).toBeLessThanOrEqual(16);
}

/** Every panel frame (and the main area) without horizontal overflow, and every knockout table cell inside the knockout panel's visible box. */
async function expectNothingCutOff(p: Page, viewport: string) {
  const overflow = await p.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('.main-area, [data-testid^="frame-body-"]')].filter((e) => e.scrollWidth > e.clientWidth).map((e) => `${e.dataset.testid ?? e.className}: ${e.scrollWidth} > ${e.clientWidth}`),
  );
  expect(overflow, `${viewport}: horizontal overflow`).toEqual([]);
  // The bar chart's value texts end inside the canvas (the chart measures them: data-values-right, CSS px).
  const chart = p.getByTestId('knockout-canvas');
  await expect.poll(async () => Number((await chart.getAttribute('data-values-right')) ?? Infinity) <= (await chart.evaluate((e) => e.clientWidth)), { message: `${viewport}: knockout values inside the chart` }).toBe(true);
  console.info(`[e2e] ${viewport}: knockout chart ${await chart.evaluate((e) => e.clientWidth)} px wide, widest value text ${await chart.getAttribute('data-values-width')} px (the old layout left 104 px for it)`);
  const frame = await box(p.getByTestId('frame-body-knockout'));
  const cells = await p.getByTestId('knockout-table').locator('td, th').evaluateAll((els) => els.map((e) => ({ text: e.textContent ?? '', ...JSON.parse(JSON.stringify(e.getBoundingClientRect())) as { left: number; right: number } })));
  expect(cells.length).toBeGreaterThan(3);
  for (const c of cells) {
    expect(c.left, `${viewport}: knockout cell "${c.text}" left edge`).toBeGreaterThanOrEqual(frame.x - 0.5);
    expect(c.right, `${viewport}: knockout cell "${c.text}" right edge`).toBeLessThanOrEqual(frame.x + frame.width + 0.5);
  }
}

describe('the workspace at 1280×720', () => {
  it('cuts nothing off: knockout values visible, Live trace beside its label, the Tokens legend sliders beside theirs (also at 1920×1080)', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    await loadAndTrace(p);
    // All 18 next tokens: the least likely have two-digit exponents, the widest value texts.
    await p.getByLabel('Knockout top k').fill('18');
    await p.getByLabel('Knockout token').fill('3');
    await p.getByRole('button', { name: 'Filter this token' }).click();
    await expect.poll(() => p.getByTestId('knockout-summary').getAttribute('data-token').catch(() => null), { timeout: 60_000 }).toBe('3');

    const live = p.getByLabel('Live selection trace');
    await expectBeside(p.locator('label.setting', { has: live }).locator('span'), live, 'Live trace');
    const legend = p.getByTestId('strip-legend');
    for (const name of ['filtered ≤ threshold', 'write ≥ threshold']) {
      await expectBeside(legend.locator('label.setting', { has: p.getByLabel(name) }).locator('span'), legend.getByLabel(name), name);
    }
    mkdirSync(artifacts, { recursive: true });
    await expectNothingCutOff(p, '1280×720');
    await p.locator('.main-area').evaluate((e) => e.scrollTo(0, 0));
    await p.screenshot({ path: path.join(artifacts, 'workspace-1280x720.png') });
    await p.getByTestId('frame-knockout').scrollIntoViewIfNeeded();
    await p.getByTestId('frame-knockout').screenshot({ path: path.join(artifacts, 'workspace-knockout-1280x720.png') });

    await p.setViewportSize({ width: 1920, height: 1080 });
    await expectNothingCutOff(p, '1920×1080');
    await expectBeside(p.locator('label.setting', { has: live }).locator('span'), live, 'Live trace at 1920');
    await p.locator('.main-area').evaluate((e) => e.scrollTo(0, 0));
    await p.screenshot({ path: path.join(artifacts, 'workspace-1920x1080.png') });
    await p.setViewportSize({ width: 1280, height: 720 });
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 240_000);

  it('puts the prompt and generation beside the selection panels; the column split and moved / dragged panels survive a reload', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    if ((await p.getByTestId('frame-delta').count()) === 0) await loadAndTrace(p);
    await p.getByRole('button', { name: 'Reset layout' }).click();

    // Side by side: the generate area's right edge at or left of the Δ panel's left edge, and the two overlapping vertically.
    const gen = await box(p.getByTestId('frame-generate'));
    const delta = await box(p.getByTestId('frame-delta'));
    expect(gen.x + gen.width).toBeLessThanOrEqual(delta.x);
    expect(delta.x - (gen.x + gen.width)).toBeLessThanOrEqual(24);
    expect(delta.y).toBeLessThan(gen.y + gen.height);
    expect(await column(p, 'generate')).toBe('0');
    expect(await column(p, 'delta')).toBe('1');

    // The split: 3 × ArrowRight (2% each), then a 60 px drag to the left.
    const split = p.getByRole('separator', { name: 'Resize columns 1 and 2' });
    const before = Number(await split.getAttribute('aria-valuenow'));
    await split.focus();
    for (let i = 0; i < 3; i++) await p.keyboard.press('ArrowRight');
    await expect.poll(async () => Number(await split.getAttribute('aria-valuenow'))).toBe(before + 6);
    const s = await box(split);
    const rowWidth = (await box(p.getByTestId('workspace-grid'))).width;
    await p.mouse.move(s.x + s.width / 2, s.y + 20);
    await p.mouse.down();
    await p.mouse.move(s.x + s.width / 2 - 60, s.y + 20, { steps: 4 });
    await p.mouse.up();
    await expect.poll(async () => Number(await split.getAttribute('aria-valuenow'))).toBeLessThan(before + 6);
    const after = Number(await split.getAttribute('aria-valuenow'));
    // 60 px of the row's width (less the 8 px split), in percent of the row, to within rounding.
    expect(Math.abs(before + 6 - after - (100 * 60) / (rowWidth - 8))).toBeLessThanOrEqual(1);
    const column0 = (await box(p.getByTestId('workspace-cell-generate'))).width;

    // Move the Tokens panel to the left-hand column.
    expect(await column(p, 'tokens')).toBe('1');
    await p.getByRole('button', { name: 'Move Tokens left' }).click();
    await expect.poll(() => column(p, 'tokens')).toBe('0');
    // Drag the Δ panel by its grip (now at the top of the right-hand column) above the generate panel.
    await p.locator('.main-area').evaluate((e) => e.scrollTo(0, 0));
    const grip = await box(p.getByTestId('grip-delta'));
    const generateCell = await box(p.getByTestId('workspace-cell-generate'));
    await p.mouse.move(grip.x + grip.width / 2, grip.y + grip.height / 2);
    await p.mouse.down();
    await p.mouse.move(generateCell.x + generateCell.width / 2, generateCell.y + 10, { steps: 6 });
    expect(await p.getByTestId('workspace-drop').count()).toBe(1);
    await p.mouse.up();
    await expect.poll(() => column(p, 'delta')).toBe('0');
    expect((await box(p.getByTestId('workspace-cell-delta'))).y).toBeLessThan((await box(p.getByTestId('workspace-cell-generate'))).y);
    expect(await p.getByTestId('workspace-drop').count()).toBe(0);
    await p.screenshot({ path: path.join(artifacts, 'workspace-moved-1280x720.png') });

    await p.reload();
    await loadAndTrace(p);
    expect(Number(await p.getByRole('separator', { name: 'Resize columns 1 and 2' }).getAttribute('aria-valuenow'))).toBe(after);
    expect(Math.abs((await box(p.getByTestId('workspace-cell-generate'))).width - column0)).toBeLessThanOrEqual(1);
    expect(await column(p, 'tokens')).toBe('0');
    expect(await column(p, 'delta')).toBe('0');
    expect((await box(p.getByTestId('workspace-cell-delta'))).y).toBeLessThan((await box(p.getByTestId('workspace-cell-generate'))).y);

    // Reset: the default tiling again.
    await p.getByRole('button', { name: 'Reset layout' }).click();
    await expect.poll(() => column(p, 'tokens')).toBe('1');
    expect(await column(p, 'delta')).toBe('1');
    expect(Number(await p.getByRole('separator', { name: 'Resize columns 1 and 2' }).getAttribute('aria-valuenow'))).toBe(before);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 240_000);

  it('links hover across the panels: a token hovered in the strip is marked in Δ, B/C, memory and hidden attention, and back', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    if ((await p.getByTestId('frame-delta').count()) === 0) await loadAndTrace(p);
    await p.locator('#token-4').hover();
    await expect.poll(() => p.getByTestId('delta-heatmap').getAttribute('data-hover-token')).toBe('4');
    expect(await p.getByTestId('bc-panel').getAttribute('data-hover-token')).toBe('4');
    expect(await p.getByTestId('memory-panel').getAttribute('data-hover-token')).toBe('4');
    expect(await p.getByTestId('state-norms').getAttribute('data-hover-token')).toBe('4');
    expect(await p.getByTestId('hidden-attention-panel').getAttribute('data-hover-token')).toBe('4');
    expect(await p.locator('#token-4').getAttribute('aria-selected')).toBe('true');

    // The memory panel's ‖state_t‖ chart: x runs over the T tokens across its plot area (right of the y axis); token 2.
    const norms = p.getByTestId('state-norms');
    await norms.scrollIntoViewIfNeeded();
    const n = await box(norms);
    const plotLeft = Number(await norms.getAttribute('data-plot-left'));
    const plotWidth = Number(await norms.getAttribute('data-plot-width'));
    expect(plotWidth).toBeGreaterThan(0);
    await p.mouse.move(n.x + plotLeft + (2 / (T - 1)) * plotWidth, n.y + n.height / 2);
    await expect.poll(() => p.locator('#token-2').getAttribute('aria-selected')).toBe('true');
    expect(await p.getByTestId('delta-heatmap').getAttribute('data-hover-token')).toBe('2');

    // The heatmap's token axis runs left → right over the T tokens: the middle of column 7.
    const canvas = p.getByTestId('heatmap-canvas');
    await canvas.scrollIntoViewIfNeeded();
    const c = await box(canvas);
    await p.mouse.move(c.x + ((7 + 0.5) / T) * c.width, c.y + c.height / 2);
    await expect.poll(() => p.locator('#token-7').getAttribute('aria-selected')).toBe('true');
    expect(await p.getByTestId('delta-heatmap').getAttribute('data-hover-token')).toBe('7');
    expect(await p.getByTestId('bc-panel').getAttribute('data-hover-token')).toBe('7');
    await p.screenshot({ path: path.join(artifacts, 'workspace-linked-hover.png') });
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 120_000);
});
