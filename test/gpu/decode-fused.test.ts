/**
 * The fused decode kernels against their float64 CPU references, on fresh random inputs of odd
 * sizes, outputs poisoned (NaN) before each run:
 *  - norm-matvec (shaders/norm_matvec.wgsl): none / RMSNorm / gated group RMSNorm / RMSNorm
 *    presummed (x = u·g given, Σu² in random pieces; checked against the reference's RMSNorm of u)
 *    before a matrix-vector product, the causal conv step + SiLU after it on a channel range, accumulate,
 *    with fp32 and packed-f16 weights (the reference uses the weights rounded to f16 first, so the
 *    tolerance stays the fp32 one);
 *  - selective-scan's step_dt (dt_proj fused into the decode step), fp32 and f16 dt_proj;
 *  - x_proj folded into in_proj (its partial sums a block of rows each) and added by step_xp, with
 *    and without Falcon-Mamba's norm of dt_r, B, C, against in_proj → conv → x_proj → (norm) →
 *    dt_proj → scan step in float64.
 * Tolerance: relative error ≤ 1e-4, as for every fp32 norm, matmul and scan (issue 5).
 */
import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { roundToF16, uploadF16, type WeightFormat } from '../../app/kernels/f16';
import { normMatvec, packConvWeights, xProjPartialLayout, type NormMatvecNorm, type NormMatvecShape } from '../../app/kernels/norm-matvec';
import { segmentRmsNormRef } from '../../app/kernels/segment-rmsnorm.ref';
import { normMatvecRef } from '../../app/kernels/norm-matvec.ref';
import { packSelectiveScanWeights, selectiveScan } from '../../app/kernels/selective-scan';
import { selectiveScanRef } from '../../app/kernels/selective-scan.ref';
import { relativeError } from '../../app/kernels/self-test';
import { eachSubgroupReduction, uniformF32, useTestGpu } from '../support/gpu';

const TOLERANCE = 1e-4;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

function uploadWeight(device: GPUDevice, label: string, values: Float32Array, format: WeightFormat): { buffer: GPUBuffer; seen: Float32Array } {
  if (format === 'bf16') {
    // bf16: the top half of each float (truncated), two to a word, element e in bits 16·(e mod 2).
    const bits = new Uint32Array(Float32Array.from(values).buffer);
    const top = new Uint16Array(values.length + (values.length % 2));
    for (let e = 0; e < values.length; e++) top[e] = (bits[e] as number) >>> 16;
    const buffer = storageBuffer(device, label, top.byteLength);
    device.queue.writeBuffer(buffer, 0, top);
    return { buffer, seen: new Float32Array(bits.map((b) => b & 0xffff0000).buffer) };
  }
  return format === 'f16' ? { buffer: uploadF16(device, label, values), seen: roundToF16(values) } : { buffer: uploadF32(device, label, values), seen: values };
}

interface NormCase {
  I: number;
  O: number;
  norm: NormMatvecNorm;
  groups?: number;
  conv?: { start: number; channels: number; kernelSize: number; bias: boolean };
  accumulate?: boolean;
  format: WeightFormat;
  /** Element offset of x in its buffer (default 3; a multiple of 4 with no norm or one RMSNorm: x read in place). */
  xOffset?: number;
  /** 'rms-presummed': Σ u² in this many pieces (random shares of it). */
  pieces?: number;
}

