/**
 * top_k.wgsl against the CPU reference (app/analysis/distributions.ts topTokens, float64) on fresh
 * random logits of odd sizes: the ids are the reference's (ties: the lower index first — tested
 * with deliberately tied logits) and the probabilities equal softmax within float32 rounding of a
 * sum over the vocabulary; outputs poisoned before each run.
 */
import { describe, expect, it } from 'vitest';
import { readBuffer, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { topK, unpackTopK } from '../../app/kernels/top-k';
import { topTokens } from '../../app/analysis/distributions';
import { useTestGpu } from '../support/gpu';

/** Probabilities: float32 exps summed over up to 50k logits in a different order than float64. */
const TOL = 1e-5;
let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

async function runCase(ctx: GpuContext, logits: Float32Array, rows: number, vocab: number, k: number) {
  const { device } = ctx;
  const buffers = {
    logits: uploadF32(device, 'Test.logits', logits),
    out: uploadF32(device, 'Test.out', new Float32Array(rows * 2 * k).fill(Number.NaN)), // poisoned
  };
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = topK(ctx, { rows, vocab, k }, buffers, 'Test.topK');
    submitDispatches(device, 'Test', [d]);
    return d;
  });
  const words = new Uint32Array(await readBuffer(device, buffers.out, rows * 2 * k * 4));
  dispatch.destroy();
  for (const b of Object.values(buffers)) b.destroy();
  const got = unpackTopK(words, rows, k);
  const ref = { ids: new Int32Array(rows * k), probs: new Float32Array(rows * k) };
  for (let r = 0; r < rows; r++) topTokens(logits.subarray(r * vocab, (r + 1) * vocab), k, ref.ids, ref.probs, r * k);
  return { got, ref };
}

describe('top_k.wgsl against the CPU reference (Dawn)', () => {
  for (const [rows, vocab, k] of [
    [1, 1, 1],
    [3, 7, 5],
    [5, 129, 5],
    [2, 50280, 5],
    [9, 1001, 8],
  ] as const) {
    it(`R=${rows} V=${vocab} K=${k}, with 128 and 16 threads a row`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const c0 = ctx;
      try {
        // The GPU's workgroup and the software adapter's (rowWorkgroupSize), whichever this adapter is.
        for (const threads of [128, 16]) {
          c0.tuning = { rowWorkgroup: threads };
          const logits = randomF32(rows * vocab, seed + rows * 7 + vocab + threads, 8);
          const { got, ref } = await runCase(c0, logits, rows, vocab, k);
          expect([...got.ids], `${threads} threads`).toEqual([...ref.ids]);
          expect(relativeError(got.probs, ref.probs), `${threads} threads`).toBeLessThanOrEqual(TOL);
        }
      } finally {
        c0.tuning = undefined;
      }
    });
  }

  it('ranks tied logits by index, lower first, as the reference does', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const vocab = 300;
    const logits = randomF32(2 * vocab, seed + 1, 1);
    // Row 0: six equal maxima spread over the threads' strides; row 1: all equal.
    for (const v of [290, 3, 131, 2, 200, 130]) logits[v] = 5;
    logits.fill(0.25, vocab, 2 * vocab);
    const { got, ref } = await runCase(ctx, logits, 2, vocab, 5);
    expect([...got.ids.subarray(0, 5)]).toEqual([2, 3, 130, 131, 200]);
    expect([...got.ids.subarray(5)]).toEqual([0, 1, 2, 3, 4]);
    expect([...got.ids]).toEqual([...ref.ids]);
    expect(relativeError(got.probs, ref.probs)).toBeLessThanOrEqual(TOL);
  });

  it('refuses a K the shader cannot hold or the vocabulary cannot give', (test) => {
    if (!ctx) return test.skip(skipReason);
    const dummy = storageBuffer(ctx.device, 'Test.dummy', 4096);
    const out = storageBuffer(ctx.device, 'Test.out', 4096);
    expect(() => topK(ctx!, { rows: 1, vocab: 100, k: 9 }, { logits: dummy, out })).toThrow('TopK: k must be an integer in 1..8, got 9');
    expect(() => topK(ctx!, { rows: 1, vocab: 3, k: 4 }, { logits: dummy, out })).toThrow('TopK: k must be an integer in 1..3, got 4');
    expect(() => topK(ctx!, { rows: 1, vocab: 3, k: 2 }, { logits: dummy, out: dummy })).toThrow(/TopK: out and logits are the same buffer/);
    dummy.destroy();
    out.destroy();
  });
});
