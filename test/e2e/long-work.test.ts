/**
 * Long work in the web build (issue 15, defect 7), with the bundled shakespeare-byte model:
 * - hidden attention over the mean of all channels of a 200-token trace runs in row bands: a
 *   progress bar with Cancel shows how far it is, the last matrix (of one channel) stays on
 *   screen dimmed and labelled "updating…", and Escape cancels it: no error, the last matrix is
 *   still shown;
 * - re-tracing a longer prompt shows progress, keeps the previous trace's panels on screen
 *   (dimmed, "updating…") instead of blanking them, and Cancel brings them back as they were,
 *   with no error (test-results/long-work-retrace.png while it runs);
 * - a knockout shows KL at every position from the knocked token on, as a line chart
 *   (test-results/long-work-knockout.png).
 * Before: neither showed progress nor could be cancelled, and a re-trace blanked every panel.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { findChromium } from '../support/browser';
import { useWebApp } from '../support/web-app';
import { expectTraceStats, fillTraceBox } from '../support/trace-wait';

const artifacts = path.resolve(import.meta.dirname, '../../test-results');
const chromiumFound = findChromium();
let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 1400 }, pageErrors, (p) => (page = p));

const LINE = 'ROMEO:\nBut soft, what light through yonder window breaks?\n';
/** 200 bytes of play text (the trace on screen), 600 (the re-trace that gets cancelled), 60 (one that runs). */
const text = (bytes: number) => LINE.repeat(Math.ceil(bytes / LINE.length)).slice(0, bytes);

const attr = (p: Page, testId: string, name: string) =>
  p
    .getByTestId(testId)
    .getAttribute(name, { timeout: 1000 })
    .catch(() => null);

describe('long work in Chromium', () => {
  it('hidden attention and a re-trace show progress, keep the last results, and cancel', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    await expect.poll(() => p.getByTestId('gpu-status').textContent(), { timeout: 60_000 }).toMatch(/^WebGPU: (?!looking)\S+/);
    await p.getByRole('option', { name: /Shakespeare bytes/ }).click();
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 60_000 }).toMatch(/On the GPU/);
    const started = performance.now();
    const step = (what: string) => console.info(`[e2e] ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    await fillTraceBox(p, text(200));
    await p.getByRole('button', { name: 'Trace', exact: true }).click();
    const stats = '200 tokens · 4 layers · d_inner 512';
    await expectTraceStats(p, stats, pageErrors, 60_000);

    // Hidden attention of one channel (quick), then the mean over all 512 (banded): cancelled.
    await p.getByLabel('Hidden attention unit').selectOption('one');
    await p.getByRole('button', { name: 'Compute hidden attention' }).click();
    await expect.poll(() => attr(p, 'hidden-attention-result', 'data-stale'), { timeout: 30_000 }).toBe('false');
    const channelLabel = await p.getByTestId('hidden-attention-canvas').getAttribute('aria-label');
    expect(channelLabel).toMatch(/channel 0: 200 × 200/);
    step('traced, one channel computed');
    await p.getByLabel('Hidden attention unit').selectOption('mean');
    await p.getByRole('button', { name: 'Compute hidden attention' }).click();
    await expect.poll(async () => Number(await attr(p, 'hidden-attention-progress', 'data-done')), { timeout: 30_000, interval: 50 }).toBeGreaterThan(0);
    expect(await attr(p, 'hidden-attention-progress', 'data-total')).toBe('200');
    expect(Number(await attr(p, 'hidden-attention-progress', 'data-done'))).toBeLessThan(200);
    // The last matrix stays on screen, dimmed, while the new one is computed.
    expect(await attr(p, 'hidden-attention-result', 'data-stale')).toBe('true');
    expect(await p.getByTestId('hidden-attention-result').textContent()).toContain('updating…');
    await p.keyboard.press('Escape');
    await expect.poll(() => p.getByTestId('hidden-attention-progress').count(), { timeout: 30_000 }).toBe(0);
    expect(await p.getByTestId('hidden-attention-error').count()).toBe(0);
    // Still the channel's matrix (now not the selected unit: labelled so).
    expect(await p.getByTestId('hidden-attention-canvas').getAttribute('aria-label')).toBe(channelLabel);
    expect(await p.getByTestId('hidden-attention-result').textContent()).toMatch(/compute again/);
    step('hidden attention cancelled');

    // A re-trace of 600 bytes (three chunks): progress, the previous trace dimmed, then Cancel.
    await fillTraceBox(p, text(600));
    await p.getByRole('button', { name: 'Trace', exact: true }).click();
    await expect.poll(() => attr(p, 'trace-progress', 'data-total'), { timeout: 30_000, interval: 50 }).toBe('600');
    expect(Number(await attr(p, 'trace-progress', 'data-done'))).toBeLessThan(600);
    expect(await attr(p, 'frame-body-tokens', 'data-stale')).toBe('true');
    expect(await p.getByTestId('trace-stats').textContent()).toBe(stats);
    expect(await p.getByTestId('hidden-attention-canvas').count()).toBe(1);
    mkdirSync(artifacts, { recursive: true });
    await p.screenshot({ path: path.join(artifacts, 'long-work-retrace.png') });
    await p.getByTestId('trace-cancel').click();
    await expect.poll(() => p.getByTestId('trace-progress').count(), { timeout: 30_000 }).toBe(0);
    expect(await attr(p, 'frame-body-tokens', 'data-stale')).toBe('false');
    expect(await p.getByTestId('trace-stats').textContent()).toBe(stats);
    expect(await p.locator('.selection-panels .error').count()).toBe(0);
    expect(await p.getByTestId('hidden-attention-canvas').getAttribute('aria-label')).toBe(channelLabel);

    step('re-trace cancelled');

    // The engine works on: a new trace runs to the end and replaces the previous one.
    await fillTraceBox(p, text(60));
    await p.getByRole('button', { name: 'Trace', exact: true }).click();
    await expectTraceStats(p, '60 tokens · 4 layers · d_inner 512', pageErrors, 60_000);
    step('traced again');

    // Knockout of token 10 in every layer: KL at every position from 10 on, as a line chart.
    await p.getByLabel('Knockout layers').selectOption('all');
    await p.getByLabel('Knockout token').fill('10');
    await p.getByRole('button', { name: 'Filter this token' }).click();
    const positions = p.getByTestId('knockout-positions');
    await expect.poll(() => positions.getAttribute('data-token', { timeout: 1000 }).catch(() => null), { timeout: 60_000 }).toBe('10');
    expect(Number(await positions.getAttribute('data-peak-position'))).toBeGreaterThanOrEqual(10);
    expect(Number(await positions.getAttribute('data-peak-kl'))).toBeGreaterThan(0);
    // One line from position 10 to 59: 50 points.
    const points = await p.getByTestId('knockout-kl-chart').locator('polyline').evaluateAll((els) => els.map((e) => (e.getAttribute('points') ?? '').trim().split(/\s+/).length));
    expect(points).toEqual([50]);
    await p.getByTestId('knockout-panel').screenshot({ path: path.join(artifacts, 'long-work-knockout.png') });
    step('knockout');
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 180_000);
});
