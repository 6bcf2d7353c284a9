/**
 * A long live trace in the web build (issue 18): the bundled selective-copy model generates after
 * a prompt of PROMPT ids with the live trace keeping summaries + windows (the Generate panel's
 * "Keep"). The trace covers the prompt and the generated tokens; the Overview shows all of them,
 * the Δ heatmap shows a window recomputed from the trace's checkpoints, and hovered Δ cells — one
 * in the prompt, one among the generated tokens — equal the model's float64 reference over the
 * prompt and the generated ids read from the page, as the overview's ‖Δ‖ readout equals the
 * reference's. (In Chromium on SwiftShader the session's own steps are traced with taps; on a GPU
 * each step summarises itself: test/gpu/long-trace.test.ts.)
 */
import type { Page } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cellCentre, fullView, studioHints } from '../../renderer/src/panels/selection';
import { findChromium } from '../support/browser';
import { hoverUntil, loadSelectiveCopy, overviewReadoutAt, selectiveCopyDir, selectiveCopyReference } from '../support/selective-copy-app';
import { useWebApp } from '../support/web-app';
import { expectTraceStats } from '../support/trace-wait';

const chromiumFound = findChromium();
/** Prompt ids and generated tokens: a context past the first checkpoint (2,048 tokens), a short generation (SwiftShader decodes ~10–30 tokens/s here). */
const PROMPT = Number(process.env.LIVE_TRACE_PROMPT ?? 3000);
const GENERATE = 24;

let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 1400 }, pageErrors, (p) => (page = p));

describe('a long live trace in Chromium', () => {
  it(`generates ${GENERATE} tokens after ${PROMPT} with the live trace keeping windows; its windows equal the reference`, async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    const hints = studioHints(JSON.parse(await readFile(path.join(selectiveCopyDir, 'studio.json'), 'utf8')));
    const base = hints.suggestedIds!;
    const prompt = Array.from({ length: PROMPT }, (_, i) => base[(i * 7) % base.length]!);
    await loadSelectiveCopy(p, 120_000);

    await p.getByLabel('Prompt').fill(prompt.join(', '));
    await p.getByLabel('Max tokens').fill(String(GENERATE));
    await p.getByLabel('Temperature').fill('0');
    const live = p.getByLabel('Live selection trace');
    if (!(await live.isChecked())) await live.click();
    await p.getByLabel('What the live trace keeps').selectOption('windows');
    const t0 = Date.now();
    await p.getByRole('button', { name: 'Generate' }).click();
    await expect.poll(() => p.getByTestId('generation-stats').textContent(), { timeout: 300_000, interval: 200 }).toMatch(new RegExp(`^${GENERATE} tokens · [\\d.]+ tokens/s · stopped: max-tokens`));
    // The trace: the prompt and every generated token the state consumed (all but the last).
    const T = PROMPT + GENERATE - 1;
    await expectTraceStats(p, `${T} tokens · 2 layers · d_inner 256`, pageErrors, 120_000);
    console.info(`[e2e] live trace of ${T} tokens (windows): generation and trace in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const generated = (await p.getByTestId('generation-generated').locator('.token-id').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-id'))))) as number[];
    expect(generated).toHaveLength(GENERATE);
    const ids = [...prompt, ...generated.slice(0, -1)];

    // The overview covers the whole trace; the default window is its last min(T, 2048) tokens.
    const D = Math.min(T, 2048);
    const overview = p.getByTestId('trace-overview');
    await expect.poll(() => overview.getAttribute('data-view-count'), { timeout: 60_000 }).toBe(String(T));
    await expect.poll(() => overview.getAttribute('data-window-from')).toBe(String(T - D));
    expect(await overview.getAttribute('data-window-to')).toBe(String(T));
    expect(await p.getByRole('button', { name: 'Export trace (safetensors)' }).isDisabled()).toBe(true);

    // A 256-token window at the end: prompt tokens, then the generated ones.
    const W = 256;
    await p.getByLabel('Window size (tokens)').fill(String(W));
    await p.getByTestId('trace-overview-canvas').focus();
    await p.keyboard.press('End');
    await expect.poll(() => overview.getAttribute('data-window-from')).toBe(String(T - W));
    await expect.poll(() => p.getByTestId('heatmap-view').textContent(), { timeout: 60_000 }).toMatch(new RegExp(`^tokens ${T - W}–${T - 1} of the window`));
    await expect.poll(() => p.getByTestId('trace-window-busy').count()).toBe(0);

    // The overview's hover readout: a summary of the token under the pointer (the prompt's part).
    const { token: t, layer: l, value: summary } = await overviewReadoutAt(p, 0.4, 0.75);

    // The float64 reference over the traced ids (the generated ones as the page shows them).
    const { inspection, ref } = await selectiveCopyReference(ids)();
    const Di = inspection.config.dInner;
    const norm = Math.hypot(...ref.delta[l]!.subarray(t * Di, (t + 1) * Di));
    expect(Math.abs(summary - norm), `‖Δ‖ L${l} token ${t}: ${summary} vs ${norm}`).toBeLessThanOrEqual(1e-4 * norm + 1e-6);

    // Hovered Δ cells of the window: one in the prompt, one among the generated tokens.
    const layer = Number(await p.getByLabel('Layer', { exact: true }).inputValue());
    const channel = hints.focusChannels?.[0] ?? 5;
    const span = p.getByTestId('heatmap-readout').locator('span[data-token]');
    for (const local of [100, W - 5]) {
      const token = T - W + local;
      await hoverUntil(p.getByTestId('heatmap-canvas'), (w, h) => cellCentre(fullView(W), Di, local, channel, w, h), span, ['data-token', 'data-channel'], `${token} ${channel}`);
      const got = Number(await span.getAttribute('data-value'));
      const want = ref.delta[layer]![token * Di + channel]!;
      expect(Math.abs(got - want), `Δ L${layer} (${token}${token >= PROMPT ? ', generated' : ''}, ${channel}): ${got} vs ${want}`).toBeLessThanOrEqual(1e-4 * Math.abs(want) + 1e-6);
    }
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 600_000);
});
