import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { residualRmsNorm } from '../../app/kernels/residual-rmsnorm';
import { residualRmsNormRef } from '../../app/kernels/residual-rmsnorm.ref';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { eachSubgroupReduction, useTestGpu } from '../support/gpu';

/** fp32 norms: relative error ≤ 1e-4 (issue 5's tolerance for norms and scans). */
const TOLERANCE = 1e-4;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

async function runCase(ctx: GpuContext, rows: number, cols: number, hasResidual: boolean, caseSeed: number, scales: { hidden?: number; out?: number } = {}) {
  const { device } = ctx;
  const eps = 1e-5;
  const hidden = randomF32(rows * cols, caseSeed, 3);
  const residualIn = randomF32(rows * cols, caseSeed + 1, 3);
  const weight = randomF32(cols, caseSeed + 2, 2);
  const buffers = {
    hidden: uploadF32(device, 'Test.hidden', hidden),
    residual: uploadF32(device, 'Test.residual', residualIn),
    weight: uploadF32(device, 'Test.weight', weight),
    output: uploadF32(device, 'Test.output', new Float32Array(rows * cols).fill(Number.NaN)), // poisoned
  };
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = residualRmsNorm(ctx, { rows, cols, eps, hasResidual, ...(scales.hidden !== undefined ? { hiddenScale: scales.hidden } : {}), ...(scales.out !== undefined ? { outScale: scales.out } : {}) }, buffers, 'Test.rmsnorm');
    submitDispatches(device, 'Test', [d]);
    return d;
  });
  const output = await readF32(device, buffers.output, rows * cols);
  const residual = await readF32(device, buffers.residual, rows * cols);
  dispatch.destroy();
  for (const b of Object.values(buffers)) b.destroy();
  const ref = residualRmsNormRef(hidden, hasResidual ? residualIn : null, weight, rows, cols, eps, scales);
  return { output, residual, ref };
}

describe('residual_rmsnorm.wgsl against its CPU reference (Dawn)', () => {
  // Odd sizes: rows and cols not multiples of the 256-wide workgroup; cols both below and above it.
  const shapes: [number, number][] = [
    [1, 1],
    [3, 13],
    [37, 301],
    [5, 769],
    [11, 2051],
  ];
  for (const [rows, cols] of shapes) {
    for (const hasResidual of [true, false]) {
      it(`rows=${rows} cols=${cols} residual=${hasResidual}, with 256 and 16 threads a row, the sums by subgroups and by the tree`, async (test) => {
        if (!ctx) return test.skip(skipReason);
        const c0 = ctx;
        try {
          // The GPU's workgroup and the software adapter's (rowWorkgroupSize), whichever this adapter is.
          for (const threads of [256, 16]) {
            await eachSubgroupReduction(c0, async (sg) => {
              c0.tuning = { rowWorkgroup: threads };
              const { output, residual, ref } = await runCase(c0, rows, cols, hasResidual, seed + rows * 7919 + cols + threads);
              expect(output.every(Number.isFinite), `every output element written (${threads} threads, subgroups ${sg})`).toBe(true);
              expect(relativeError(output, ref.output), `output (${threads} threads, subgroups ${sg})`).toBeLessThanOrEqual(TOLERANCE);
              expect(relativeError(residual, ref.residual), `residual (${threads} threads, subgroups ${sg})`).toBeLessThanOrEqual(TOLERANCE);
            });
          }
        } finally {
          c0.tuning = undefined;
        }
      });
    }
  }

  it('scales hidden before the add and the output (multipliers), with and without a residual', async (test) => {
    if (!ctx) return test.skip(skipReason);
    for (const hasResidual of [true, false]) {
      const scales = { hidden: 0.37 + (seed % 7) * 0.1, out: 1 / 2.5 };
      const { output, residual, ref } = await runCase(ctx, 7, 83, hasResidual, seed + 91, scales);
      expect(relativeError(output, ref.output)).toBeLessThanOrEqual(TOLERANCE);
      expect(relativeError(residual, ref.residual)).toBeLessThanOrEqual(TOLERANCE);
      // The scales matter: the unscaled reference is far off.
      const plain = await runCase(ctx, 7, 83, hasResidual, seed + 91);
      expect(relativeError(output, plain.ref.output)).toBeGreaterThan(0.05);
    }
  });

  it('reuses one pipeline for every shape (shapes travel in uniforms)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    await runCase(ctx, 2, 5, true, seed);
    const before = ctx.pipelines.size;
    await runCase(ctx, 9, 333, false, seed + 1);
    expect(ctx.pipelines.size).toBe(before);
  });

  it('rejects buffers too small for the shape, naming the buffer', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const device = ctx.device;
    const small = storageBuffer(device, 'Test.small', 16);
    const ok = storageBuffer(device, 'Test.ok', 4 * 100);
    expect(() =>
      residualRmsNorm(ctx!, { rows: 10, cols: 10, eps: 1e-5, hasResidual: true }, { hidden: small, residual: ok, weight: ok, output: ok }),
    ).toThrow(/hidden \(Test\.small\) holds 16 bytes, needs 400/);
    small.destroy();
    ok.destroy();
  });
});
