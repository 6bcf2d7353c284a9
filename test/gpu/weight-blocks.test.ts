/**
 * Weights read in their storage format by the kernels (issue 17, items 1 and 3): bf16 halves and
 * ggml's block formats Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, decoded by
 * shaders/weights.wgsl inside the embedding gather, matmul (matvec_blocks, matvec, rowdot, tiled)
 * and norm-matvec, against the CPU reference decoder app/formats/ggml-quants.ts (written from
 * ggml's documented layouts, tested on hand-worked blocks in test/unit/ggml-quants.test.ts).
 *
 * Blocks are random bytes (every code pattern, min and max codes included) with their f16 scale
 * fields replaced by finite random halves of both signs, plus blocks with all-zero scales and all
 * codes at their maximum; sizes are odd multiples of the block size.
 *
 * Bounds: the embedding gather returns each decoded element; both decoders compute it with one
 * rounding to f32 (the products of an f16 scale with the small integer codes and 6-/8-bit sub-scales
 * are exact in f32), so they agree to 1 ulp (a fused multiply-add may round at a different step):
 * |gpu − cpu| ≤ 2⁻²³·|cpu| per element. The matmuls sum those values in f32 against the CPU's
 * float64 sums of the same values: the fp32 matmul tolerance of test/gpu/matmul.test.ts (1e-4
 * relative) applies unchanged.
 */
import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { f16ToF32 } from '../../app/formats/float16';
import { dequantizeBlocks, QUANT_LAYOUT } from '../../app/formats/ggml-quants';
import { submitDispatches } from '../../app/kernels/dispatch';
import { embedding } from '../../app/kernels/embedding';
import { f32ToF16Bits } from '../../app/kernels/f16';
import { matmul, type MatmulShape } from '../../app/kernels/matmul';
import { matmulRef } from '../../app/kernels/matmul.ref';
import { normMatvec, normMatvecFits, normMatvecMaxIn } from '../../app/kernels/norm-matvec';
import { normMatvecRef } from '../../app/kernels/norm-matvec.ref';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { BLOCK_FORMATS, isBlockFormat, quantTypeOf, uploadBlocks, weightBytes, type BlockFormat, type WeightFormat } from '../../app/kernels/weight-format';
import { seededRandom } from '../../app/random';
import { eachSubgroupReduction, useTestGpu } from '../support/gpu';

const MATMUL_TOLERANCE = 1e-4;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

/** Byte offsets of each f16 field in a block of `format` (the scales d, dmin / m). */
const HALF_FIELDS: Record<BlockFormat, number[]> = {
  q8_0: [0],
  q4_0: [0],
  q4_1: [0, 2],
  q5_0: [0],
  q5_1: [0, 2],
  q4_k: [0, 2],
  q5_k: [0, 2],
  q6_k: [208],
};

/**
 * `rows` rows of `cols` elements in `format`: random bytes, finite random f16 scales of both
 * signs (magnitudes 2⁻¹⁰ … 2⁻²), and two edge blocks: all-zero scales, and every code byte 0xFF.
 */
function randomWeights(format: WeightFormat, rows: number, cols: number, caseSeed: number): { bytes: Uint8Array; values: Float32Array } {
  const count = rows * cols;
  const next = seededRandom(caseSeed);
  if (format === 'bf16') {
    const values = randomF32(count, caseSeed, 1);
    const halves = new Uint16Array(count);
    const out = new Float32Array(count);
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) {
      halves[i] = new Uint32Array(new Float32Array([values[i] as number]).buffer)[0]! >>> 16; // truncated: any bf16 value will do
      bits[i] = (halves[i] as number) << 16;
    }
    return { bytes: new Uint8Array(halves.buffer), values: out };
  }
  const block = format as BlockFormat;
  const { blockSize, typeSize } = QUANT_LAYOUT[quantTypeOf(block)];
  const blocks = count / blockSize;
  const bytes = new Uint8Array(blocks * typeSize).map(() => Math.floor(next() * 256));
  const view = new DataView(bytes.buffer);
  for (let b = 0; b < blocks; b++) {
    for (const at of HALF_FIELDS[block]) {
      const magnitude = 2 ** (-10 + 8 * next());
      view.setUint16(b * typeSize + at, f32ToF16Bits((next() < 0.5 ? -1 : 1) * magnitude), true);
    }
  }
  if (blocks >= 3) {
    for (const at of HALF_FIELDS[block]) view.setUint16(typeSize + at, 0, true); // block 1: zero scales
    const fields = new Set(HALF_FIELDS[block].flatMap((at) => [at, at + 1]));
    for (let i = 0; i < typeSize; i++) if (!fields.has(i)) bytes[2 * typeSize + i] = 0xff; // block 2: max codes
  }
  for (const at of HALF_FIELDS[block]) expect(Number.isFinite(f16ToF32(view.getUint16(at, true)))).toBe(true);
  return { bytes, values: dequantizeBlocks('test', { name: 'w', dtype: quantTypeOf(block) }, bytes, count) };
}

