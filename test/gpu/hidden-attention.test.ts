import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { hiddenAttention, hiddenAttentionRow, type HiddenAttentionChannel } from '../../app/kernels/hidden-attention';
import { hiddenAttentionRef, hiddenAttentionWithBound } from '../../app/kernels/hidden-attention.ref';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { uniformF32, useTestGpu } from '../support/gpu';

/** fp32 sums of exponentials over channels and states: relative error ≤ 1e-4 (as for scans). */
const TOLERANCE = 1e-4;
/** fp32's unit roundoff, 2⁻²⁴: a row's error may also reach ε times its terms' rounding bound (hiddenAttentionWithBound). */
const EPS32 = 2 ** -24;

/** The 2-norm of a vector. */
const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

/**
 * `got` against the float64 `want`: within 1e-4 of it, or what fp32 rounding of its terms allows
 * where they cancel (`bound`, hiddenAttentionWithBound's: a cell of few states can sum to much less
 * than its terms; T = 1, one cell of four states, came to 1.9e-4 of itself in CI).
 */
function expectNearRef(got: Float32Array, want: Float64Array, bound: Float64Array, what: string) {
  const allowed = TOLERANCE * norm(want) + EPS32 * norm(bound);
  expect(relativeError(got, want) * norm(want), `${what} (relative ${relativeError(got, want).toExponential(2)})`).toBeLessThanOrEqual(allowed);
}

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

interface Inputs {
  delta: Float32Array;
  b: Float32Array;
  c: Float32Array;
  aLog: Float32Array;
}

/** Δ = softplus(random) ≥ 0, A_log = log U(0.3, 8), B and C uniform in [−1, 1). */
function inputs(T: number, Di: number, N: number, caseSeed: number): Inputs {
  return {
    delta: randomF32(T * Di, caseSeed, 3).map((x) => Math.log1p(Math.exp(x))),
    b: randomF32(T * N, caseSeed + 1),
    c: randomF32(T * N, caseSeed + 2),
    aLog: uniformF32(Di * N, caseSeed + 3, 0.3, 8).map(Math.log),
  };
}

/** Runs the full matrix and the rows in `rows` (one row op, moved with setRow); outputs poisoned first. */
/** The inputs on the GPU, and an output matrix filled with NaN (so unwritten cells show). */
function inputBuffers(device: GPUDevice, data: Inputs, T: number) {
  return {
    delta: uploadF32(device, 'Test.delta', data.delta),
    b: uploadF32(device, 'Test.b', data.b),
    c: uploadF32(device, 'Test.c', data.c),
    aLog: uploadF32(device, 'Test.aLog', data.aLog),
    alpha: uploadF32(device, 'Test.alpha', new Float32Array(T * T).fill(Number.NaN)),
  };
}

async function runCase(ctx: GpuContext, T: number, Di: number, N: number, channel: HiddenAttentionChannel, data: Inputs, rows: number[]) {
  const { device } = ctx;
  const buffers = { ...inputBuffers(device, data, T), row: uploadF32(device, 'Test.row', new Float32Array(T).fill(Number.NaN)) };
  const shape = { tokens: T, dInner: Di, dState: N, channel };
  const full = await withErrorScopes(device, 'test', () => {
    const d = hiddenAttention(ctx, shape, buffers, 'Test.hiddenAttention');
    submitDispatches(device, 'Test', [d]);
    return d;
  });
  const alpha = await readF32(device, buffers.alpha, T * T);
  const rowOp = await withErrorScopes(device, 'test', () =>
    hiddenAttentionRow(ctx, { ...shape, row: rows[0] ?? 0 }, { ...buffers, alpha: buffers.row }, 'Test.hiddenAttentionRow'),
  );
  const rowOutputs: Float32Array[] = [];
  for (const i of rows) {
    device.queue.writeBuffer(buffers.row, 0, new Float32Array(T).fill(Number.NaN)); // poisoned
    await withErrorScopes(device, 'test', () => {
      rowOp.setRow(i);
      submitDispatches(device, 'Test', [rowOp]);
    });
    rowOutputs.push(await readF32(device, buffers.row, T));
  }
  full.destroy();
  rowOp.destroy();
  for (const b of Object.values(buffers)) b.destroy();
  return { alpha, rowOutputs };
}

