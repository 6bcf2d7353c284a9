/**
 * The co-residency probe behind the grid decode (app/gpu/grid-sync.ts) on a real adapter: it
 * returns, without hanging, a count between 1 and the workgroups it dispatched, even where
 * workgroups do not run side by side (SwiftShader runs a few at a time and switches only at
 * barriers: the first one's wait for the rest is bounded); a software adapter is not asked.
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../app/gpu/context';
import { GRID_DECODE_MAX, probeCoresidentWorkgroups, probeGridWorkgroups } from '../../app/gpu/grid-sync';
import { useTestGpu } from '../support/gpu';

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

describe('co-residency probe', () => {
  it('returns a count in 1..1024 and leaves no error; software adapters get no grid decode', async (test) => {
    if (!ctx) return test.skip(skipReason);
    ctx.device.pushErrorScope('validation');
    const found = await probeCoresidentWorkgroups(ctx.device);
    expect(await ctx.device.popErrorScope()).toBeNull();
    expect(Number.isInteger(found)).toBe(true);
    expect(found).toBeGreaterThanOrEqual(1);
    expect(found).toBeLessThanOrEqual(1024);
    console.info(`[grid] ${ctx.adapter.description || ctx.adapter.vendor}: ${found} workgroups of 256 ran at once`);
    expect(await probeGridWorkgroups(ctx.device, true)).toBeNull();
    const grid = await probeGridWorkgroups(ctx.device, ctx.adapter.software);
    if (ctx.adapter.software) expect(grid).toBeNull();
    // A GPU: a second probe may count differently; whatever it finds maps to null or a power of two in 16..GRID_DECODE_MAX.
    else if (grid !== null) expect([16, 32, 64, 128, GRID_DECODE_MAX]).toContain(grid);
  });
});
