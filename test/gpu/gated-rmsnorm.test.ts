import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { gatedRmsNorm } from '../../app/kernels/gated-rmsnorm';
import { gatedRmsNormRef } from '../../app/kernels/gated-rmsnorm.ref';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { mamba2InProjZ, mamba2Layout } from '../../app/arch/mamba2/layout';
import { eachSubgroupReduction, useTestGpu } from '../support/gpu';

/** fp32 norms: relative error ≤ 1e-4. */
const TOLERANCE = 1e-4;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

/** Runs the op with z inside a Mamba-2 in_proj output [T, 2·Di + 2·G·N + H]. */
async function runCase(ctx: GpuContext, rows: number, H: number, P: number, G: number, N: number, groupSize: number, caseSeed: number) {
  const { device } = ctx;
  const eps = 1e-5;
  const cols = H * P;
  const dims = { dInner: cols, nGroups: G, dState: N, nHeads: H };
  const width = mamba2Layout(dims).inProjWidth;
  const y = randomF32(rows * cols, caseSeed, 2);
  const inProj = randomF32(rows * width, caseSeed + 1, 3);
  const weight = randomF32(cols, caseSeed + 2, 1.5);
  const buffers = {
    y: uploadF32(device, 'Test.y', y),
    inProj: uploadF32(device, 'Test.inProj', inProj),
    weight: uploadF32(device, 'Test.weight', weight),
    output: uploadF32(device, 'Test.output', new Float32Array(rows * cols).fill(Number.NaN)), // poisoned
  };
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = gatedRmsNorm(
      ctx,
      { rows, cols, groupSize, eps },
      { y: buffers.y, z: mamba2InProjZ(buffers.inProj, dims), weight: buffers.weight, output: buffers.output },
      'Test.gatedNorm',
    );
    submitDispatches(device, 'Test', [d]);
    return d;
  });
  const output = await readF32(device, buffers.output, rows * cols);
  dispatch.destroy();
  for (const b of Object.values(buffers)) b.destroy();
  const ref = gatedRmsNormRef(y, inProj, 0, width, weight, rows, cols, groupSize, eps);
  return { output, ref };
}

describe('gated_rmsnorm.wgsl against its CPU reference (Dawn)', () => {
  // [T, H, P, G, N]: Di = H·P below and above the 256-wide workgroup, not multiples of it.
  const shapes: [number, number, number, number, number][] = [
    [1, 3, 5, 1, 4],
    [7, 4, 5, 2, 16],
    [70, 4, 16, 2, 4],
    [5, 3, 131, 3, 8],
  ];
  for (const [T, H, P, G, N] of shapes) {
    const Di = H * P;
    for (const groupSize of new Set([Di, Di / G])) {
      it(`T=${T} Di=${Di} (H=${H}, P=${P}) groupSize=${groupSize}`, async (test) => {
        if (!ctx) return test.skip(skipReason);
        const c0 = ctx;
        try {
          // The GPU's workgroup and the software adapter's (rowWorkgroupSize), whichever this adapter is.
          for (const threads of [256, 16]) {
            // The sums by subgroups (where this adapter has them) and by the barrier tree.
            await eachSubgroupReduction(c0, async (sg) => {
              c0.tuning = { rowWorkgroup: threads };
              const { output, ref } = await runCase(c0, T, H, P, G, N, groupSize, seed + T * 7919 + Di * 31 + groupSize + threads);
              expect(output.every(Number.isFinite), `every output element written (${threads} threads, subgroups ${sg})`).toBe(true);
              expect(relativeError(output, ref), `${threads} threads, subgroups ${sg}`).toBeLessThanOrEqual(TOLERANCE);
            });
          }
        } finally {
          c0.tuning = undefined;
        }
      });
    }
  }

  it('per-group and whole-row norms differ (the group size is honoured)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const whole = await runCase(ctx, 3, 4, 16, 2, 4, 64, seed + 1);
    const perGroup = await runCase(ctx, 3, 4, 16, 2, 4, 32, seed + 1);
    expect(relativeError(perGroup.output, whole.ref)).toBeGreaterThan(1e-3);
    expect(relativeError(perGroup.output, perGroup.ref)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('reuses one pipeline for every shape (shapes travel in uniforms)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    await runCase(ctx, 2, 3, 5, 1, 4, 15, seed);
    const before = ctx.pipelines.size;
    await runCase(ctx, 9, 4, 16, 2, 16, 32, seed + 1);
    expect(ctx.pipelines.size).toBe(before);
  });

  it('rejects bad shapes and buffers too small, naming the buffer', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const small = storageBuffer(device, 'Test.small', 16);
    const ok = storageBuffer(device, 'Test.ok', 4 * 1000);
    const out = storageBuffer(device, 'Test.out', 4 * 100);
    const shape = { rows: 10, cols: 10, groupSize: 5, eps: 1e-5 };
    const base = { y: ok, z: { buffer: ok, offset: 0, rowStride: 30 }, weight: ok, output: out };
    expect(() => gatedRmsNorm(ctx!, shape, { ...base, y: small })).toThrow(/y \(Test\.small\) holds 16 bytes, needs 400/);
    expect(() => gatedRmsNorm(ctx!, shape, { ...base, z: { buffer: small, offset: 0, rowStride: 30 } })).toThrow(/z \(Test\.small\) holds 16 bytes, needs 1120/);
    expect(() => gatedRmsNorm(ctx!, { ...shape, groupSize: 4 }, base)).toThrow(/groupSize=4 must divide cols=10/);
    expect(() => gatedRmsNorm(ctx!, shape, { ...base, output: ok })).toThrow(/output and y are the same buffer/);
    for (const b of [small, ok, out]) b.destroy();
  });
});