async function runNormCase(ctx: GpuContext, c: NormCase, s: number): Promise<void> {
  const { device } = ctx;
  const { I, O } = c;
  const xOffset = c.xOffset ?? 3;
  const zOffset = 5;
  const x = uniformF32(xOffset + I, s, -2, 2);
  const presummed = c.norm === 'rms-presummed';
  const z = uniformF32(zOffset + I, s + 1, -3, 3);
  const g = uniformF32(I, s + 2, 0.5, 1.5);
  const wValues = uniformF32(O * I, s + 3, -1 / Math.sqrt(I), 1 / Math.sqrt(I));
  const w = uploadWeight(device, 'Test.weight', wValues, c.format);
  const yInit = c.accumulate ? uniformF32(O, s + 4, -1, 1) : new Float32Array(O).fill(Number.NaN);
  const conv = c.conv;
  const C = conv?.channels ?? 0;
  const K = conv?.kernelSize ?? 0;
  const convW = uniformF32(C * K, s + 5, -0.7, 0.7);
  const convB = conv?.bias ? uniformF32(C, s + 6, -0.3, 0.3) : null;
  const state = uniformF32(C * Math.max(K - 1, 0), s + 7, -1, 1);
  // Presummed: the kernel gets u·g (u = x at its offset) and Σ u² cut into random positive shares.
  const pieces = c.pieces ?? 1;
  const xGiven = presummed ? Float32Array.from(x, (v, i) => (i < xOffset ? v : v * (g[i - xOffset] as number))) : x;
  const shares = uniformF32(pieces, s + 8, 0.1, 1);
  let sumSq = 0;
  for (let i = 0; i < I; i++) sumSq += (x[xOffset + i] as number) ** 2;
  const shareTotal = shares.reduce((a, b) => a + b, 0);
  const sums = Float32Array.from(shares, (v) => (v / shareTotal) * sumSq);
  const buffers = {
    x: uploadF32(device, 'Test.x', xGiven),
    sums: uploadF32(device, 'Test.sums', sums),
    z: uploadF32(device, 'Test.z', z),
    g: uploadF32(device, 'Test.g', g),
    y: uploadF32(device, 'Test.y', yInit),
    convW: conv ? uploadF32(device, 'Test.convW', convW) : null,
    convB: convB ? uploadF32(device, 'Test.convB', convB) : null,
    convState: conv ? uploadF32(device, 'Test.convState', state) : null,
  };
  const packed = conv ? packConvWeights(ctx, buffers.convW as GPUBuffer, buffers.convB, C, K, 'Test.conv') : null;
  const groupSize = c.norm === 'gated-rms' ? I / (c.groups ?? 1) : undefined;
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = normMatvec(
      ctx,
      {
        inFeatures: I,
        outFeatures: O,
        norm: c.norm,
        eps: 1e-5,
        xOffset,
        zOffset,
        ...(groupSize ? { groupSize } : {}),
        ...(presummed ? { sums: pieces } : {}),
        ...(conv ? { conv: { start: conv.start, channels: C, kernelSize: K } } : {}),
        accumulate: c.accumulate ?? false,
        weightFormat: c.format,
      },
      { x: buffers.x, z: buffers.z, g: buffers.g, sums: buffers.sums, weight: w.buffer, y: buffers.y, ...(packed ? { conv: packed, convState: buffers.convState as GPUBuffer } : {}) },
      'Test.normMatvec',
    );
    submitDispatches(device, 'Test', [d]);
    return d;
  });
  const y = await readF32(device, buffers.y, O);
  const stateOut = conv ? await readF32(device, buffers.convState as GPUBuffer, C * (K - 1)) : new Float32Array(0);
  dispatch.destroy();
  for (const b of [...Object.values(buffers), packed, w.buffer]) b?.destroy();
  const ref = normMatvecRef({
    x: x.subarray(xOffset),
    z: z.subarray(zOffset),
    g,
    weight: w.seen,
    norm: c.norm === 'rms-presummed' ? 'rms' : c.norm,
    eps: 1e-5,
    ...(groupSize ? { groupSize } : {}),
    ...(conv ? { conv: { start: conv.start, channels: C, kernelSize: K, weight: convW, bias: convB, state } } : {}),
    ...(c.accumulate ? { yIn: yInit } : {}),
    inFeatures: I,
    outFeatures: O,
  });
  expect(y.every(Number.isFinite), 'every output written and finite').toBe(true);
  expect(relativeError(y, ref.y), 'y').toBeLessThanOrEqual(TOLERANCE);
  if (conv) expect(relativeError(stateOut, ref.convState), 'conv state').toBeLessThanOrEqual(TOLERANCE);
}

