import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches, submitUnitsApart } from '../../app/kernels/dispatch';
import { roundToF16, uploadF16 } from '../../app/kernels/f16';
import { matmul, type MatmulEntryPoint, type MatmulShape } from '../../app/kernels/matmul';
import { matmulRef } from '../../app/kernels/matmul.ref';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { useTestGpu } from '../support/gpu';

/** fp32 matmuls: relative error ≤ 1e-4 (issue 5's tolerance for norms, matmuls and scans). */
const TOLERANCE = 1e-4;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

interface Case {
  T: number;
  I: number;
  O: number;
  bias: boolean;
  /** X and Y as views inside bigger buffers: offsets > 0, row strides > width. */
  strided: boolean;
  /** Row stride padding and offsets chosen as multiples of 4 (keeps the vec4 path available). */
  aligned?: boolean;
  accumulate?: boolean;
  variant?: MatmulShape['variant'];
  /** Tiled kernel: split K over this many workgroups. */
  splits?: number;
  /** W stored as packed halves; the reference then uses W rounded to f16 (what the GPU reads). */
  f16?: boolean;
  /** Each of the op's kernels in a pass of its own (submitUnitsApart: as the bench's breakdown runs them). */
  apart?: boolean;
}

interface Outcome {
  entryPoint: MatmulEntryPoint;
  splits: number;
  /** The op's kernels when it runs several (Dispatch.parts), else null. */
  parts: string[] | null;
  /** Y gathered from its view, dense [T, O]. */
  y: Float32Array;
  ref: Float64Array;
  /** Elements of the y buffer outside the view that were changed (must be 0). */
  outsideWritten: number;
}

async function runCase(ctx: GpuContext, c: Case, caseSeed: number): Promise<Outcome> {
  const { device } = ctx;
  const { T, I, O } = c;
  const pad = c.aligned ? 4 : 5;
  const xView = c.strided ? { offset: c.aligned ? 8 : 3, stride: I + pad } : { offset: 0, stride: I };
  const yView = c.strided ? { offset: 7, stride: O + 3 } : { offset: 0, stride: O };
  const xLength = xView.offset + (T - 1) * xView.stride + I + (c.strided ? 2 : 0);
  const yLength = yView.offset + (T - 1) * yView.stride + O + (c.strided ? 2 : 0);
  const x = randomF32(xLength, caseSeed, 2);
  const weight = randomF32(O * I, caseSeed + 1, 1 / Math.sqrt(I));
  const bias = c.bias ? randomF32(O, caseSeed + 2, 1) : null;
  // Poisoned with NaN, except for accumulate, which reads Y: then random values.
  const yInit = c.accumulate ? randomF32(yLength, caseSeed + 3, 1) : new Float32Array(yLength).fill(Number.NaN);
  const buffers = {
    x: uploadF32(device, 'Test.x', x),
    weight: c.f16 ? uploadF16(device, 'Test.weight', weight) : uploadF32(device, 'Test.weight', weight),
    bias: bias ? uploadF32(device, 'Test.bias', bias) : null,
    y: uploadF32(device, 'Test.y', yInit),
  };
  const shape: MatmulShape = {
    tokens: T,
    inFeatures: I,
    outFeatures: O,
    xOffset: xView.offset,
    xStride: xView.stride,
    yOffset: yView.offset,
    yStride: yView.stride,
    accumulate: c.accumulate ?? false,
    variant: c.variant ?? 'auto',
    weightFormat: c.f16 ? 'f16' : 'f32',
    ...(c.splits !== undefined ? { splits: c.splits } : {}),
  };
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = matmul(ctx, shape, buffers, 'Test.matmul');
    if (c.apart) submitUnitsApart(device, 'Test', [d]);
    else submitDispatches(device, 'Test', [d]);
    return d;
  });
  const yAll = await readF32(device, buffers.y, yLength);
  dispatch.destroy();
  for (const b of Object.values(buffers)) b?.destroy();

  const y = new Float32Array(T * O);
  const inView = new Uint8Array(yLength);
  const yIn = new Float64Array(T * O);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < O; o++) {
      const at = yView.offset + t * yView.stride + o;
      y[t * O + o] = yAll[at] ?? Number.NaN;
      yIn[t * O + o] = yInit[at] ?? Number.NaN;
      inView[at] = 1;
    }
  }
  let outsideWritten = 0;
  for (let i = 0; i < yLength; i++) {
    if (!inView[i] && !Object.is(yAll[i], yInit[i]) && !(Number.isNaN(yAll[i]) && Number.isNaN(yInit[i]))) outsideWritten++;
  }
  const ref = matmulRef(x, xView, c.f16 ? roundToF16(weight) : weight, bias, T, I, O, c.accumulate ? yIn : null);
  return { entryPoint: dispatch.entryPoint, splits: dispatch.splits, parts: dispatch.parts?.map((p) => p.name) ?? null, y, ref, outsideWritten };
}

