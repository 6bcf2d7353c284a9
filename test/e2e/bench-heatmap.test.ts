/**
 * Smoke test of `npm run bench:heatmap` (tooling/bench-heatmap.ts) at a small size: the page
 * draws with the app's heatmap renderer, drives the requested number of pan/zoom frames and
 * reports its measurements. No timing is asserted (SwiftShader here; numbers go to bench/).
 */
import { describe, expect, it } from 'vitest';
import { runHeatmapBench } from '../../tooling/bench-heatmap';
import { findChromium } from '../support/browser';

const chromium = findChromium();

describe('heatmap pan/zoom benchmark', () => {
  it('draws a synthetic Δ matrix and times pan/zoom frames', async (test) => {
    if ('reason' in chromium) return test.skip(chromium.reason);
    const r = await runHeatmapBench({ tokens: 300, channels: 70, frames: 16, width: 400, height: 200 });
    expect(r.tokens).toBe(300);
    expect(r.channels).toBe(70);
    expect(r.canvas.width).toBe(Math.round(400 * r.canvas.devicePixelRatio));
    expect(r.frameIntervalsMs).toHaveLength(16);
    expect(r.drawMs).toHaveLength(16);
    for (const ms of [...r.frameIntervalsMs, ...r.drawMs, r.uploadMs]) expect(Number.isFinite(ms) && ms >= 0).toBe(true);
    expect(r.summary.framesPerSecond).toBeGreaterThan(0);
    // The views moved: 16 frames of zooming in (phase 0 of the schedule) from the whole sequence.
    expect(r.firstView).toEqual({ start: 0, count: 300 });
    expect(r.lastView.count).toBeLessThan(300);
    // A real heatmap was drawn (many colours), not a cleared canvas.
    expect(r.distinctColours).toBeGreaterThan(16);
    expect(r.renderer).not.toBe('');
  });
});