describe('norm-matvec (decode: norm → matvec → conv step) against its CPU reference', () => {
  const cases: NormCase[] = [
    { I: 44, O: 37, norm: 'none', format: 'f32' },
    { I: 72, O: 131, norm: 'rms', format: 'f32' },
    { I: 72, O: 131, norm: 'rms', format: 'f16' },
    { I: 200, O: 57, norm: 'rms', conv: { start: 0, channels: 29, kernelSize: 4, bias: true }, format: 'f32' },
    { I: 200, O: 57, norm: 'rms', conv: { start: 11, channels: 23, kernelSize: 3, bias: false }, format: 'f16' },
    { I: 96, O: 45, norm: 'gated-rms', groups: 3, accumulate: true, format: 'f32' },
    { I: 1040, O: 19, norm: 'gated-rms', groups: 1, accumulate: true, format: 'f16' }, // a workgroup per row
    { I: 1032, O: 1029, norm: 'rms', conv: { start: 1000, channels: 29, kernelSize: 2, bias: true }, format: 'f32' }, // 128 threads per row
    { I: 40, O: 8231, norm: 'rms', format: 'f16' }, // 1029 blocks of 8 rows: workgroups loop over blocks (at most 1024 launched)
    { I: 200, O: 57, norm: 'rms', conv: { start: 3, channels: 31, kernelSize: 4, bias: true }, format: 'f16', xOffset: 4 }, // RMSNorm read in place (x at a multiple of 4)
    { I: 1032, O: 1029, norm: 'rms', accumulate: true, format: 'f32', xOffset: 0 }, // in place, 128 threads per row
    { I: 40, O: 8231, norm: 'rms', format: 'f16', xOffset: 0 }, // x aligned but more blocks than workgroups: staged
    { I: 136, O: 77, norm: 'none', accumulate: true, format: 'f16', xOffset: 8 }, // x read in place (no prologue)
    { I: 5000, O: 21, norm: 'none', format: 'f32', xOffset: 0 }, // in place: I beyond what workgroup memory would hold on a 16 KiB device
    { I: 1032, O: 57, norm: 'rms-presummed', pieces: 1, accumulate: true, format: 'f32', xOffset: 4 },
    { I: 328, O: 131, norm: 'rms-presummed', pieces: 37, accumulate: true, format: 'f16', xOffset: 0 },
    { I: 5000, O: 23, norm: 'rms-presummed', pieces: 1301, format: 'f32', xOffset: 8 }, // more pieces than 4 per thread: the tail loop
    { I: 64, O: 8231, norm: 'rms-presummed', pieces: 5, format: 'f16', xOffset: 0 }, // workgroups loop over blocks: the scale from the first
  ];
  for (const c of cases) {
    const name = `I=${c.I} O=${c.O} ${c.norm}${c.groups ? `×${c.groups}` : ''}${c.pieces ? ` (Σu² in ${c.pieces} pieces)` : ''}${c.conv ? ` conv[${c.conv.start}+${c.conv.channels}, K=${c.conv.kernelSize}${c.conv.bias ? ', bias' : ''}]` : ''}${c.accumulate ? ' accumulate' : ''} ${c.format}`;
    it(name, async (test) => {
      if (!ctx) return test.skip(skipReason);
      await runNormCase(ctx, c, seed + c.I * 131 + c.O);
    });
  }

  // Every kernel shape the op can take (app/kernels/norm-matvec.ts matvecShape: threads per row,
  // rows per group, loads in flight), with the subgroup sums and with the barrier tree: row counts
  // that are not a multiple of the rows per block, rows whose 16-byte words are not a multiple of
  // threads × unroll (the tail loop), several norm groups and the deferred scale.
  const shapes = [
    { threadsPerRow: 4, rows: 3, unroll: 4 },
    { threadsPerRow: 8, rows: 4, unroll: 3 },
    { threadsPerRow: 32, rows: 2, unroll: 4 },
    { threadsPerRow: 64, rows: 1, unroll: 2 },
    { threadsPerRow: 256, rows: 4, unroll: 1 },
  ];
  const shapeCases: NormCase[] = [
    { I: 328, O: 67, norm: 'rms', conv: { start: 5, channels: 41, kernelSize: 4, bias: true }, format: 'f16' },
    { I: 328, O: 67, norm: 'rms', conv: { start: 5, channels: 41, kernelSize: 4, bias: true }, format: 'f32', xOffset: 0 }, // in place
    { I: 260, O: 53, norm: 'gated-rms', groups: 2, accumulate: true, format: 'f32' },
    { I: 120, O: 29, norm: 'none', accumulate: true, format: 'f16' },
    { I: 264, O: 31, norm: 'none', accumulate: true, format: 'f32', xOffset: 4 },
    { I: 136, O: 43, norm: 'rms-presummed', pieces: 11, accumulate: true, format: 'f16', xOffset: 0 },
  ];
  it('every threads-per-row / rows / unroll shape, with subgroup sums and with the barrier tree', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const c0 = ctx;
    await eachSubgroupReduction(c0, async () => {
      for (const matvec of shapes) {
        c0.tuning = { matvec };
        for (const [k, c] of shapeCases.entries()) await runNormCase(c0, c, seed + 7 * k + matvec.threadsPerRow);
      }
    });
  });

  it('rejects what it cannot fuse', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const b = storageBuffer(ctx.device, 'Test.b', 4 * 4096);
    const y = storageBuffer(ctx.device, 'Test.y', 4 * 64);
    expect(() => normMatvec(ctx!, { inFeatures: 12, outFeatures: 4, norm: 'none', weightFormat: 'f16' }, { x: b, weight: b, y })).toThrow(/multiple of 8/);
    expect(() => normMatvec(ctx!, { inFeatures: 12, outFeatures: 4, norm: 'rms', eps: 1e-5 }, { x: b, weight: b, y })).toThrow(/needs its weight g/);
    expect(() => normMatvec(ctx!, { inFeatures: 12, outFeatures: 4, norm: 'gated-rms', eps: 1e-5, groupSize: 5 }, { x: b, z: b, g: b, weight: b, y })).toThrow(/groupSize/);
    expect(() => normMatvec(ctx!, { inFeatures: 12, outFeatures: 4, norm: 'none', conv: { start: 2, channels: 3, kernelSize: 4 } }, { x: b, weight: b, y })).toThrow(/outside/);
    expect(() => normMatvec(ctx!, { inFeatures: 12, outFeatures: 4, norm: 'none' }, { x: y, weight: b, y })).toThrow(/same buffer/);
    expect(() => normMatvec(ctx!, { inFeatures: 12, outFeatures: 4, norm: 'rms-presummed', eps: 1e-5, sums: 3 }, { x: b, weight: b, y })).toThrow(/needs the sums/);
    expect(() => normMatvec(ctx!, { inFeatures: 12, outFeatures: 4, norm: 'rms-presummed', eps: 1e-5, sums: 3, xOffset: 2 }, { x: b, sums: b, weight: b, y })).toThrow(/multiple of 4/);
    expect(() => normMatvec(ctx!, { inFeatures: 12, outFeatures: 4, norm: 'rms-presummed', eps: 1e-5 }, { x: b, sums: b, weight: b, y })).toThrow(/sums/);
    b.destroy();
    y.destroy();
  });
});

