/**
 * The charts' axis numbers (renderer/src/panels/chart-scale.ts): nice ticks are 1, 2 or 5 × 10^k
 * multiples that stay inside and cover the range, log ticks are powers of ten, labels never
 * overlap after thinning, the token axis switches from indices to token text when zoomed in,
 * the diverging range is symmetric about 0, and the 2-D cell mapping and keyboard cursor agree.
 * Expected values are checked by independent means (counting, brute-force overlap, inverses).
 */
import { describe, expect, it } from 'vitest';
import {
  cellAt2d,
  cellCentre2d,
  formatTick,
  indexTicks,
  keepVisible,
  labelWidth,
  logTicks,
  moveCursor2d,
  niceStep,
  niceTicks,
  scaleTicks,
  symmetricRange,
  thinLabels,
  tokenAxisTicks,
  visibleText,
  TEXT_LABEL_PX,
} from '../../renderer/src/panels/chart-scale';
import { colormapRgb } from '../../renderer/src/panels/colormaps';

/** m × 10^k with m ∈ {1, 2, 5}, checked through the decimal digits (not the function under test). */
function isNice(step: number): boolean {
  const digits = step.toExponential().split('e')[0];
  return digits === '1' || digits === '2' || digits === '5';
}

describe('niceTicks', () => {
  const ranges: [number, number][] = [
    [0, 1],
    [0, 255],
    [-3.7, 12.2],
    [0.0013, 0.0871],
    [1e-6, 3e-6],
    [-1, 1],
    [17, 18],
    [123456, 987654],
  ];
  for (const [min, max] of ranges) {
    it(`covers [${min}, ${max}] with evenly spaced nice steps`, () => {
      const ticks = niceTicks(min, max, 6);
      expect(ticks.length).toBeGreaterThanOrEqual(2);
      expect(ticks.length).toBeLessThanOrEqual(6);
      for (const v of ticks) {
        expect(v).toBeGreaterThanOrEqual(min - 1e-12);
        expect(v).toBeLessThanOrEqual(max + 1e-12);
      }
      const step = ticks[1]! - ticks[0]!;
      expect(isNice(Number(step.toPrecision(6)))).toBe(true);
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!).toBeCloseTo(step, 9);
      // Every tick a whole multiple of the step (checked by division).
      for (const v of ticks) expect(Math.abs(v / step - Math.round(v / step))).toBeLessThan(1e-6);
      // Covers the range: no gap of more than one step at either end.
      expect(ticks[0]! - min).toBeLessThanOrEqual(step + 1e-12);
      expect(max - ticks[ticks.length - 1]!).toBeLessThanOrEqual(step + 1e-12);
    });
  }
  it('gives the classic 0, 0.2, …, 1 for [0, 1] and no binary fuzz', () => {
    expect(niceTicks(0, 1, 6)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.1, 0.35, 6)).toEqual([0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
  });
  it('never leaves a range with one lone tick (random ranges, up to 3 ticks asked)', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let k = 0; k < 500; k++) {
      const min = (rand() - 0.5) * 10 ** Math.floor(rand() * 8 - 4);
      const max = min + rand() * 10 ** Math.floor(rand() * 8 - 4) + 1e-9;
      const ticks = niceTicks(min, max, 3);
      expect(ticks.length, `[${min}, ${max}]`).toBeGreaterThanOrEqual(2);
      expect(ticks.length, `[${min}, ${max}]`).toBeLessThanOrEqual(5);
      for (const v of ticks) expect(v >= min - 1e-12 && v <= max + 1e-12).toBe(true);
    }
  });
  it('integer ticks never step below 1', () => {
    expect(niceTicks(3, 6, 10, true)).toEqual([3, 4, 5, 6]);
  });
  it('handles a single value and bad ranges', () => {
    expect(niceTicks(2, 2)).toEqual([2]);
    expect(niceTicks(3, 1)).toEqual([]);
    expect(niceTicks(NaN, 1)).toEqual([]);
  });
  it('niceStep rounds up to 1, 2, 5 × 10^k', () => {
    expect(niceStep(0.13)).toBe(0.2);
    expect(niceStep(3)).toBe(5);
    expect(niceStep(7)).toBe(10);
    expect(niceStep(1)).toBe(1);
  });
});

