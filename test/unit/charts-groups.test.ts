/**
 * Axes for Mamba-Codestral's sizes: B and C with 8 groups × 128 states (1024 rows) and a layer
 * overview of 64 layers. Pure numbers (renderer/src/panels/chart-scale.ts), checked by hand.
 */
import { describe, expect, it } from 'vitest';
import { groupStateTicks, indexTicks, layerOverviewHeight, thinLabels } from '../../renderer/src/panels/chart-scale';

const full = (count: number) => ({ start: 0, count });

describe('B/C state axis with groups (groups × states)', () => {
  it('names groups, every other one when 8 groups of 128 share 200 px', () => {
    const ticks = groupStateTicks(full(1024), 200, 8, 128);
    expect(ticks.map((t) => t.label)).toEqual(['g0', 'g2', 'g4', 'g6']);
    expect(ticks.map((t) => t.index)).toEqual([0, 256, 512, 768]);
    expect(ticks[1]!.t).toBeCloseTo(256.5 / 1024, 12);
    for (let i = 1; i < ticks.length; i++) expect((ticks[i]!.t - ticks[i - 1]!.t) * 200).toBeGreaterThanOrEqual(28);
  });

  it('names every group when each has room, and states inside a group when it has room for several', () => {
    expect(groupStateTicks(full(1024), 600, 8, 128).map((t) => t.label)).toEqual(['g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7']);
    const tall = groupStateTicks(full(1024), 1200, 8, 128);
    // 150 px per group, one tick per 28 px: nice steps of 50 inside (n50, n100)
    expect(tall.slice(0, 6).map((t) => t.label)).toEqual(['g0', 'n50', 'n100', 'g1', 'n50', 'n100']);
    expect(tall.slice(0, 6).map((t) => t.index)).toEqual([0, 50, 100, 128, 178, 228]);
    expect(tall).toHaveLength(24);
  });

  it('zoomed inside one group: group and state in each label', () => {
    const ticks = groupStateTicks({ start: 400, count: 60 }, 200, 8, 128);
    expect(ticks.length).toBeGreaterThanOrEqual(2);
    for (const t of ticks) {
      expect(t.label).toBe(`g3·n${t.index - 384}`);
      expect(t.index).toBeGreaterThanOrEqual(400);
      expect(t.index).toBeLessThan(460);
    }
    expect(ticks.map((t) => t.label)).toContain('g3·n20');
  });

  it('a zoom across a group boundary shows only the boundaries in view', () => {
    const ticks = groupStateTicks({ start: 100, count: 200 }, 400, 8, 128);
    expect(ticks.filter((t) => t.label.startsWith('g')).map((t) => t.label)).toEqual(['g1', 'g2']);
    expect(ticks.every((t) => t.index >= 100 && t.index < 300)).toBe(true);
  });

  it('one group is a plain index axis', () => {
    expect(groupStateTicks(full(128), 200, 1, 128)).toEqual(indexTicks(full(128), 200, 128, 28));
  });
});

describe('layer overview height', () => {
  it('12 px a row up to 20 layers, then about 240 px, never under 4 px a row', () => {
    expect([1, 2, 3, 20].map((n) => layerOverviewHeight(n))).toEqual([24, 24, 36, 240]);
    expect(layerOverviewHeight(24)).toBe(240); // mamba-130m: 10 px a row
    expect(layerOverviewHeight(48)).toBe(240); // 5 px a row
    expect(layerOverviewHeight(64)).toBe(256); // Codestral, Falcon-Mamba: 4 px a row
  });

  it('with 64 layers the row names thin to every third and keep the selected one', () => {
    const rowPx = layerOverviewHeight(64) / 64;
    const boxes = Array.from({ length: 64 }, (_, i) => ({ centre: (i + 0.5) * rowPx, size: 11 }));
    const kept = thinLabels(boxes, 1, 40);
    expect(kept).toContain(40);
    for (let i = 1; i < kept.length; i++) expect(boxes[kept[i]!]!.centre - boxes[kept[i - 1]!]!.centre).toBeGreaterThanOrEqual(12);
    expect(kept.length).toBeGreaterThanOrEqual(18);
    expect(kept.length).toBeLessThanOrEqual(22);
  });
});

describe('model facts: the architecture with its groups', () => {
  it('names the groups and where the gated norm runs', async () => {
    const { architectureText } = await import('../../renderer/src/format');
    expect(architectureText('mamba2', { nGroups: 8, normGroupSize: 1024, dInner: 8192 })).toBe('mamba2, 8 groups, gated norm per group of 1024');
    expect(architectureText('mamba2', { nGroups: 8, normGroupSize: 8192, dInner: 8192 })).toBe('mamba2, 8 groups, gated norm over all of d_inner');
    expect(architectureText('mamba2', { nGroups: 1, normGroupSize: 1536, dInner: 1536 })).toBe('mamba2');
    expect(architectureText('mamba', { nGroups: 0 })).toBe('mamba');
    expect(architectureText('mamba')).toBe('mamba');
  });
});