/** One step_dt case against the CPU reference (Δ, y and the state). */
async function runStepDtCase(ctx: GpuContext, Di: number, N: number, R: number, format: 'f32' | 'f16'): Promise<void> {
  const { device } = ctx;
  const s = seed + Di * 7 + N;
  const bcStride = R + 2 * N;
  const x = uniformF32(Di, s, -1, 1);
  const dbc = uniformF32(bcStride, s + 1, -1, 1);
  const dtW = uniformF32(Di * R, s + 2, -1 / Math.sqrt(R), 1 / Math.sqrt(R));
  const dtBias = uniformF32(Di, s + 3, -4, 0);
  const aLog = uniformF32(Di * N, s + 4, Math.log(0.5), Math.log(8));
  const dSkip = uniformF32(Di, s + 5, -1, 1);
  const zAll = uniformF32(2 * Di, s + 6, -2, 2);
  const state = uniformF32(Di * N, s + 7, -1, 1);
  const w = uploadWeight(device, 'Test.dtW', dtW, format);
  const bufs = {
    x: uploadF32(device, 'Test.x', x),
    dbc: uploadF32(device, 'Test.dbc', dbc),
    aLog: uploadF32(device, 'Test.aLog', aLog),
    d: uploadF32(device, 'Test.d', dSkip),
    dtBias: uploadF32(device, 'Test.dtBias', dtBias),
    z: uploadF32(device, 'Test.z', zAll),
    y: uploadF32(device, 'Test.y', new Float32Array(Di).fill(Number.NaN)),
    state: uploadF32(device, 'Test.state', state),
    delta: uploadF32(device, 'Test.delta', new Float32Array(Di).fill(Number.NaN)),
  };
  const weights = packSelectiveScanWeights(ctx, { aLog: bufs.aLog, d: bufs.d, dtBias: bufs.dtBias }, { dInner: Di, dState: N }, 'Test.scanWeights');
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = selectiveScan(
      ctx!,
      { tokens: 1, dInner: Di, dState: N },
      {
        x: bufs.x,
        dtProj: { weight: w.buffer, rank: R, format },
        weights,
        bc: { buffer: bufs.dbc, rowStride: bcStride, bOffset: R, cOffset: R + N },
        z: { buffer: bufs.z, offset: Di, rowStride: 2 * Di },
        y: bufs.y,
        state: bufs.state,
        delta: bufs.delta,
      },
      'Test.stepDt',
    );
    submitDispatches(device, 'Test', [d]);
    return d;
  });
  const y = await readF32(device, bufs.y, Di);
  const stateOut = await readF32(device, bufs.state, Di * N);
  const delta = await readF32(device, bufs.delta, Di);
  dispatch.destroy();
  weights.destroy();
  for (const b of [...Object.values(bufs), w.buffer]) b.destroy();
  const dtRaw = Float64Array.from({ length: Di }, (_, d) => {
    let sum = 0;
    for (let r = 0; r < R; r++) sum += (w.seen[d * R + r] as number) * (dbc[r] as number);
    return sum;
  });
  const ref = selectiveScanRef({
    tokens: 1,
    dInner: Di,
    dState: N,
    x,
    dtRaw,
    dtBias,
    aLog,
    d: dSkip,
    bc: dbc,
    bOffset: R,
    cOffset: R + N,
    bcStride,
    z: zAll,
    zOffset: Di,
    zStride: 2 * Di,
    state,
  });
  expect(relativeError(delta, ref.delta), 'Δ').toBeLessThanOrEqual(TOLERANCE);
  expect(relativeError(y, ref.y), 'y').toBeLessThanOrEqual(TOLERANCE);
  expect(relativeError(stateOut, ref.state), 'state').toBeLessThanOrEqual(TOLERANCE);
}

