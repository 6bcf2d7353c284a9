/**
 * A traced decode step's summaries computed in the step (app/kernels/step-summary.ts): the scan
 * steps' slots (selective_scan.wgsl step / step_dt, ssd_scan.wgsl step with TRACE_SUMMARY) and the
 * reduce into the step's summary row, against float64 CPU references (selectiveScanRef, ssdRef) on
 * random states and inputs of odd sizes, two layers of different kinds in one set of slots.
 */
import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { inProjZ, xProjBC } from '../../app/arch/mamba1/layout';
import { convXbc, mamba2InProjDt, mamba2Layout } from '../../app/arch/mamba2/layout';
import { packSelectiveScanWeights, selectiveScan } from '../../app/kernels/selective-scan';
import { selectiveScanRef } from '../../app/kernels/selective-scan.ref';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { packSsdWeights, ssdScan } from '../../app/kernels/ssd';
import { ssdRef } from '../../app/kernels/ssd.ref';
import { STEP_SUMMARY_ROW_BYTES, StepSummary, stepSummarySlotFloats, type StepSummaryLayer } from '../../app/kernels/step-summary';
import { uniformF32, useTestGpu } from '../support/gpu';

/** Δ is computed element-wise (softplus of a sum): ≤ 1e-5 relative, as the scan ops' own tests. */
const DELTA_TOL = 1e-5;
/** Gate terms, squares and the summary row: fp32 sums of ≤ a few hundred terms, the scans' bound 1e-4. */
const TOL = 1e-4;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

const R = 3;

/** float64 summaries of one layer from Δ [U], gate terms [U], squares [Q], with S entries of A per column. */
function summaryOf(delta: ArrayLike<number>, gate: ArrayLike<number>, squares: ArrayLike<number>, S: number, focus: ArrayLike<number>) {
  const U = delta.length;
  let d2 = 0;
  let g = 0;
  let f = 0;
  for (let u = 0; u < U; u++) {
    d2 += (delta[u] as number) ** 2;
    g += gate[u] as number;
    f += (focus[u] as number) * (delta[u] as number);
  }
  let s2 = 0;
  for (let i = 0; i < squares.length; i++) s2 += squares[i] as number;
  return [Math.sqrt(d2), g / (U * S), Math.sqrt(s2), f];
}