describe('logTicks and scaleTicks', () => {
  it('powers of ten over several decades', () => {
    expect(logTicks(0.003, 40)).toEqual([0.01, 0.1, 1, 10]);
    const wide = logTicks(1e-12, 1e3, 6);
    expect(wide.length).toBeLessThanOrEqual(6);
    for (const v of wide) expect(Math.log10(v)).toBeCloseTo(Math.round(Math.log10(v)), 9);
  });
  it('1, 2, 5 multiples in a narrow range, linear ones in a very narrow one', () => {
    expect(logTicks(0.15, 0.9)).toEqual([0.2, 0.5]);
    const narrow = logTicks(3.1, 3.9);
    expect(narrow.length).toBeGreaterThanOrEqual(2);
    for (const v of narrow) expect(v >= 3.1 && v <= 3.9).toBe(true);
  });
  it('colour bar positions: linear t proportional, log t proportional in log space', () => {
    const lin = scaleTicks({ min: -2, max: 2 }, false);
    for (const k of lin) expect(k.t).toBeCloseTo((k.value + 2) / 4, 12);
    expect(lin.map((k) => k.label)).toContain('0');
    const log = scaleTicks({ min: 1e-4, max: 1 }, true);
    for (const k of log) expect(k.t).toBeCloseTo((Math.log(k.value) - Math.log(1e-4)) / (Math.log(1) - Math.log(1e-4)), 12);
    expect(log.map((k) => k.label)).toEqual(expect.arrayContaining(['1e-4', '1']));
  });
  it('formats labels with the places the step needs', () => {
    expect(formatTick(0.25, 0.05)).toBe('0.25');
    expect(formatTick(10, 5)).toBe('10');
    expect(formatTick(1e-5)).toBe('1e-5');
    expect(formatTick(250000, 50000)).toBe('2.5e5');
  });
});

/** Do any two kept boxes overlap (closer than gap)? Brute force over all pairs. */
const overlaps = (boxes: { centre: number; size: number }[], kept: number[], gap: number) =>
  kept.some((i, a) => kept.some((j, b) => a < b && Math.abs(boxes[i]!.centre - boxes[j]!.centre) < (boxes[i]!.size + boxes[j]!.size) / 2 + gap));

describe('thinLabels', () => {
  it('keeps labels apart and keeps all of them when they fit', () => {
    const dense = Array.from({ length: 100 }, (_, i) => ({ centre: i * 5, size: 18 }));
    const kept = thinLabels(dense, 4);
    expect(overlaps(dense, kept, 4)).toBe(false);
    expect(kept[0]).toBe(0);
    // Greedy thinning keeps a label every ceil(22 / 5) = 5 positions.
    expect(kept.length).toBe(20);
    const sparse = Array.from({ length: 10 }, (_, i) => ({ centre: i * 50, size: 18 }));
    expect(thinLabels(sparse, 4)).toEqual(sparse.map((_, i) => i));
  });
  it('always keeps a pinned label, its neighbours yield', () => {
    const boxes = Array.from({ length: 30 }, (_, i) => ({ centre: i * 10, size: 24 }));
    const kept = thinLabels(boxes, 2, 13);
    expect(kept).toContain(13);
    expect(overlaps(boxes, kept, 2)).toBe(false);
  });
});

describe('token axis', () => {
  const texts = Array.from({ length: 256 }, (_, i) => `t${i}`);
  it('indices at full view, token text when zoomed in', () => {
    const full = tokenAxisTicks({ start: 0, count: 256 }, 800, texts, 256);
    expect(full.kind).toBe('index');
    for (const k of full.ticks) expect(k.label).toBe(String(k.index));
    expect(full.ticks.length).toBeGreaterThanOrEqual(2);
    const zoom = tokenAxisTicks({ start: 100, count: 20 }, 800, texts, 256);
    expect(800 / 20).toBeGreaterThanOrEqual(TEXT_LABEL_PX);
    expect(zoom.kind).toBe('text');
    expect(zoom.ticks.map((k) => k.label)).toEqual(texts.slice(100, 120));
    // The tick sits at the centre of the token's column.
    expect(zoom.ticks[0]!.t).toBeCloseTo(0.5 / 20, 12);
  });
  it('text labels never overlap', () => {
    const long = Array.from({ length: 64 }, (_, i) => `longer-token-${i}`);
    const r = tokenAxisTicks({ start: 0, count: 40 }, 700, long, 64);
    const boxes = r.ticks.map((k) => ({ centre: k.t * 700, size: labelWidth(k.label) }));
    expect(overlaps(boxes, boxes.map((_, i) => i), 4)).toBe(false);
    expect(r.ticks.length).toBeGreaterThan(1);
  });
  it('index ticks lie inside the view', () => {
    const ticks = indexTicks({ start: 37.4, count: 50 }, 500, 256);
    for (const k of ticks) {
      expect(k.t).toBeGreaterThanOrEqual(0);
      expect(k.t).toBeLessThanOrEqual(1);
      expect(k.t).toBeCloseTo((k.index + 0.5 - 37.4) / 50, 12);
    }
  });
  it('shows whitespace and control characters as symbols', () => {
    expect(visibleText(' a\n\u0001')).toBe('␣a↵�');
    expect([...visibleText('x'.repeat(40), 12)]).toHaveLength(12);
  });
});