describe('the decode kernels with their early loads off (tuning.decodeLoads late: the epilogue reads its inputs after the sums)', () => {
  // The conv epilogue (K = 2, 3, 4; the early path takes K ≤ 4), the residual add, the presummed
  // norm's out_proj; and the step_dt cases. The default (early) runs every case above and below.
  const lateCases: NormCase[] = [
    { I: 200, O: 57, norm: 'rms', conv: { start: 0, channels: 29, kernelSize: 4, bias: true }, format: 'f32' },
    { I: 200, O: 57, norm: 'rms', conv: { start: 11, channels: 23, kernelSize: 3, bias: false }, format: 'f16' },
    { I: 1032, O: 1029, norm: 'rms', conv: { start: 1000, channels: 29, kernelSize: 2, bias: true }, format: 'f32' },
    { I: 96, O: 45, norm: 'gated-rms', groups: 3, accumulate: true, format: 'f32' },
    { I: 328, O: 131, norm: 'rms-presummed', pieces: 37, accumulate: true, format: 'f16', xOffset: 0 },
  ];
  it('norm-matvec: conv epilogue and residual add', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const before = ctx.tuning;
    ctx.tuning = { ...before, decodeLoads: 'late' as const };
    try {
      for (const [k, c] of lateCases.entries()) await runNormCase(ctx, c, seed + 301 * k + c.O);
    } finally {
      ctx.tuning = before;
    }
  });
  it('step_dt', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const before = ctx.tuning;
    ctx.tuning = { ...before, decodeLoads: 'late' as const };
    try {
      await runStepDtCase(ctx, 37, 16, 5, 'f32');
      await runStepDtCase(ctx, 53, 6, 11, 'f16');
    } finally {
      ctx.tuning = before;
    }
  });
});

describe('selective-scan step_dt (dt_proj fused into the decode step) against the CPU reference', () => {
  for (const [Di, N, R, format] of [
    [37, 16, 5, 'f32'],
    [53, 6, 11, 'f16'],
    [19, 40, 3, 'f32'], // N > 32: two states per lane
  ] as const) {
    it(`Di=${Di} N=${N} R=${R} ${format}`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      await runStepDtCase(ctx, Di, N, R, format);
    });
  }
});

