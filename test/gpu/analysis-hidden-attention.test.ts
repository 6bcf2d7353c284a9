/**
 * app/analysis/hidden-attention.ts on kept traces made up here (no model): per-channel Δ
 * (deltaUnit 'channel') equals the float64 reference (kernels/hidden-attention.ref.ts); per-head Δ
 * (deltaUnit 'head', two B/C groups) equals α[i, j] = (C_i·B_j)·exp(A_h·(S_i − S_j))·Δ_j[h]
 * computed here per head, and the mean over heads; full matrices and rows; clear errors for a
 * layer, unit or row the trace does not have. The layout follows deltaUnit alone.
 */
import { describe, expect, it } from 'vitest';
import { hiddenAttention } from '../../app/analysis/hidden-attention';
import type { StoredTrace } from '../../app/analysis/types';
import type { GpuContext } from '../../app/gpu/context';
import { hiddenAttentionRef } from '../../app/kernels/hidden-attention.ref';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { uniformF32, useTestGpu } from '../support/gpu';

/** fp32 sums of exponentials over channels and states (as in hidden-attention.test.ts). */
const TOL = 1e-4;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

/** A kept trace of layer 3 only: Δ [T, W] ≥ 0, B and C [T, G·N], A_log [W, aStates]. */
function keptTrace(T: number, W: number, G: number, N: number, unit: 'channel' | 'head', s: number): StoredTrace {
  const aStates = unit === 'channel' ? N : 1;
  const delta = randomF32(T * W, s, 3).map((x) => Math.log1p(Math.exp(x)));
  const aLog = uniformF32(W * aStates, s + 3, 0.3, 8).map(Math.log);
  const f = (n: number) => new Float32Array(n);
  return {
    result: {
      traceId: 'trace-x',
      modelId: 'made-up',
      architecture: unit === 'channel' ? 'mamba' : 'mamba2',
      ids: Array.from({ length: T }, (_, t) => t),
      tokens: Array.from({ length: T }, (_, t) => String(t)),
      layers: [3],
      deltaWidth: W,
      deltaUnit: unit,
      delta: [delta],
      deltaNorm: [f(T)],
      writeGate: [f(T)],
      dState: N,
      nGroups: G,
      B: [randomF32(T * G * N, s + 1)],
      C: [randomF32(T * G * N, s + 2)],
      A: [aLog.map((v) => -Math.exp(v))],
      aStates,
      stateNorm: [f(T)],
      topNext: { k: 0, ids: new Int32Array(0), probs: f(0) },
    },
    aLogs: new Map([[3, aLog]]),
  };
}

describe('hidden attention of a kept trace', () => {
  it('per-channel Δ: the full matrix and rows equal the float64 reference, for one channel and the mean', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [T, W, N] = [11, 5, 3];
    const trace = keptTrace(T, W, 1, N, 'channel', seed);
    const r = trace.result;
    for (const unit of ['mean', 2] as const) {
      const ref = hiddenAttentionRef(r.delta[0]!, r.B[0]!, r.C[0]!, trace.aLogs.get(3)!, T, W, N, unit);
      const full = await hiddenAttention(ctx, trace, { layer: 3, unit });
      expect(full).toMatchObject({ layer: 3, unit, tokens: T });
      expect(full.row).toBeUndefined();
      expect(relativeError(full.alpha, ref), `α ${unit}`).toBeLessThanOrEqual(TOL);
      const row = await hiddenAttention(ctx, trace, { layer: 3, unit, row: 7 });
      expect(row.row).toBe(7);
      expect(relativeError(row.alpha, ref.subarray(7 * T, 8 * T)), `α row 7 ${unit}`).toBeLessThanOrEqual(TOL);
    }
  });

  it('per-head Δ: each head reads its group’s B and C; the mean over heads; rows', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [T, H, G, N] = [9, 4, 2, 3];
    const trace = keptTrace(T, H, G, N, 'head', seed + 10);
    const r = trace.result;
    const delta = r.delta[0]!;
    const B = r.B[0]!;
    const C = r.C[0]!;
    const A = Array.from(trace.aLogs.get(3)!, (v) => -Math.exp(v));
    const alphaOf = (h: number) => {
      const g = Math.floor((h * G) / H);
      const out = new Float64Array(T * T);
      for (let i = 0; i < T; i++) {
        for (let j = 0; j <= i; j++) {
          let cb = 0;
          for (let n = 0; n < N; n++) cb += C[i * G * N + g * N + n]! * B[j * G * N + g * N + n]!;
          let s = 0; // S_i − S_j = Σ_{j < t ≤ i} Δ_t[h]
          for (let t = j + 1; t <= i; t++) s += delta[t * H + h]!;
          out[i * T + j] = cb * Math.exp(A[h]! * s) * delta[j * H + h]!;
        }
      }
      return out;
    };
    for (const head of [0, 3]) {
      const one = await hiddenAttention(ctx, trace, { layer: 3, unit: head });
      expect(relativeError(one.alpha, alphaOf(head)), `α head ${head}`).toBeLessThanOrEqual(TOL);
    }
    const mean = new Float64Array(T * T);
    for (let h = 0; h < H; h++) alphaOf(h).forEach((v, i) => (mean[i] = mean[i]! + v / H));
    const all = await hiddenAttention(ctx, trace, { layer: 3, unit: 'mean' });
    expect(relativeError(all.alpha, mean), 'α mean over heads').toBeLessThanOrEqual(TOL);
    const row = await hiddenAttention(ctx, trace, { layer: 3, unit: 'mean', row: T - 1 });
    expect(relativeError(row.alpha, mean.subarray((T - 1) * T)), 'α last row').toBeLessThanOrEqual(TOL);
    const headRow = await hiddenAttention(ctx, trace, { layer: 3, unit: 2, row: 4 });
    expect(relativeError(headRow.alpha, alphaOf(2).subarray(4 * T, 5 * T)), 'α head 2 row 4').toBeLessThanOrEqual(TOL);
  });

  it('says which layer, unit or row the trace does not have', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const trace = keptTrace(6, 4, 2, 2, 'head', seed + 20);
    await expect(hiddenAttention(ctx, trace, { layer: 0, unit: 'mean' })).rejects.toThrow('Layer 0 is not in trace trace-x (traced: 3).');
    await expect(hiddenAttention(ctx, trace, { layer: 3, unit: 4 })).rejects.toThrow('There is no head 4 (the layer has 4).');
    await expect(hiddenAttention(ctx, trace, { layer: 3, unit: 1.5 })).rejects.toThrow('There is no head 1.5');
    await expect(hiddenAttention(ctx, trace, { layer: 3, unit: 'mean', row: 6 })).rejects.toThrow('There is no token 6 (the trace has 6).');
  });
});
