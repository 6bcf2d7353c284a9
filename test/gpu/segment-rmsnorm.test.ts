/**
 * segment_rmsnorm.wgsl (Falcon-Mamba's weightless RMS norm of dt_r, B and C inside x_proj's rows)
 * against its float64 CPU reference, on fresh random inputs of odd sizes: segments shorter and
 * longer than the 64-wide workgroup, rows with columns outside every segment (which must stay
 * bit-identical), values small enough that eps matters.
 */
import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { segmentRmsNorm } from '../../app/kernels/segment-rmsnorm';
import { segmentRmsNormRef } from '../../app/kernels/segment-rmsnorm.ref';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { eachSubgroupReduction, useTestGpu } from '../support/gpu';

/** fp32 norm of short rows against float64: relative error ≤ 1e-5 (tighter than the 1e-4 of the other norms). */
const TOLERANCE = 1e-5;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

async function runCase(ctx: GpuContext, rows: number, rowStride: number, bounds: number[], eps: number, scale: number, caseSeed: number) {
  const { device } = ctx;
  const input = randomF32(rows * rowStride, caseSeed, scale);
  const x = uploadF32(device, 'Test.x', input);
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = segmentRmsNorm(ctx, { rows, rowStride, bounds, eps }, { x }, 'Test.segmentRmsNorm');
    submitDispatches(device, 'Test', [d]);
    return d;
  });
  const output = await readF32(device, x, rows * rowStride);
  dispatch.destroy();
  x.destroy();
  return { input, output, ref: segmentRmsNormRef(input, rows, rowStride, bounds, eps) };
}

describe('segment_rmsnorm.wgsl against its CPU reference (Dawn)', () => {
  // [rows, rowStride, bounds, eps, value scale]
  const cases: [number, number, number[], number, number][] = [
    [1, 1, [0, 1], 1e-6, 1], // one column: the result is ±1/sqrt(1 + eps/x²)
    [7, 35, [0, 3, 19, 35], 1e-6, 1], // dt_rank 3, d_state 16 (the tiny golden)
    [13, 29, [0, 5, 17, 29], 0.02, 0.3], // dt_rank 5, d_state 12, an eps that matters
    [97, 41, [2, 7, 19, 31], 1e-5, 2], // columns outside the segments on both sides
    [5, 288, [0, 256, 272, 288], 1e-6, 1], // falcon-mamba-7b: dt_rank 256 (> the workgroup), d_state 16
    [3, 211, [10, 150], 1e-6, 1e-3], // one segment of 140, values so small that eps matters
    [11, 67, [0, 33, 66], 0.05, 0.5], // two segments, the last column untouched
  ];
  for (const [rows, rowStride, bounds, eps, scale] of cases) {
    it(`rows=${rows} stride=${rowStride} bounds=[${bounds.join(', ')}] eps=${eps}`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      // The sums by subgroups (where this adapter has them) and by the barrier tree.
      await eachSubgroupReduction(ctx, async (sg) => {
        const { input, output, ref } = await runCase(ctx!, rows, rowStride, bounds, eps, scale, seed + rows * 7919 + rowStride);
        expect(output.every(Number.isFinite), 'every element finite').toBe(true);
        expect(relativeError(output, ref), `seed ${seed}, subgroups ${sg}`).toBeLessThanOrEqual(TOLERANCE);
        const first = bounds[0] as number;
        const last = bounds[bounds.length - 1] as number;
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < rowStride; c++) {
            if (c < first || c >= last) expect(output[r * rowStride + c], `row ${r} column ${c} is outside every segment`).toBe(input[r * rowStride + c]);
          }
        }
      });
    });
  }

  it('reuses one pipeline for every shape (shapes travel in uniforms)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    await runCase(ctx, 2, 9, [0, 4, 9], 1e-6, 1, seed);
    const before = ctx.pipelines.size;
    await runCase(ctx, 9, 40, [1, 3, 20, 38], 1e-5, 1, seed + 1);
    expect(ctx.pipelines.size).toBe(before);
  });

  it('rejects bad shapes and buffers too small, naming them', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const small = storageBuffer(ctx.device, 'Test.small', 16);
    expect(() => segmentRmsNorm(ctx!, { rows: 2, rowStride: 10, bounds: [0, 10], eps: 1e-6 }, { x: small })).toThrow(/x \(Test\.small\) holds 16 bytes, needs 80/);
    expect(() => segmentRmsNorm(ctx!, { rows: 1, rowStride: 4, bounds: [0, 2, 2], eps: 1e-6 }, { x: small })).toThrow(/bounds\[2\] must be an integer in 3\.\.4/);
    expect(() => segmentRmsNorm(ctx!, { rows: 1, rowStride: 4, bounds: [0, 5], eps: 1e-6 }, { x: small })).toThrow(/bounds\[1\]/);
    expect(() => segmentRmsNorm(ctx!, { rows: 1, rowStride: 4, bounds: [0, 1, 2, 3, 4], eps: 1e-6 }, { x: small })).toThrow(/2 to 4 entries/);
    expect(() => segmentRmsNorm(ctx!, { rows: 1, rowStride: 4, bounds: [0, 4], eps: 0 }, { x: small })).toThrow(/eps must be positive/);
    small.destroy();
  });
});