describe('x_proj folded into in_proj: its partial sums, added by step_xp, against the float64 chain', () => {
  interface FoldCase {
    D: number;
    Di: number;
    N: number;
    R: number;
    K: number;
    inFormat: WeightFormat;
    xFormat: WeightFormat;
    /** Falcon-Mamba's norm of dt_r, B, C (0: none). */
    eps: number;
    matvec?: { threadsPerRow: number; rows: number; unroll: number; groups?: number };
    what: string;
  }
  const cases: FoldCase[] = [
    { D: 40, Di: 72, N: 16, R: 5, K: 4, inFormat: 'f32', xFormat: 'f32', eps: 0, what: 'Mamba-1' },
    { D: 48, Di: 128, N: 6, R: 11, K: 3, inFormat: 'f16', xFormat: 'f16', eps: 0.02, what: "Falcon-Mamba's norm; 4 blocks, rows of partial sums without padding" },
    { D: 32, Di: 56, N: 40, R: 3, K: 4, inFormat: 'f16', xFormat: 'bf16', eps: 0, what: 'N > 32: two states a lane, bf16 x_proj' },
    { D: 24, Di: 120, N: 4, R: 300, K: 2, inFormat: 'f32', xFormat: 'f32', eps: 0.5, matvec: { threadsPerRow: 64, rows: 1, unroll: 4 }, what: 'R + 2N > 256: a thread an output, several each, over 30 blocks' },
    { D: 24, Di: 136, N: 8, R: 140, K: 4, inFormat: 'f16', xFormat: 'f32', eps: 0, matvec: { threadsPerRow: 64, rows: 1, unroll: 4 }, what: '156 outputs: a thread each, over 34 blocks' },
    { D: 64, Di: 200, N: 16, R: 13, K: 4, inFormat: 'f16', xFormat: 'f16', eps: 0, matvec: { threadsPerRow: 8, rows: 3, unroll: 2 }, what: '96 rows a block, the last block half x, half z' },
    { D: 64, Di: 200, N: 16, R: 13, K: 4, inFormat: 'f32', xFormat: 'f16', eps: 0.02, matvec: { threadsPerRow: 64, rows: 1, unroll: 4, groups: 3 }, what: '4 rows a block, 3 workgroups looping over 100 blocks' },
  ];
  for (const c of cases) {
    it(`D=${c.D} Di=${c.Di} N=${c.N} R=${c.R} K=${c.K} in_proj ${c.inFormat}, x_proj ${c.xFormat}: ${c.what}`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const { device } = ctx;
      const before = ctx.tuning;
      if (c.matvec) ctx.tuning = { ...before, matvec: c.matvec };
      try {
        const { D, Di, N, R, K } = c;
        const RO = R + 2 * N;
        const s = seed + 17 * Di + N + R;
        const h = uniformF32(D, s, -2, 2);
        const g = uniformF32(D, s + 1, 0.5, 1.5);
        const inW = uploadWeight(device, 'Test.inProj', uniformF32(2 * Di * D, s + 2, -1 / Math.sqrt(D), 1 / Math.sqrt(D)), c.inFormat);
        const convW = uniformF32(Di * K, s + 3, -0.7, 0.7);
        const convB = uniformF32(Di, s + 4, -0.3, 0.3);
        const convState = uniformF32(Di * (K - 1), s + 5, -1, 1);
        const xW = uploadWeight(device, 'Test.xProj', uniformF32(RO * Di, s + 6, -2 / Math.sqrt(Di), 2 / Math.sqrt(Di)), c.xFormat);
        const dtW = uploadWeight(device, 'Test.dtProj', uniformF32(Di * R, s + 7, -1 / Math.sqrt(R), 1 / Math.sqrt(R)), 'f32');
        const dtBias = uniformF32(Di, s + 8, -4, 0);
        const aLog = uniformF32(Di * N, s + 9, Math.log(0.5), Math.log(8));
        const dSkip = uniformF32(Di, s + 10, -1, 1);
        const state = uniformF32(Di * N, s + 11, -1, 1);
        const shape: NormMatvecShape = { inFeatures: D, outFeatures: 2 * Di, norm: 'rms', eps: 1e-5, conv: { start: 0, channels: Di, kernelSize: K }, weightFormat: c.inFormat, xProj: { outputs: RO, format: c.xFormat } };
        const { blocks: rows, stride, elements } = xProjPartialLayout(ctx, shape);
        const bufs = {
          h: uploadF32(device, 'Test.h', h),
          g: uploadF32(device, 'Test.g', g),
          convW: uploadF32(device, 'Test.convW', convW),
          convB: uploadF32(device, 'Test.convB', convB),
          convState: uploadF32(device, 'Test.convState', convState),
          xz: uploadF32(device, 'Test.xz', new Float32Array(2 * Di).fill(Number.NaN)),
          partials: uploadF32(device, 'Test.partials', new Float32Array(elements).fill(Number.NaN)),
          aLog: uploadF32(device, 'Test.aLog', aLog),
          d: uploadF32(device, 'Test.d', dSkip),
          dtBias: uploadF32(device, 'Test.dtBias', dtBias),
          y: uploadF32(device, 'Test.y', new Float32Array(Di).fill(Number.NaN)),
          state: uploadF32(device, 'Test.state', state),
          delta: uploadF32(device, 'Test.delta', new Float32Array(Di).fill(Number.NaN)),
        };
        const conv = packConvWeights(ctx, bufs.convW, bufs.convB, Di, K, 'Test.conv');
        const weights = packSelectiveScanWeights(ctx, { aLog: bufs.aLog, d: bufs.d, dtBias: bufs.dtBias }, { dInner: Di, dState: N }, 'Test.scanWeights');
        const ops = await withErrorScopes(device, 'test', () => {
          const inProj = normMatvec(ctx!, shape, { x: bufs.h, g: bufs.g, weight: inW.buffer, conv, convState: bufs.convState, y: bufs.xz, xProjWeight: xW.buffer, xProjPartials: bufs.partials }, 'Test.inProjXProj');
          const step = selectiveScan(
            ctx!,
            { tokens: 1, dInner: Di, dState: N },
            {
              x: bufs.xz,
              dtProj: { weight: dtW.buffer, rank: R, format: 'f32', xProjPartials: { rows, ...(c.eps > 0 ? { normEps: c.eps } : {}) } },
              weights,
              bc: { buffer: bufs.partials, rowStride: RO, bOffset: R, cOffset: R + N },
              z: { buffer: bufs.xz, offset: Di, rowStride: 2 * Di },
              y: bufs.y,
              state: bufs.state,
              delta: bufs.delta,
            },
            'Test.stepXp',
          );
          submitDispatches(device, 'Test', [inProj, step]);
          return [inProj, step];
        });
        const xz = await readF32(device, bufs.xz, 2 * Di);
        const convOut = await readF32(device, bufs.convState, Di * (K - 1));
        const partials = await readF32(device, bufs.partials, elements);
        const y = await readF32(device, bufs.y, Di);
        const stateOut = await readF32(device, bufs.state, Di * N);
        const delta = await readF32(device, bufs.delta, Di);
        for (const op of ops) op.destroy();
        weights.destroy();
        conv.destroy();
        for (const b of [...Object.values(bufs), inW.buffer, xW.buffer, dtW.buffer]) b.destroy();

        const inRef = normMatvecRef({ x: h, g, weight: inW.seen, norm: 'rms', eps: 1e-5, conv: { start: 0, channels: Di, kernelSize: K, weight: convW, bias: convB, state: convState }, inFeatures: D, outFeatures: 2 * Di });
        const xc = inRef.y.subarray(0, Di);
        const dbc = Float64Array.from({ length: RO }, (_, j) => {
          let sum = 0;
          for (let k = 0; k < Di; k++) sum += (xW.seen[j * Di + k] as number) * (xc[k] as number);
          return sum;
        });
        // A partial sum for each block and output (the rest of each row, past the blocks, left
        // as it was: NaN here, which the step must not add); each output's sums add to x_proj(xc).
        expect(elements, 'outputs × the blocks rounded up to 4').toBe(RO * stride);
        expect(stride % 4 === 0 && stride >= rows && stride < rows + 4).toBe(true);
        const rowSums = Float64Array.from({ length: RO }, (_, j) => {
          let sum = 0;
          for (let r = 0; r < stride; r++) {
            const v = partials[j * stride + r] as number;
            if (r < rows) {
              expect(Number.isFinite(v), `partial sum (${j}, ${r}) written`).toBe(true);
              sum += v;
            } else expect(v, `(${j}, ${r}) past the blocks`).toBeNaN();
          }
          return sum;
        });
        expect(relativeError(rowSums, dbc), 'Σ partial sums = x_proj(xc)').toBeLessThanOrEqual(TOLERANCE);
        const normed = c.eps > 0 ? segmentRmsNormRef(dbc, 1, RO, [0, R, R + N, RO], c.eps) : dbc;
        const dtRaw = Float64Array.from({ length: Di }, (_, d) => {
          let sum = 0;
          for (let r = 0; r < R; r++) sum += (dtW.seen[d * R + r] as number) * (normed[r] as number);
          return sum;
        });
        const ref = selectiveScanRef({ tokens: 1, dInner: Di, dState: N, x: xc, dtRaw, dtBias, aLog, d: dSkip, bc: normed, bOffset: R, cOffset: R + N, bcStride: RO, z: inRef.y, zOffset: Di, zStride: 2 * Di, state });
        expect(relativeError(xz, inRef.y), 'in_proj → conv (x | z)').toBeLessThanOrEqual(TOLERANCE);
        expect(relativeError(convOut, inRef.convState), 'conv state').toBeLessThanOrEqual(TOLERANCE);
        expect(relativeError(delta, ref.delta), 'Δ').toBeLessThanOrEqual(TOLERANCE);
        expect(relativeError(y, ref.y), 'y').toBeLessThanOrEqual(TOLERANCE);
        expect(relativeError(stateOut, ref.state), 'state').toBeLessThanOrEqual(TOLERANCE);
      } finally {
        ctx.tuning = before;
      }
    });
  }

  it('refuses what it cannot fold, naming it', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const b = storageBuffer(ctx.device, 'Test.b', 4 * 4096);
    const p = storageBuffer(ctx.device, 'Test.p', 4 * 4096);
    const y = storageBuffer(ctx.device, 'Test.y', 4 * 64);
    const base: NormMatvecShape = { inFeatures: 8, outFeatures: 16, norm: 'none', conv: { start: 0, channels: 8, kernelSize: 4 }, xProj: { outputs: 5, format: 'f32' } };
    const buffers = { x: b, weight: b, conv: b, convState: p, y, xProjWeight: b, xProjPartials: y };
    expect(() => normMatvec(ctx!, { ...base, conv: { start: 2, channels: 8, kernelSize: 4 } }, buffers)).toThrow(/conv.start 0/);
    expect(() => normMatvec(ctx!, { ...base, xProj: { outputs: 5, format: 'q8_0' } }, buffers)).toThrow(/f32, f16 or bf16/);
    expect(() => normMatvec(ctx!, base, { ...buffers, xProjPartials: undefined })).toThrow(/xProjWeight and xProjPartials/);
    expect(() => normMatvec(ctx!, base, { ...buffers, xProjPartials: p })).toThrow(/same buffer/);
    const st = storageBuffer(ctx.device, 'Test.state', 4 * 16);
    const scan = (bc: { rowStride: number; bOffset: number; cOffset: number }, rows: number) => () =>
      selectiveScan(ctx!, { tokens: 1, dInner: 8, dState: 2 }, { x: b, dtProj: { weight: b, rank: 3, format: 'f32', xProjPartials: { rows } }, weights: { buffer: b, dInner: 8, dState: 2, destroy() {} }, bc: { buffer: p, ...bc }, z: { buffer: b, offset: 8, rowStride: 16 }, y, state: st }).destroy();
    expect(scan({ rowStride: 8, bOffset: 3, cOffset: 6 }, 2)).toThrow(/\[dt_r \| B \| C\]/);
    expect(scan({ rowStride: 7, bOffset: 3, cOffset: 5 }, 4096)).toThrow(/partial sums/);
    // 7 outputs × 588 blocks rounded up to 592: 4,144 floats, over the 4,096 bound.
    expect(scan({ rowStride: 7, bOffset: 3, cOffset: 5 }, 585)).toThrow(/partial sums/);
    expect(scan({ rowStride: 7, bOffset: 3, cOffset: 5 }, 584)).not.toThrow();
    for (const x of [b, p, y, st]) x.destroy();
  });
});