describe('traced decode step summaries (Dawn)', () => {
  // folded: x_proj folded into in_proj (step_xp), here one block's partial sums: x_proj's output
  // itself, each output's row rounded up to 4 (the rest NaN, never added).
  it.for([
    { dtProj: true, folded: false, Di: 37, N: 19, H: 6, P: 7, G: 3, N2: 9 },
    { dtProj: false, folded: false, Di: 50, N: 5, H: 5, P: 3, G: 1, N2: 17 },
    { dtProj: true, folded: true, Di: 45, N: 13, H: 4, P: 5, G: 2, N2: 6 },
  ])('Mamba-1 (Di=$Di N=$N, dt_proj fused: $dtProj, x_proj folded: $folded) and Mamba-2 (H=$H P=$P G=$G N=$N2) slots and rows equal float64', async ({ dtProj, folded, Di, N, H, P, G, N2 }, test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const s = seed + Di;
    const owned: GPUBuffer[] = [];
    const up = (label: string, data: Float32Array) => {
      const b = uploadF32(device, label, data);
      owned.push(b);
      return b;
    };
    const focusColumns = [1, 4];
    const maxU = Math.max(Di, H);
    const focus = new Float32Array(maxU);
    for (const c of focusColumns) focus[c] = 1 / focusColumns.length;
    const focusBuffer = up('Test.focus', focus);
    // Layer 0 Mamba-1, layer 1 Mamba-2.
    const layers: [StepSummaryLayer, StepSummaryLayer] = [
      { columns: Di, aStates: N, squares: Di },
      { columns: H, aStates: 1, squares: H * P },
    ];
    const summary = new StepSummary(ctx, layers, focusBuffer, 'Test.summary');
    try {
      // Poison the slots: every float the steps should write is checked.
      device.queue.writeBuffer(summary.slots, 0, new Float32Array(summary.slots.size / 4).fill(Number.NaN));

      // Mamba-1: Δ log-uniform in 1e-3..2 through dt_raw + bias; a random state.
      const dtBias = uniformF32(Di, s + 1, -1, 1);
      const target = uniformF32(Di, s + 2, Math.log(1e-3), Math.log(2)).map((l) => Math.log(Math.expm1(Math.exp(l))));
      const aLog = uniformF32(Di * N, s + 3, 0.3, 8).map(Math.log);
      const xProj = randomF32(R + 2 * N, s + 4, 1);
      const dtW = randomF32(Di * R, s + 5, 0.5);
      const dtRaw = new Float32Array(Di);
      for (let d = 0; d < Di; d++) {
        if (dtProj) {
          let v = 0;
          for (let r = 0; r < R; r++) v += (dtW[d * R + r] as number) * (xProj[r] as number);
          dtRaw[d] = v;
        } else dtRaw[d] = (target[d] as number) - (dtBias[d] as number);
      }
      const x = randomF32(Di, s + 6, 2);
      const d1 = randomF32(Di, s + 7, 1);
      const inProj = randomF32(2 * Di, s + 8, 3);
      const state1 = randomF32(Di * N, s + 9, 1);
      const ref1 = selectiveScanRef({ tokens: 1, dInner: Di, dState: N, x, dtRaw, dtBias, aLog, d: d1, bc: xProj, bOffset: R, cOffset: R + N, bcStride: R + 2 * N, z: inProj, zOffset: Di, zStride: 2 * Di, state: state1 });
      const weights1 = packSelectiveScanWeights(ctx, { aLog: up('Test.aLog', aLog), d: up('Test.d', d1), dtBias: up('Test.dtBias', dtBias) }, { dInner: Di, dState: N }, 'Test.w1');
      const xProjBuffer = folded ? up('Test.xProjPartials', Float32Array.from({ length: 4 * xProj.length }, (_, i) => (i % 4 === 0 ? (xProj[i / 4] as number) : Number.NaN))) : up('Test.xProj', xProj);
      const inProjBuffer = up('Test.inProj', inProj);
      const scan1 = selectiveScan(
        ctx,
        { tokens: 1, dInner: Di, dState: N },
        {
          x: up('Test.x', x),
          ...(dtProj ? { dtProj: { weight: up('Test.dtW', dtW), rank: R, format: 'f32' as const, ...(folded ? { xProjPartials: { rows: 1 } } : {}) } } : { dtRaw: up('Test.dtRaw', dtRaw) }),
          weights: weights1,
          bc: xProjBC(xProjBuffer, R, N),
          z: inProjZ(inProjBuffer, Di),
          y: up('Test.y1', new Float32Array(Di)),
          state: up('Test.state1', state1),
          stepSummary: summary.slot(0),
        },
        'Test.scan1',
      );

      // Mamba-2 with groups: Δ per head, a random state [H, P, N].
      const dims = { dInner: H * P, nGroups: G, dState: N2, nHeads: H };
      const l2 = mamba2Layout(dims);
      const dtBias2 = uniformF32(H, s + 11, -1, 1);
      const in2 = randomF32(l2.inProjWidth, s + 12, 3);
      const target2 = uniformF32(H, s + 13, Math.log(1e-3), Math.log(2)).map((l) => Math.log(Math.expm1(Math.exp(l))));
      for (let h = 0; h < H; h++) in2[l2.dtOffset + h] = (target2[h] as number) - (dtBias2[h] as number);
      const xbc = randomF32(l2.xbcWidth, s + 14, 1.5);
      const aLog2 = uniformF32(H, s + 15, 0.3, 8).map(Math.log);
      const d2 = uniformF32(H, s + 16, -1, 1.5);
      const state2 = randomF32(H * P * N2, s + 17, 1);
      const ref2 = ssdRef({ tokens: 1, nHeads: H, headDim: P, nGroups: G, dState: N2, xbc, xbcStride: l2.xbcWidth, xOffset: 0, bOffset: l2.bOffset, cOffset: l2.cOffset, dt: in2, dtOffset: l2.dtOffset, dtStride: l2.inProjWidth, dtBias: dtBias2, aLog: aLog2, d: d2, state: state2 });
      const weights2 = packSsdWeights(ctx, { aLog: up('Test.aLog2', aLog2), d: up('Test.d2', d2), dtBias: up('Test.dtBias2', dtBias2) }, H, 'Test.w2');
      const scan2 = ssdScan(
        ctx,
        { tokens: 1, nHeads: H, headDim: P, nGroups: G, dState: N2 },
        { xbc: convXbc(up('Test.xbc', xbc), dims), dt: mamba2InProjDt(up('Test.in2', in2), dims), weights: weights2, y: up('Test.y2', new Float32Array(H * P)), state: up('Test.state2', state2), stepSummary: summary.slot(1) },
        'Test.scan2',
      );
      await withErrorScopes(device, 'steps', () => submitDispatches(device, 'Test', [scan1, scan2, summary.reduce]));
      const slots = await readF32(device, summary.slots, summary.slots.size / 4);
      const row = await readF32(device, summary.staging, (2 * STEP_SUMMARY_ROW_BYTES) / 4);
      for (const b of [scan1, scan2, weights1, weights2]) b.destroy();

      // Mamba-1's slot: Δ, Σ_n (1 − exp(Δ·A)), Σ_n state² after the step.
      const o1 = summary.slot(0).offset / 4;
      const A1 = Float64Array.from(aLog, (v) => -Math.exp(v));
      const gate1 = Float64Array.from({ length: Di }, (_, d) => {
        let g = 0;
        for (let n = 0; n < N; n++) g += -Math.expm1((ref1.delta[d] as number) * (A1[d * N + n] as number));
        return g;
      });
      const sq1 = Float64Array.from({ length: Di }, (_, d) => {
        let q = 0;
        for (let n = 0; n < N; n++) q += (ref1.state[d * N + n] as number) ** 2;
        return q;
      });
      expect(slots.length).toBeGreaterThanOrEqual(o1 + stepSummarySlotFloats(layers[0]));
      expect(relativeError(slots.subarray(o1, o1 + Di), ref1.delta), 'Mamba-1 Δ').toBeLessThanOrEqual(DELTA_TOL);
      expect(relativeError(slots.subarray(o1 + Di, o1 + 2 * Di), gate1), 'Mamba-1 gate').toBeLessThanOrEqual(TOL);
      expect(relativeError(slots.subarray(o1 + 2 * Di, o1 + 3 * Di), sq1), 'Mamba-1 state²').toBeLessThanOrEqual(TOL);

      // Mamba-2's slot: Δ per head, 1 − exp(Δ·A) per head, Σ_n state² per row (h, p).
      const o2 = summary.slot(1).offset / 4;
      expect(o2 % (device.limits.minStorageBufferOffsetAlignment / 4)).toBe(0);
      const gate2 = Float64Array.from({ length: H }, (_, h) => -Math.expm1(-(ref2.delta[h] as number) * Math.exp(aLog2[h] as number)));
      const sq2 = Float64Array.from({ length: H * P }, (_, r) => {
        let q = 0;
        for (let n = 0; n < N2; n++) q += (ref2.state[r * N2 + n] as number) ** 2;
        return q;
      });
      expect(relativeError(slots.subarray(o2, o2 + H), ref2.delta), 'Mamba-2 Δ').toBeLessThanOrEqual(DELTA_TOL);
      expect(relativeError(slots.subarray(o2 + H, o2 + 2 * H), gate2), 'Mamba-2 gate').toBeLessThanOrEqual(TOL);
      expect(relativeError(slots.subarray(o2 + 2 * H, o2 + 2 * H + H * P), sq2), 'Mamba-2 state²').toBeLessThanOrEqual(TOL);

      // The rows: (‖Δ‖, mean gate, ‖state‖, focus) per layer, from the float64 terms.
      const want = [...summaryOf(ref1.delta, gate1, sq1, N, focus), ...summaryOf(ref2.delta, gate2, sq2, 1, focus)];
      expect(relativeError(row, want), `rows ${[...row]} vs ${want}`).toBeLessThanOrEqual(TOL);
      for (let k = 0; k < 8; k++) expect(Math.abs((row[k] as number) - (want[k] as number)), `row value ${k}`).toBeLessThanOrEqual(TOL * Math.abs(want[k] as number) + 1e-7);
    } finally {
      summary.destroy();
      for (const b of owned) b.destroy();
    }
  });

  it('refuses a slot that is misaligned or too small, and a step summary outside a one-token step, naming the problem', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const Di = 8;
    const N = 4;
    const b = (label: string, floats: number) => storageBuffer(device, label, floats * 4);
    const buffers = { x: b('x', 2 * Di), dtRaw: b('dt', 2 * Di), bc: b('bc', 2 * (R + 2 * N)), z: b('z', 4 * Di), y: b('y', 2 * Di), state: b('state', Di * N), slots: b('slots', 1024) };
    const weights = packSelectiveScanWeights(ctx, { aLog: b('a', Di * N), d: b('d', Di), dtBias: b('bias', Di) }, { dInner: Di, dState: N }, 'Test.w');
    const make = (tokens: number, offset: number, slots = buffers.slots) =>
      selectiveScan(ctx!, { tokens, dInner: Di, dState: N }, { x: buffers.x, dtRaw: buffers.dtRaw, weights, bc: xProjBC(buffers.bc, R, N), z: inProjZ(buffers.z, Di), y: buffers.y, state: buffers.state, stepSummary: { buffer: slots, offset } });
    try {
      expect(() => make(2, 0)).toThrow(/SelectiveScan: a summary slot is for a decode step \(tokens = 1\), got 2/);
      expect(() => make(1, 4)).toThrow(/summary slot's offset 4 in slots is not a multiple of/);
      expect(() => make(1, 0, b('tiny', 3 * Di - 1))).toThrow(/summary slot \(tiny\) holds 92 bytes, needs 96/);
      make(1, 0).destroy();
    } finally {
      weights.destroy();
      for (const buffer of Object.values(buffers)) buffer.destroy();
    }
  });
});