describe('diverging map', () => {
  it('symmetric range about 0', () => {
    expect(symmetricRange({ min: -0.3, max: 2 })).toEqual({ min: -2, max: 2 });
    expect(symmetricRange({ min: -5, max: 1 })).toEqual({ min: -5, max: 5 });
    expect(symmetricRange({ min: 0, max: 0 })).toEqual({ min: -1, max: 1 });
  });
  it('white in the middle, blue below, red above, mirror-symmetric lightness', () => {
    expect(colormapRgb('diverging', 0.5)).toEqual([1, 1, 1]);
    const [r0, , b0] = colormapRgb('diverging', 0);
    const [r1, , b1] = colormapRgb('diverging', 1);
    expect(b0).toBeGreaterThan(r0);
    expect(r1).toBeGreaterThan(b1);
    // Distance from white grows the same way on both sides.
    const dist = (c: number[]) => Math.hypot(1 - c[0]!, 1 - c[1]!, 1 - c[2]!);
    const d0 = dist(colormapRgb('diverging', 0));
    const d1 = dist(colormapRgb('diverging', 1));
    expect(dist(colormapRgb('diverging', 0.25)) / d0).toBeCloseTo(0.5, 9);
    expect(dist(colormapRgb('diverging', 0.75)) / d1).toBeCloseTo(0.5, 9);
  });
});

describe('2-D view', () => {
  const view = { x: { start: 10.5, count: 40 }, y: { start: 8, count: 16 } };
  it('cellAt2d inverts cellCentre2d', () => {
    for (const [t, c] of [
      [11, 8],
      [30, 15],
      [49, 23],
    ] as const) {
      const p = cellCentre2d(view, t, c, 400, 160);
      expect(cellAt2d(view, p.x, p.y, 400, 160)).toEqual({ token: t, channel: c });
    }
    expect(cellAt2d(view, -1, 5, 400, 160)).toBeNull();
    expect(cellAt2d(view, 5, 160, 400, 160)).toBeNull();
  });
  it('the keyboard cursor moves and stays inside', () => {
    expect(moveCursor2d(null, 'ArrowRight', 10, 4)).toEqual({ token: 0, channel: 0 });
    expect(moveCursor2d({ token: 3, channel: 1 }, 'ArrowRight', 10, 4)).toEqual({ token: 4, channel: 1 });
    expect(moveCursor2d({ token: 3, channel: 1 }, 'ArrowUp', 10, 4)).toEqual({ token: 3, channel: 0 });
    expect(moveCursor2d({ token: 3, channel: 3 }, 'ArrowDown', 10, 4)).toEqual({ token: 3, channel: 3 });
    expect(moveCursor2d({ token: 3, channel: 1 }, 'End', 10, 4)).toEqual({ token: 9, channel: 1 });
    expect(moveCursor2d({ token: 3, channel: 1 }, 'x', 10, 4)).toBeNull();
  });
  it('keepVisible pans just enough', () => {
    expect(keepVisible({ start: 10, count: 20 }, 15, 100)).toEqual({ start: 10, count: 20 });
    expect(keepVisible({ start: 10, count: 20 }, 30, 100)).toEqual({ start: 11, count: 20 });
    expect(keepVisible({ start: 10, count: 20 }, 4, 100)).toEqual({ start: 4, count: 20 });
  });
});

describe('heatmapKey (keyboard on a focused heatmap)', () => {
  /** A control whose setters apply updates to a plain view, as the hook's state would. */
  function control(view: { start: number; count: number }, channelView: { start: number; count: number }) {
    const c = {
      view,
      channelView,
      setView: (u: unknown) => (c.view = typeof u === 'function' ? (u as (v: typeof view) => typeof view)(c.view) : (u as typeof view)),
      setChannelView: (u: unknown) => (c.channelView = typeof u === 'function' ? (u as (v: typeof view) => typeof view)(c.channelView) : (u as typeof view)),
      dragHandlers: {} as never,
      dragMove: () => false,
      dragged: () => false,
    };
    return c;
  }
  it('the first arrow shows the cursor at the first cell in view, without moving it', async () => {
    const { heatmapKey } = await import('../../renderer/src/panels/token-view');
    const c = control({ start: 40.3, count: 20 }, { start: 8, count: 16 });
    expect(heatmapKey(c, 'ArrowRight', null, 100, 64)).toEqual({ token: 41, channel: 8 });
    expect(heatmapKey(c, 'ArrowRight', { token: 41, channel: 8 }, 100, 64)).toEqual({ token: 42, channel: 8 });
    expect(heatmapKey(c, 'x', null, 100, 64)).toBeUndefined();
  });
  it('moving past the edge pans the view; + and − zoom both axes about the cursor', async () => {
    const { heatmapKey } = await import('../../renderer/src/panels/token-view');
    const c = control({ start: 0, count: 20 }, { start: 0, count: 64 });
    expect(heatmapKey(c, 'End', { token: 5, channel: 3 }, 100, 64)).toEqual({ token: 99, channel: 3 });
    expect(c.view).toEqual({ start: 80, count: 20 });
    heatmapKey(c, '+', { token: 99, channel: 3 }, 100, 64);
    expect(c.view.count).toBe(10);
    expect(c.channelView.count).toBe(32);
    // The cursor's cell centre stays at the same fraction of each axis.
    expect((99.5 - c.view.start) / c.view.count).toBeCloseTo((99.5 - 80) / 20, 9);
    expect((3.5 - c.channelView.start) / c.channelView.count).toBeCloseTo(3.5 / 64, 9);
    heatmapKey(c, '-', { token: 99, channel: 3 }, 100, 64);
    expect(c.view.count).toBe(20);
    expect(c.channelView.count).toBe(64);
  });
});
