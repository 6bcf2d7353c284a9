import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import { CONV_KERNEL_NAMES, type ConvKernelName, type GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { causalConv1d, type CausalConv1dShape } from '../../app/kernels/causal-conv1d';
import { causalConv1dRef } from '../../app/kernels/causal-conv1d.ref';
import type { Dispatch } from '../../app/kernels/dispatch';
import { submitDispatches } from '../../app/kernels/dispatch';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { useTestGpu } from '../support/gpu';

/**
 * Element-wise with a K-term sum: relative error ≤ 1e-5. The new conv state is a copy of inputs,
 * so it must match exactly.
 */
const TOLERANCE = 1e-5;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

/** Bitwise mismatches between a GPU result and a reference (NaN counts as a mismatch). */
function mismatches(actual: Float32Array, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let n = 0;
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) n++;
  return n;
}

interface Inputs {
  C: number;
  K: number;
  /** x as the x half of an in_proj output: x[t, d] at x[xOffset + t·2C + d]. */
  x: Float32Array;
  xOffset: number;
  xStride: number;
  weight: Float32Array;
  bias: Float32Array | null;
}

function makeInputs(C: number, K: number, T: number, withBias: boolean, caseSeed: number): Inputs {
  const xOffset = 3;
  const xStride = 2 * C + 1;
  return {
    C,
    K,
    x: randomF32(xOffset + T * xStride, caseSeed, 3),
    xOffset,
    xStride,
    weight: randomF32(C * K, caseSeed + 1, 1),
    bias: withBias ? randomF32(C, caseSeed + 2, 1) : null,
  };
}

/**
 * Runs calls of `lengths` tokens one after the other over consecutive rows of the same x, all
 * in one compute pass (as decode encodes them), writing out [ΣT, C] at a row offset per call.
 * The state sits at `stateOffset` inside a NaN-poisoned buffer whose other elements must stay NaN.
 */
async function runCalls(ctx: GpuContext, inp: Inputs, lengths: number[], initialState: Float32Array | null, stateOffset = 0, activation: 'silu' | 'none' = 'silu', kernel: ConvKernelName = 'loop') {
  const { device } = ctx;
  const tuning = ctx.tuning;
  ctx.tuning = { ...tuning, convKernel: kernel };
  const { C, K } = inp;
  const total = lengths.reduce((a, b) => a + b, 0);
  const stateLength = stateOffset + C * (K - 1) + 2;
  const stateInit = new Float32Array(stateLength).fill(Number.NaN);
  stateInit.set(initialState ?? new Float32Array(C * (K - 1)), stateOffset);
  const buffers = {
    x: uploadF32(device, 'Test.x', inp.x),
    weight: uploadF32(device, 'Test.weight', inp.weight),
    bias: inp.bias ? uploadF32(device, 'Test.bias', inp.bias) : null,
    convState: uploadF32(device, 'Test.convState', stateInit),
    output: uploadF32(device, 'Test.output', new Float32Array(total * C).fill(Number.NaN)), // poisoned
  };
  const dispatches = await withErrorScopes(device, 'test', () => {
    const list: Dispatch[] = [];
    let start = 0;
    for (const [i, T] of lengths.entries()) {
      const shape: CausalConv1dShape = {
        tokens: T,
        channels: C,
        kernelSize: K,
        xOffset: inp.xOffset + start * inp.xStride,
        xStride: inp.xStride,
        outOffset: start * C,
        stateOffset,
        activation,
      };
      list.push(causalConv1d(ctx, shape, buffers, `Test.conv${i}`));
      start += T;
    }
    submitDispatches(device, 'Test', list);
    return list;
  }).finally(() => {
    ctx.tuning = tuning;
  });
  const output = await readF32(device, buffers.output, total * C);
  const stateAll = await readF32(device, buffers.convState, stateLength);
  for (const d of dispatches) d.destroy();
  for (const b of Object.values(buffers)) b?.destroy();
  const state = stateAll.slice(stateOffset, stateOffset + C * (K - 1));
  const outsideState = [...stateAll.subarray(0, stateOffset), ...stateAll.subarray(stateOffset + C * (K - 1))];
  const ref = causalConv1dRef(inp.x, { offset: inp.xOffset, stride: inp.xStride }, inp.weight, inp.bias, initialState, total, C, K, activation);
  return { output, state, outsideState, ref };
}