describe('hidden_attention.wgsl against its CPU reference (Dawn)', () => {
  for (const T of [1, 7, 64, 129]) {
    for (const Di of [5, 33]) {
      for (const N of [4, 16]) {
        for (const mode of ['channel', 'mean'] as const) {
          it(`T=${T} Di=${Di} N=${N} ${mode}`, async (test) => {
            if (!ctx) return test.skip(skipReason);
            const caseSeed = seed + T * 7919 + Di * 104729 + N * 31 + (mode === 'mean' ? 1 : 0);
            const data = inputs(T, Di, N, caseSeed);
            const channel: HiddenAttentionChannel = mode === 'mean' ? 'mean' : (caseSeed >>> 3) % Di;
            const rows = [...new Set([T - 1, (caseSeed >>> 5) % T, 0])];
            const { alpha, rowOutputs } = await runCase(ctx, T, Di, N, channel, data, rows);
            const { alpha: ref, bound } = hiddenAttentionWithBound(data.delta, data.b, data.c, data.aLog, T, Di, N, channel);
            expect(alpha.every(Number.isFinite), 'every output element written').toBe(true);
            for (let i = 0; i < T; i++) {
              for (let j = i + 1; j < T; j++) {
                if (alpha[i * T + j] !== 0) expect.fail(`alpha[${i}, ${j}] = ${alpha[i * T + j]} above the diagonal`);
              }
            }
            expectNearRef(alpha, ref, bound, 'the matrix');
            rows.forEach((i, k) => {
              const row = rowOutputs[k] as Float32Array;
              expect(row.every(Number.isFinite), `row ${i}: every element written`).toBe(true);
              // Same function, same inputs: the row is the matrix's row.
              expect(Array.from(row), `row ${i} equals the matrix's row`).toEqual(Array.from(alpha.subarray(i * T, (i + 1) * T)));
              expectNearRef(row, ref.subarray(i * T, (i + 1) * T), bound.subarray(i * T, (i + 1) * T), `row ${i}`);
            });
          });
        }
      }
    }
  }

  it('reuses its pipelines for every shape and channel (shapes travel in uniforms)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    await runCase(ctx, 3, 5, 4, 'mean', inputs(3, 5, 4, seed), [1]);
    const before = ctx.pipelines.size;
    await runCase(ctx, 11, 7, 3, 2, inputs(11, 7, 3, seed + 1), [10, 4]);
    expect(ctx.pipelines.size).toBe(before);
  });

  it('setChannel switches between one channel and the mean', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [T, Di, N] = [9, 6, 5];
    const data = inputs(T, Di, N, seed + 2);
    const { device } = ctx;
    const buffers = inputBuffers(device, data, T);
    const op = hiddenAttention(ctx, { tokens: T, dInner: Di, dState: N, channel: 'mean' }, buffers, 'Test.hiddenAttention');
    for (const channel of [4, 'mean'] as const) {
      op.setChannel(channel);
      submitDispatches(device, 'Test', [op]);
      const alpha = await readF32(device, buffers.alpha, T * T);
      expect(relativeError(alpha, hiddenAttentionRef(data.delta, data.b, data.c, data.aLog, T, Di, N, channel))).toBeLessThanOrEqual(TOLERANCE);
    }
    op.destroy();
    for (const b of Object.values(buffers)) b.destroy();
  });

  it('encodeRows: bands of rows, one submit each (odd sizes, off the tile), make the whole matrix; encode after it covers every row again', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [T, Di, N] = [37, 5, 3];
    const data = inputs(T, Di, N, seed + 4);
    const { device } = ctx;
    const buffers = inputBuffers(device, data, T);
    const expected = hiddenAttentionRef(data.delta, data.b, data.c, data.aLog, T, Di, N, 'mean');
    const op = hiddenAttention(ctx, { tokens: T, dInner: Di, dState: N, channel: 'mean' }, buffers, 'Test.hiddenAttention');
    const submitRows = (first: number, end: number) => {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      op.encodeRows(pass, first, end, first === 0);
      pass.end();
      device.queue.submit([encoder.finish()]);
    };
    // The first band alone writes its rows only: the rest stay poisoned.
    submitRows(0, 11);
    const partial = await readF32(device, buffers.alpha, T * T);
    expect(relativeError(partial.subarray(0, 11 * T), expected.subarray(0, 11 * T))).toBeLessThanOrEqual(TOLERANCE);
    expect(partial.subarray(11 * T).every(Number.isNaN)).toBe(true);
    for (const [first, end] of [
      [11, 16],
      [16, 36],
      [36, 37],
    ] as const)
      submitRows(first, end);
    expect(relativeError(await readF32(device, buffers.alpha, T * T), expected)).toBeLessThanOrEqual(TOLERANCE);
    // A plain encode after the bands: every row again.
    device.queue.writeBuffer(buffers.alpha, 0, new Float32Array(T * T).fill(Number.NaN));
    submitDispatches(device, 'Test', [op]);
    expect(relativeError(await readF32(device, buffers.alpha, T * T), expected)).toBeLessThanOrEqual(TOLERANCE);
    expect(() => submitRows(5, 5)).toThrow(/end row must be an integer in 6\.\.37/);
    op.destroy();
    for (const b of Object.values(buffers)) b.destroy();
  });

  it('rejects bad shapes and buffers too small, naming them', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const device = ctx.device;
    const small = storageBuffer(device, 'Test.small', 16);
    const ok = storageBuffer(device, 'Test.ok', 4 * 400);
    const out = storageBuffer(device, 'Test.out', 4 * 400);
    const shape = { tokens: 10, dInner: 4, dState: 3, channel: 'mean' as const };
    expect(() => hiddenAttention(ctx!, shape, { delta: small, b: ok, c: ok, aLog: ok, alpha: out })).toThrow(/delta \(Test\.small\) holds 16 bytes, needs 160/);
    expect(() => hiddenAttention(ctx!, { ...shape, tokens: 20 }, { delta: ok, b: ok, c: ok, aLog: ok, alpha: small })).toThrow(/alpha \(Test\.small\) holds 16 bytes, needs 1600/);
    expect(() => hiddenAttention(ctx!, { ...shape, channel: 4 }, { delta: ok, b: ok, c: ok, aLog: ok, alpha: out })).toThrow(/HiddenAttention: channel must be an integer in 0\.\.3/);
    expect(() => hiddenAttentionRow(ctx!, { ...shape, row: 10 }, { delta: ok, b: ok, c: ok, aLog: ok, alpha: out })).toThrow(/HiddenAttention: row must be an integer in 0\.\.9/);
    expect(() => hiddenAttention(ctx!, shape, { delta: ok, b: ok, c: ok, aLog: ok, alpha: ok })).toThrow(/alpha and delta are the same buffer/);
    small.destroy();
    ok.destroy();
    out.destroy();
  });
});