function upload(ctx: GpuContext, format: WeightFormat, bytes: Uint8Array, count: number): GPUBuffer {
  if (isBlockFormat(format)) return uploadBlocks(ctx.device, `Test.${format}`, format, bytes);
  const buffer = storageBuffer(ctx.device, `Test.${format}`, weightBytes(count, format));
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(bytes);
  ctx.device.queue.writeBuffer(buffer, 0, padded);
  return buffer;
}

const FORMATS: WeightFormat[] = ['bf16', ...BLOCK_FORMATS];
const quantumOf = (f: WeightFormat) => (f === 'bf16' ? 32 : QUANT_LAYOUT[quantTypeOf(f as BlockFormat)].blockSize);

describe('weights decoded inside the kernels (Dawn)', () => {
  for (const format of FORMATS) {
    const q = quantumOf(format);
    it(`${format}: the embedding gather returns the CPU decoder's values (1 ulp)`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const V = 7;
      const D = 3 * q;
      const { bytes, values } = randomWeights(format, V, D, seed + 11);
      const table = upload(ctx, format, bytes, V * D);
      const ids = [6, 0, 3, 1, 2, 5, 4, 6];
      const idBuffer = storageBuffer(ctx.device, 'Test.ids', ids.length * 4);
      ctx.device.queue.writeBuffer(idBuffer, 0, new Uint32Array(ids));
      const output = storageBuffer(ctx.device, 'Test.out', ids.length * D * 4);
      const device = ctx.device;
      const d = await withErrorScopes(device, 'test', () => {
        const dispatch = embedding(ctx!, { tokens: ids.length, vocab: V, dim: D, tableFormat: format }, { ids: idBuffer, table, output });
        submitDispatches(device, 'Test', [dispatch]);
        return dispatch;
      });
      const got = await readF32(device, output, ids.length * D);
      d.destroy();
      for (const b of [table, idBuffer, output]) b.destroy();
      let worst = 0;
      for (let t = 0; t < ids.length; t++) {
        for (let i = 0; i < D; i++) {
          const want = values[(ids[t] as number) * D + i] as number;
          const diff = Math.abs((got[t * D + i] as number) - want);
          worst = Math.max(worst, diff - 2 ** -23 * Math.abs(want));
        }
      }
      expect(worst, 'largest excess over 1 ulp').toBeLessThanOrEqual(0);
    });

    it(`${format}: matmul (matvec, rowdot, tiled) against the CPU reference on the decoded values`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const device = ctx.device;
      const cases: { T: number; I: number; O: number; variant: MatmulShape['variant']; aligned: boolean; entry: string }[] = [
        { T: 1, I: 3 * q, O: 37, variant: 'matvec', aligned: true, entry: format === 'bf16' ? 'matvec_vec4' : 'matvec_blocks' },
        { T: 3, I: 5 * q, O: 13, variant: 'matvec', aligned: true, entry: format === 'bf16' ? 'matvec_vec4' : 'matvec_blocks' },
        { T: 2, I: q, O: 19, variant: 'matvec', aligned: false, entry: 'matvec' },
        { T: 4, I: 3 * q, O: 11, variant: 'rowdot', aligned: true, entry: 'rowdot' },
        { T: 37, I: 3 * q, O: 67, variant: 'tiled', aligned: false, entry: 'tiled' },
      ];
      for (const [n, c] of cases.entries()) {
        const caseSeed = seed + 1000 * n + 7;
        const { bytes, values } = randomWeights(format, c.O, c.I, caseSeed);
        const xView = { offset: c.aligned ? 4 : 3, stride: c.I + (c.aligned ? 8 : 5) };
        const x = randomF32(xView.offset + (c.T - 1) * xView.stride + c.I, caseSeed + 1, 1);
        const bias = randomF32(c.O, caseSeed + 2, 1);
        const buffers = { x: uploadF32(device, 'Test.x', x), weight: upload(ctx, format, bytes, c.O * c.I), bias: uploadF32(device, 'Test.bias', bias), y: storageBuffer(device, 'Test.y', c.T * c.O * 4) };
        const shape: MatmulShape = { tokens: c.T, inFeatures: c.I, outFeatures: c.O, xOffset: xView.offset, xStride: xView.stride, variant: c.variant, weightFormat: format };
        const d = await withErrorScopes(device, 'test', () => {
          const dispatch = matmul(ctx!, shape, buffers);
          submitDispatches(device, 'Test', [dispatch]);
          return dispatch;
        });
        const y = await readF32(device, buffers.y, c.T * c.O);
        d.destroy();
        for (const b of Object.values(buffers)) b.destroy();
        expect(d.entryPoint, `${format} case ${n}`).toBe(c.entry);
        const ref = matmulRef(x, xView, values, bias, c.T, c.I, c.O);
        expect(relativeError(y, ref), `${format} ${c.entry} T=${c.T} I=${c.I} O=${c.O}`).toBeLessThanOrEqual(MATMUL_TOLERANCE);
      }
    });

    it(`${format}: norm-matvec (RMSNorm prologue) against the CPU reference on the decoded values`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const device = ctx.device;
      const I = 3 * q;
      const O = 41;
      const { bytes, values } = randomWeights(format, O, I, seed + 23);
      const x = randomF32(I + 4, seed + 24, 2);
      const g = randomF32(I, seed + 25, 1);
      // y at an offset (a part of a split LM head writes its rows' range): the 5 slots before it stay NaN.
      const buffers = { x: uploadF32(device, 'Test.x', x), g: uploadF32(device, 'Test.g', g), weight: upload(ctx, format, bytes, O * I), y: uploadF32(device, 'Test.y', new Float32Array(O + 5).fill(Number.NaN)) };
      // Also with no norm, x at offset 4: the rows read x in place (no prologue).
      const yPlain = uploadF32(device, 'Test.yPlain', new Float32Array(O).fill(Number.NaN));
      const ds = await withErrorScopes(device, 'test', () => {
        const list = [
          normMatvec(ctx!, { inFeatures: I, outFeatures: O, norm: 'rms', eps: 1e-5, xOffset: 4, yOffset: 5, weightFormat: format }, buffers),
          normMatvec(ctx!, { inFeatures: I, outFeatures: O, norm: 'none', xOffset: 4, weightFormat: format }, { x: buffers.x, weight: buffers.weight, y: yPlain }),
        ];
        submitDispatches(device, 'Test', list);
        return list;
      });
      const all = await readF32(device, buffers.y, O + 5);
      const plain = await readF32(device, yPlain, O);
      const y = all.subarray(5);
      expect(Array.from(all.subarray(0, 5)).every(Number.isNaN), 'nothing written before y_offset').toBe(true);
      for (const d of ds) d.destroy();
      for (const b of [...Object.values(buffers), yPlain]) b.destroy();
      const ref = normMatvecRef({ x: x.subarray(4), g, weight: values, norm: 'rms', eps: 1e-5, inFeatures: I, outFeatures: O });
      expect(relativeError(y, ref.y)).toBeLessThanOrEqual(MATMUL_TOLERANCE);
      const refPlain = normMatvecRef({ x: x.subarray(4), weight: values, norm: 'none', inFeatures: I, outFeatures: O });
      expect(relativeError(plain, refPlain.y), 'no norm, x in place').toBeLessThanOrEqual(MATMUL_TOLERANCE);
      // A forced shape with several strides over a row, a partial last one, and 3 rows a group (41 = 13·3 + 2).
      const weight = upload(ctx, format, bytes, O * I);
      const yForced = uploadF32(device, 'Test.yForced', new Float32Array(O).fill(Number.NaN));
      ctx.tuning = { matvec: { threadsPerRow: 4, rows: 3, unroll: 2 } };
      try {
        const forced = await withErrorScopes(device, 'test', () => {
          const d = normMatvec(ctx!, { inFeatures: I, outFeatures: O, norm: 'rms', eps: 1e-5, xOffset: 4, weightFormat: format }, { x: uploadF32(device, 'Test.x2', x), g: uploadF32(device, 'Test.g2', g), weight, y: yForced });
          submitDispatches(device, 'Test', [d]);
          return d;
        });
        forced.destroy();
      } finally {
        ctx.tuning = undefined;
      }
      expect(relativeError(await readF32(device, yForced, O), ref.y), 'threads per row 4, rows 3, unroll 2').toBeLessThanOrEqual(MATMUL_TOLERANCE);
      weight.destroy();
      yForced.destroy();
    });
  }

  it('norm-matvec takes rows as long as the device\'s workgroup memory holds (beyond the old 3,072), and refuses longer ones', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const device = ctx.device;
    const maxIn = normMatvecMaxIn(ctx);
    expect(maxIn).toBeGreaterThan(3072); // 16 KiB (WebGPU's default) holds 3,832; SwiftShader offers 32 KiB
    const I = Math.floor(maxIn / 32) * 32;
    const O = 9;
    const { bytes, values } = randomWeights('q8_0', O, I, seed + 31);
    const x = randomF32(I, seed + 32, 2);
    const g = randomF32(I, seed + 33, 1);
    const buffers = { x: uploadF32(device, 'Test.x', x), g: uploadF32(device, 'Test.g', g), weight: upload(ctx, 'q8_0', bytes, O * I), y: storageBuffer(device, 'Test.y', O * 4) };
    expect(normMatvecFits(ctx, I, 'q8_0')).toBe(true);
    expect(normMatvecFits(ctx, maxIn + 32, 'q8_0')).toBe(false);
    const d = await withErrorScopes(device, 'test', () => {
      const dispatch = normMatvec(ctx!, { inFeatures: I, outFeatures: O, norm: 'rms', eps: 1e-5, weightFormat: 'q8_0' }, buffers);
      submitDispatches(device, 'Test', [dispatch]);
      return dispatch;
    });
    const y = await readF32(device, buffers.y, O);
    d.destroy();
    for (const b of Object.values(buffers)) b.destroy();
    const ref = normMatvecRef({ x, g, weight: values, norm: 'rms', eps: 1e-5, inFeatures: I, outFeatures: O });
    expect(relativeError(y, ref.y)).toBeLessThanOrEqual(MATMUL_TOLERANCE);
  });

  it('the matrix-vector kernels reduce rows with subgroupAdd where the device allows, and with the barrier tree without: both match the reference', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const device = ctx.device;
    const probed = ctx.subgroupSize ?? null;
    console.info(`[weights] subgroup size the kernels use on this adapter: ${probed ?? 'none (barrier tree)'}`);
    if (ctx.features.has('subgroups')) expect(probed, 'SwiftShader and the H200 lay subgroups out in runs of consecutive invocations').not.toBeNull();
    const I = 5 * 32;
    const O = 23;
    const c0 = ctx;
    await eachSubgroupReduction(c0, async (size) => {
      for (const format of ['q4_k', 'q8_0', 'bf16'] as const) {
        const rowI = format === 'q4_k' ? 512 : I;
        const { bytes, values } = randomWeights(format, O, rowI, seed + 41);
        const x = randomF32(2 * rowI, seed + 42, 1);
        const g = randomF32(rowI, seed + 43, 1);
        const buffers = { x: uploadF32(device, 'Test.x', x), g: uploadF32(device, 'Test.g', g), weight: upload(c0, format, bytes, O * rowI), y: storageBuffer(device, 'Test.y', 2 * O * 4), y1: storageBuffer(device, 'Test.y1', O * 4) };
        const ds = await withErrorScopes(device, 'test', () => {
          const list = [
            matmul(c0, { tokens: 2, inFeatures: rowI, outFeatures: O, variant: 'matvec', weightFormat: format }, { x: buffers.x, weight: buffers.weight, y: buffers.y }),
            normMatvec(c0, { inFeatures: rowI, outFeatures: O, norm: 'rms', eps: 1e-5, weightFormat: format }, { x: buffers.x, g: buffers.g, weight: buffers.weight, y: buffers.y1 }),
          ];
          submitDispatches(device, 'Test', list);
          return list;
        });
        const y = await readF32(device, buffers.y, 2 * O);
        const y1 = await readF32(device, buffers.y1, O);
        for (const d of ds) d.destroy();
        for (const b of Object.values(buffers)) b.destroy();
        const what = `${format}, subgroups ${size ?? 'off'}`;
        expect(relativeError(y, matmulRef(x, { offset: 0, stride: rowI }, values, null, 2, rowI, O)), what).toBeLessThanOrEqual(MATMUL_TOLERANCE);
        expect(relativeError(y1, normMatvecRef({ x, g, weight: values, norm: 'rms', eps: 1e-5, inFeatures: rowI, outFeatures: O }).y), what).toBeLessThanOrEqual(MATMUL_TOLERANCE);
      }
    });
  });

  it('a row that is not a whole number of blocks is refused before anything runs', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const weight = storageBuffer(ctx.device, 'Test.w', 4096);
    const x = storageBuffer(ctx.device, 'Test.x', 4096);
    const y = storageBuffer(ctx.device, 'Test.y', 4096);
    expect(() => matmul(ctx!, { tokens: 1, inFeatures: 100, outFeatures: 2, weightFormat: 'q4_k' }, { x, weight, y })).toThrow('Matmul: inFeatures 100 is not a whole number of q4_k blocks (256)');
    expect(() => normMatvec(ctx!, { inFeatures: 48, outFeatures: 2, norm: 'none', weightFormat: 'q8_0' }, { x, weight, y })).toThrow(/multiple of 32/);
    for (const b of [weight, x, y]) b.destroy();
  });
});