/** The kernels a kernel size runs on (causal-conv1d.ts: main_k4 takes K = 4 alone). */
const kernelsFor = (K: number): readonly ConvKernelName[] => (K === 4 ? CONV_KERNEL_NAMES : ['loop']);

describe('causal_conv1d.wgsl against its CPU reference (Dawn)', () => {
  // Odd sizes: C not a multiple of the 64-wide workgroup, T across the 16-token chunks and below K-1.
  for (const K of [2, 4]) {
    for (const kernel of kernelsFor(K)) {
      for (const C of [7, 193]) {
        for (const T of [1, 2, 11, 50]) {
          it(`K=${K} (${kernel}) C=${C} T=${T}: from a random state with bias, from zeros without`, async (test) => {
            if (!ctx) return test.skip(skipReason);
            const caseSeed = seed + K * 1_000_003 + C * 7919 + T;
            for (const withBias of [true, false]) {
              const inp = makeInputs(C, K, T, withBias, caseSeed + (withBias ? 0 : 10));
              const initial = withBias ? randomF32(C * (K - 1), caseSeed + 5, 3) : null;
              const { output, state, ref } = await runCalls(ctx, inp, [T], initial, 0, 'silu', kernel);
              expect(output.every(Number.isFinite), 'every output element written').toBe(true);
              expect(relativeError(output, ref.output)).toBeLessThanOrEqual(TOLERANCE);
              expect(mismatches(state, ref.state), 'new conv state = the last K-1 inputs').toBe(0);
            }
          });
        }
      }
    }
  }

  // main_k4 sums in main's order: the same floats for the same inputs, across threads' chunks of 16
  // tokens (T = 67: five threads a channel, the last with 3 tokens; T = 3: one, its window from the
  // old state).
  it('K=4: main_k4 gives main\'s floats and state, from a random state, T = 67 and 3', async (test) => {
    if (!ctx) return test.skip(skipReason);
    for (const T of [67, 3]) {
      const inp = makeInputs(131, 4, T, true, seed + 4242 + T);
      const initial = randomF32(131 * 3, seed + 4243 + T, 3);
      const loop = await runCalls(ctx, inp, [T], initial, 2, 'silu', 'loop');
      const k4 = await runCalls(ctx, inp, [T], initial, 2, 'silu', 'k4');
      expect(mismatches(k4.output, loop.output), `T=${T}: outputs`).toBe(0);
      expect(mismatches(k4.state, loop.state), `T=${T}: state`).toBe(0);
      expect(relativeError(k4.output, k4.ref.output)).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('activation none (mamba_ssm MHA): the conv and bias alone, in calls of 11 + 1 + 2 tokens', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const inp = makeInputs(37, 4, 14, true, seed + 77);
    for (const kernel of kernelsFor(4)) {
      const { output, ref } = await runCalls(ctx, inp, [11, 1, 2], null, 3, 'none', kernel);
      expect(relativeError(output, ref.output), kernel).toBeLessThanOrEqual(TOLERANCE);
      expect(output.some((v) => v < -0.3), `${kernel}: negative outputs: no SiLU`).toBe(true);
    }
  });

  // prefill(T1), prefill(T2), step, step, …  ≡  one call over all the tokens.
  const chains: number[][] = [
    [11, 50, 1, 1, 1],
    [2, 1, 11, 1, 1, 2, 1],
    [1, 1, 1, 50],
  ];
  for (const K of [2, 4, 8]) {
    for (const C of [7, 193]) {
      for (const lengths of chains) {
        it.for(kernelsFor(K))(`K=${K} (%s) C=${C}: calls of ${lengths.join('+')} tokens equal one call (state carried)`, async (kernel, test) => {
          if (!ctx) return test.skip(skipReason);
          const total = lengths.reduce((a, b) => a + b, 0);
          const inp = makeInputs(C, K, total, true, seed + K * 31 + C + total);
          const chained = await runCalls(ctx, inp, lengths, null, 5, 'silu', kernel);
          const single = await runCalls(ctx, inp, [total], null, 5, 'silu', kernel);
          expect(chained.output.every(Number.isFinite), 'every output element written').toBe(true);
          expect(relativeError(chained.output, chained.ref.output)).toBeLessThanOrEqual(TOLERANCE);
          expect(relativeError(single.output, single.ref.output)).toBeLessThanOrEqual(TOLERANCE);
          expect(mismatches(chained.output, single.output), 'chained calls = one call').toBe(0);
          expect(mismatches(chained.state, chained.ref.state)).toBe(0);
          expect(mismatches(chained.state, single.state)).toBe(0);
          expect(chained.outsideState.every(Number.isNaN), 'state buffer outside the state view untouched').toBe(true);
        });
      }
    }
  }

  it('reuses one pipeline per kernel size for every shape', async (test) => {
    if (!ctx) return test.skip(skipReason);
    await runCalls(ctx, makeInputs(5, 4, 3, true, seed), [3], null);
    const before = ctx.pipelines.size;
    await runCalls(ctx, makeInputs(70, 4, 21, false, seed + 1), [20, 1], null);
    expect(ctx.pipelines.size).toBe(before);
  });

  it('rejects bad shapes and buffers, naming the buffer', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const device = ctx.device;
    const small = storageBuffer(device, 'Test.small', 16);
    const ok = storageBuffer(device, 'Test.ok', 4 * 1000);
    const state = storageBuffer(device, 'Test.state', 4 * 1000);
    const out = storageBuffer(device, 'Test.out', 4 * 1000);
    const shape = { tokens: 10, channels: 10, kernelSize: 4 };
    const conv = (s: CausalConv1dShape, b: Partial<Parameters<typeof causalConv1d>[2]>) =>
      causalConv1d(ctx!, s, { x: ok, weight: ok, convState: state, output: out, ...b });
    expect(() => conv(shape, { x: small })).toThrow(/CausalConv1d: x \(Test\.small\) holds 16 bytes, needs 400/);
    expect(() => conv(shape, { weight: small })).toThrow(/weight \(Test\.small\) holds 16 bytes, needs 160/);
    expect(() => conv(shape, { bias: small })).toThrow(/bias \(Test\.small\) holds 16 bytes, needs 40/);
    expect(() => conv(shape, { convState: small })).toThrow(/convState \(Test\.small\) holds 16 bytes, needs 120/);
    expect(() => conv({ ...shape, stateOffset: 990 }, {})).toThrow(/convState \(Test\.state\) holds 4000 bytes, needs 4080/);
    expect(() => conv({ ...shape, outStride: 111 }, {})).toThrow(/output \(Test\.out\) holds 4000 bytes, needs 4036/);
    expect(() => conv({ ...shape, kernelSize: 9 }, {})).toThrow(/kernelSize must be an integer in 2\.\.8, got 9/);
    expect(() => conv({ ...shape, kernelSize: 1 }, {})).toThrow(/kernelSize/);
    expect(() => conv({ ...shape, xStride: 9 }, {})).toThrow(/xStride must be an integer ≥ 10/);
    expect(() => conv(shape, { output: state })).toThrow(/convState and output must be different buffers/);
    expect(() => conv(shape, { x: out })).toThrow(/output \(Test\.out\) is written, so it must not also be x, weight or bias/);
    for (const b of [small, ok, state, out]) b.destroy();
  });
});
