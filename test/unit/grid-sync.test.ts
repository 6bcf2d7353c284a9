/**
 * The grid decode's choices that need no GPU: how many workgroups it takes for a probed count,
 * the matrix-vector shape that fills the grid's groups in the fewest rounds, and that it is off
 * unless asked for.
 */
import { describe, expect, it } from 'vitest';
import { gridDecodeWorkgroups, type GpuContext } from '../../app/gpu/context';
import { GRID_DECODE_MAX, gridWorkgroupsFor } from '../../app/gpu/grid-sync';
import { gridMatvecShape } from '../../app/kernels/layer-grid';

describe('grid decode workgroups', () => {
  it('takes the largest power of two at most half the probed count and at most the cap; none below 16', () => {
    expect(gridWorkgroupsFor(1056)).toBe(GRID_DECODE_MAX); // the H200's count for 256-wide workgroups
    expect(gridWorkgroupsFor(300)).toBe(128);
    expect(gridWorkgroupsFor(100)).toBe(32);
    expect(gridWorkgroupsFor(33)).toBe(16);
    expect(gridWorkgroupsFor(31)).toBeNull();
    expect(gridWorkgroupsFor(0)).toBeNull();
  });

  it('is off unless tuning asks: auto takes the probed count, a number itself, false none', () => {
    const ctx = (tuning: GpuContext['tuning'], gridWorkgroups: number | null = 256) => ({ gridWorkgroups, tuning }) as unknown as GpuContext;
    expect(gridDecodeWorkgroups(ctx(undefined))).toBeNull();
    expect(gridDecodeWorkgroups(ctx({}))).toBeNull();
    expect(gridDecodeWorkgroups(ctx({ gridDecode: false }))).toBeNull();
    expect(gridDecodeWorkgroups(ctx({ gridDecode: 'auto' }))).toBe(256);
    expect(gridDecodeWorkgroups(ctx({ gridDecode: 'auto' }, null))).toBeNull();
    expect(gridDecodeWorkgroups(ctx({ gridDecode: 4 }, null))).toBe(4);
  });
});

describe('grid matrix-vector shape', () => {
  it('covers every row in one round where 8 rows a group allow it, with at most 8 loads in flight a thread', () => {
    for (const [rows, groups] of [[10576, 2048], [2560, 2048], [3352, 2048], [768, 2048], [1, 8], [100000, 2048], [17, 8]] as const) {
      const s = gridMatvecShape(rows, groups);
      expect(s.rows).toBeGreaterThanOrEqual(1);
      expect(s.rows).toBeLessThanOrEqual(8);
      expect(s.rows * s.unroll).toBeLessThanOrEqual(8);
      // One round when 8 rows a group cover them, and no more rows a group than that needs.
      if (rows <= 8 * groups) {
        expect(s.rows * groups).toBeGreaterThanOrEqual(rows);
        expect((s.rows - 1) * groups).toBeLessThan(rows);
      } else expect(s.rows).toBe(8);
    }
    expect(gridMatvecShape(10576, 2048)).toEqual({ rows: 6, unroll: 1 });
    expect(gridMatvecShape(768, 2048)).toEqual({ rows: 1, unroll: 4 });
  });
});