function expectClose(out: Outcome): void {
  expect(out.y.every(Number.isFinite), 'every output element written and finite').toBe(true);
  expect(out.outsideWritten, 'elements outside the y view left alone').toBe(0);
  expect(relativeError(out.y, out.ref)).toBeLessThanOrEqual(TOLERANCE);
}

describe('matmul.wgsl against its CPU reference (Dawn)', () => {
  // Odd sizes: none a multiple of the 64×64 tile, the 16-wide K step or the 32-thread row group.
  for (const T of [1, 3, 37, 130]) {
    for (const I of [5, 67, 129]) {
      for (const O of [1, 13, 257]) {
        it(`T=${T} I=${I} O=${O}: bias + strided views, then no bias + dense`, async (test) => {
          if (!ctx) return test.skip(skipReason);
          const caseSeed = seed + T * 1_000_003 + I * 7919 + O;
          const viewed = await runCase(ctx, { T, I, O, bias: true, strided: true }, caseSeed);
          // Decode shapes take the barrier-free rowdot kernel on software adapters, matvec on GPUs.
          expect(viewed.entryPoint).toBe(T <= 4 ? (ctx.adapter.software ? 'rowdot' : 'matvec') : 'tiled');
          expectClose(viewed);
          expectClose(await runCase(ctx, { T, I, O, bias: false, strided: false }, caseSeed + 17));
        });
      }
    }
  }

  // Decode shapes with I % 4 = 0: vec4 loads when the X view is aligned, scalar loads when not.
  // Threads per output row: 32 for I < 1024, 256 for I ≥ 1024 with O < 1024, else 128.
  for (const T of [1, 2, 4]) {
    for (const [I, O] of [
      [4, 13],
      [132, 257],
      [1028, 19],
      [1029, 7], // I % 4 ≠ 0: scalar loads whatever the view
    ] as const) {
      it(`matvec T=${T} I=${I} O=${O}: vec4 when aligned, scalar when not`, async (test) => {
        if (!ctx) return test.skip(skipReason);
        const caseSeed = seed + T * 31 + I * 7 + O;
        const vec4 = await runCase(ctx, { T, I, O, bias: true, strided: true, aligned: true, variant: 'matvec' }, caseSeed);
        expect(vec4.entryPoint).toBe(I % 4 === 0 ? 'matvec_vec4' : 'matvec');
        expectClose(vec4);
        const scalar = await runCase(ctx, { T, I, O, bias: false, strided: true, variant: 'matvec' }, caseSeed + 1);
        expect(scalar.entryPoint).toBe('matvec');
        expectClose(scalar);
      });
    }
  }

  it('matvec T=2 I=1028 O=1025 (128 threads per row): vec4 and scalar', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const vec4 = await runCase(ctx, { T: 2, I: 1028, O: 1025, bias: true, strided: true, aligned: true, variant: 'matvec' }, seed + 77);
    expect(vec4.entryPoint).toBe('matvec_vec4');
    expectClose(vec4);
    const scalar = await runCase(ctx, { T: 2, I: 1028, O: 1025, bias: true, strided: true, variant: 'matvec' }, seed + 78);
    expect(scalar.entryPoint).toBe('matvec');
    expectClose(scalar);
  });

  it('tiled, matvec and rowdot agree where they all apply (forced variants)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    for (const T of [1, 4]) {
      const tiled = await runCase(ctx, { T, I: 67, O: 65, bias: true, strided: true, variant: 'tiled' }, seed + T);
      expect(tiled.entryPoint).toBe('tiled');
      expectClose(tiled);
      const matvec = await runCase(ctx, { T, I: 67, O: 65, bias: true, strided: true, variant: 'matvec' }, seed + T);
      expect(matvec.entryPoint).toBe('matvec');
      expectClose(matvec);
      const rowdot = await runCase(ctx, { T, I: 67, O: 65, bias: true, strided: true, variant: 'rowdot' }, seed + T);
      expect(rowdot.entryPoint).toBe('rowdot');
      expectClose(rowdot);
    }
  });

  // Split K (partials, then reduce_splits): odd K per split, the last split short, bias, views,
  // accumulate and f16 weights; and the automatic choice for a narrow x_proj-like shape.
  it('tiled with split K agrees with the reference (forced splits; auto for a narrow output)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    for (const [T, I, O, splits, extra] of [
      [37, 300, 13, 3, {}],
      [70, 129, 65, 2, { accumulate: true }],
      [5, 67, 9, 5, { f16: true, aligned: true }],
      [130, 1000, 80, 7, { accumulate: true, f16: true }],
    ] as const) {
      const out = await runCase(ctx, { T, I, O, bias: true, strided: true, variant: 'tiled', splits, ...extra }, seed + T + I + O);
      expect(out.entryPoint).toBe('tiled');
      expect(out.splits, `T=${T} I=${I} O=${O}`).toBeGreaterThan(1);
      expectClose(out);
    }
    const auto = await runCase(ctx, { T: 9, I: 1536, O: 80, bias: false, strided: false }, seed + 3);
    expect(auto.splits).toBeGreaterThan(1);
    expectClose(auto);
  });

  it("a split product's two kernels, each in a pass of its own (the bench's breakdown), give what the op gives", async (test) => {
    if (!ctx) return test.skip(skipReason);
    const c = { T: 37, I: 300, O: 13, bias: true, strided: true, variant: 'tiled', splits: 3, accumulate: true } as const;
    const together = await runCase(ctx, c, seed + 41);
    const apart = await runCase(ctx, { ...c, apart: true }, seed + 41);
    expect(together.parts).toEqual(['tiled', 'reduce_splits']);
    expect(Array.from(apart.y)).toEqual(Array.from(together.y));
    expectClose(apart);
    expect((await runCase(ctx, { T: 9, I: 64, O: 20, bias: false, strided: false, variant: 'tiled' }, seed + 42)).parts).toBeNull();
  });

  // tiled_wide (128×128 tiles, 8×8 per thread): partial tiles in both directions, views, bias,
  // accumulate, f16 weights and split K.
  it('tiled_wide agrees with the reference (odd sizes, accumulate, f16, split K)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    for (const [T, I, O, extra] of [
      [130, 67, 257, {}],
      [5, 129, 131, { accumulate: true }],
      [201, 35, 70, { f16: true, aligned: true }],
      [37, 300, 13, { splits: 3 }],
      [129, 1000, 130, { splits: 4, accumulate: true, f16: true }],
    ] as const) {
      const out = await runCase(ctx, { T, I, O, bias: true, strided: true, variant: 'tiled_wide', ...extra }, seed + 3 * T + I + O);
      expect(out.entryPoint).toBe('tiled_wide');
      if ('splits' in extra) expect(out.splits).toBeGreaterThan(1);
      expectClose(out);
    }
  });

  it('accumulate adds X·Wᵀ + bias to Y, in both kernels', async (test) => {
    if (!ctx) return test.skip(skipReason);
    for (const T of [2, 37]) {
      expectClose(await runCase(ctx, { T, I: 67, O: 13, bias: true, strided: true, accumulate: true }, seed + 100 + T));
    }
  });

  // f16 weight storage: every kernel, odd sizes (odd I makes rows straddle u32 words), against the
  // reference with W rounded to f16 first — so the fp32 tolerance still holds.
  it('f16 weights: tiled, matvec (scalar and vec4), rowdot on odd sizes', async (test) => {
    if (!ctx) return test.skip(skipReason);
    for (const [T, I, O, variant] of [
      [37, 67, 65, 'tiled'],
      [130, 129, 13, 'tiled'],
      [1, 67, 65, 'matvec'],
      [3, 67, 257, 'rowdot'],
      [2, 1029, 7, 'matvec'],
      [1, 136, 257, 'matvec'], // I % 8 = 0: 16-byte loads of 8 halves
      [4, 1032, 19, 'matvec'],
      [3, 132, 9, 'matvec'], // I % 4 = 0 but not 8: scalar path
    ] as const) {
      const out = await runCase(ctx, { T, I, O, bias: true, strided: true, aligned: true, variant, f16: true }, seed + T * 13 + I + O);
      const expected = variant === 'matvec' ? (I % 8 === 0 ? 'matvec_vec4' : 'matvec') : variant;
      expect(out.entryPoint, `T=${T} I=${I} O=${O}`).toBe(expected);
      expectClose(out);
    }
    expectClose(await runCase(ctx, { T: 2, I: 67, O: 13, bias: true, strided: true, accumulate: true, f16: true }, seed + 5));
  });

  it('reuses pipelines across shapes (shapes travel in uniforms)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    await runCase(ctx, { T: 2, I: 5, O: 3, bias: true, strided: false }, seed);
    await runCase(ctx, { T: 9, I: 5, O: 3, bias: true, strided: false }, seed);
    const before = ctx.pipelines.size;
    await runCase(ctx, { T: 3, I: 33, O: 70, bias: false, strided: true }, seed + 1);
    await runCase(ctx, { T: 70, I: 33, O: 9, bias: false, strided: true }, seed + 2);
    expect(ctx.pipelines.size).toBe(before);
  });

  it('rejects bad shapes and buffers, naming the buffer', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const device = ctx.device;
    const small = storageBuffer(device, 'Test.small', 16);
    const ok = storageBuffer(device, 'Test.ok', 4 * 1000);
    const other = storageBuffer(device, 'Test.other', 4 * 1000);
    const shape = { tokens: 4, inFeatures: 10, outFeatures: 10 };
    expect(() => matmul(ctx!, shape, { x: small, weight: ok, y: other })).toThrow(/Matmul: x \(Test\.small\) holds 16 bytes, needs 160/);
    expect(() => matmul(ctx!, shape, { x: ok, weight: small, y: other })).toThrow(/weight \(Test\.small\) holds 16 bytes, needs 400/);
    expect(() => matmul(ctx!, shape, { x: ok, weight: ok, bias: small, y: other })).toThrow(/bias \(Test\.small\)/);
    expect(() => matmul(ctx!, { ...shape, yOffset: 995 }, { x: ok, weight: ok, y: other })).toThrow(/y \(Test\.other\) holds 4000 bytes, needs 4140/);
    expect(() => matmul(ctx!, shape, { x: ok, weight: other, y: ok })).toThrow(/x and y must be different buffers/);
    expect(() => matmul(ctx!, { ...shape, xStride: 9 }, { x: ok, weight: ok, y: other })).toThrow(/xStride must be an integer ≥ 10/);
    expect(() => matmul(ctx!, { ...shape, tokens: 5, variant: 'matvec' }, { x: ok, weight: ok, y: other })).toThrow(/at most 4 tokens/);
    expect(() => matmul(ctx!, { ...shape, tokens: 0 }, { x: ok, weight: ok, y: other })).toThrow(/tokens must be an integer ≥ 1/);
    for (const b of [small, ok, other]) b.destroy();
  });
});
