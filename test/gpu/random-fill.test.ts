/**
 * The bench's GPU weight generator (app/kernels/random-fill.ts, shaders/bench_random.wgsl) writes,
 * in every storage format, bytes that decode — read back and decoded on the CPU with
 * app/formats/float16.ts and app/formats/ggml-quants.ts dequantizeBlocks, written from GGML's
 * layouts independently of the shader — to finite values of the intended magnitude: within ±scale
 * (the formats' rounding aside), reaching near it, not all alike, centred near 0; the f16 scale
 * fields are the positive finite halves blockScales names. Odd block counts (a phantom second
 * block in the last pair) and a buffer filled through several small bindings are covered: the
 * split does not change a byte. randomWeights (the bench's random model) gives each tensor the
 * format app/model/memory.ts tensorWeightFormat gives a checkpoint stored in the asked format (for
 * the block formats a GGUF as llama.cpp quantizes it: x_proj and dt_proj F32), and
 * gpuMemoryNeed's plan counts exactly what it allocates.
 */
import { describe, expect, it } from 'vitest';
import { readBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { decodeHalves, f16ToF32 } from '../../app/formats/float16';
import { dequantizeBlocks } from '../../app/formats/ggml-quants';
import { f32ToF16Bits } from '../../app/kernels/f16';
import { blockScales, randomFill, type FillFormat } from '../../app/kernels/random-fill';
import { formatLayout, isBlockFormat, quantTypeOf, ungroupBlocks, WEIGHT_FORMATS, weightBytes, weightDataBytes, type WeightFormat } from '../../app/kernels/weight-format';
import { buildModel } from '../../app/arch/build';
import { canonicalConfig } from '../../app/arch/registry';
import { randomWeights, shapeConfig, SHAPES } from '../../app/bench/bench';
import { generate } from '../../app/model/generate';
import { Session } from '../../app/model/session';
import { gpuMemoryNeed } from '../../app/model/memory';
import { useTestGpu } from '../support/gpu';

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

const SCALE = 0.05;

/** Elements for a format: an odd number of blocks (25 of 32, 3 of 256), 801 for the float formats. */
const elementsFor = (f: WeightFormat) => (isBlockFormat(f) ? (formatLayout(f).blockSize === 256 ? 3 * 256 : 25 * 32) : 801);

async function fill(format: FillFormat, elements: number, seed: number, windowBytes?: number): Promise<Uint8Array> {
  const storage: WeightFormat = format === 'constant' || format === 'a_log' ? 'f32' : format;
  const size = weightBytes(elements, storage);
  const buffer = ctx!.device.createBuffer({ label: `RandomFillTest.${format}`, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  try {
    randomFill(ctx!, buffer, { format, elements, scale: SCALE, seed, ...(windowBytes ? { windowBytes } : {}) });
    return new Uint8Array(await readBuffer(ctx!.device, buffer));
  } finally {
    buffer.destroy();
  }
}

function decode(format: WeightFormat, bytes: Uint8Array, elements: number): Float32Array {
  const data = isBlockFormat(format) ? ungroupBlocks(format, bytes, elements / formatLayout(format).blockSize) : bytes.subarray(0, weightDataBytes(elements, format));
  if (format === 'f32') return new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  if (format === 'f16' || format === 'bf16') return decodeHalves(data, format === 'f16' ? 'F16' : 'BF16');
  return dequantizeBlocks('random-fill', { name: format, dtype: quantTypeOf(format) }, data, elements);
}

describe('random weights made on the GPU', () => {
  for (const format of WEIGHT_FORMATS) {
    it(`${format}: decodes to finite values of the intended magnitude`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const n = elementsFor(format);
      const bytes = await fill(format, n, 12345);
      const x = decode(format, bytes, n);
      expect(x.length).toBe(n);
      let max = 0;
      let sumAbs = 0;
      let sum = 0;
      for (const v of x) {
        expect(Number.isFinite(v)).toBe(true);
        max = Math.max(max, Math.abs(v));
        sumAbs += Math.abs(v);
        sum += v;
      }
      // Bounds: |x| ≤ scale up to the rounding of the value (bf16: 2^-8) or of the block's f16 d
      // (Q6_K's and Q5_K's d are f16 subnormals at this scale: steps of 2^-24 ≈ 6e-8 on ~1e-5, < 1%).
      expect(max).toBeLessThanOrEqual(SCALE * 1.01);
      expect(max).toBeGreaterThan(SCALE * 0.8);
      // Mean |x|: s/2 for uniform values and Q8_0/Q4_x/Q5_x codes; ≈0.4·s for Q4_K/Q5_K and ≈0.31·s
      // for Q6_K, whose sub-block scales are random in 32..63 (32..127 of 127).
      expect(sumAbs / n).toBeGreaterThan(0.2 * SCALE);
      expect(sumAbs / n).toBeLessThan(0.7 * SCALE);
      // Q4_0's codes centre on −d/2 = −s/16; the others on 0.
      expect(Math.abs(sum / n)).toBeLessThan(0.1 * SCALE);
      // Every block shares d, so Q4_0/Q4_1 take exactly their 16 codes' values; the rest more.
      expect(new Set(x).size).toBeGreaterThanOrEqual(isBlockFormat(format) ? 16 : n / 2);
      if (isBlockFormat(format)) {
        const { typeSize } = formatLayout(format);
        const at = format === 'q6_k' ? 208 : 0;
        const blocks = n / formatLayout(format).blockSize;
        const ggml = ungroupBlocks(format, bytes, blocks);
        const view = new DataView(ggml.buffer, ggml.byteOffset);
        for (let b = 0; b < blocks; b++) {
          const d = view.getUint16(b * typeSize + at, true);
          expect(d).toBe(f32ToF16Bits(blockScales(format, SCALE).d));
          expect(f16ToF32(d)).toBeGreaterThan(0);
          expect(Number.isFinite(f16ToF32(d))).toBe(true);
        }
      }
    });
  }

  it('the same seed gives the same bytes however the buffer is split into bindings; another seed other bytes', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const align = ctx.device.limits.minStorageBufferOffsetAlignment;
    for (const format of ['f32', 'bf16', 'q8_0', 'q6_k'] as const) {
      const { blockSize, typeSize } = formatLayout(format);
      const unit = isBlockFormat(format) ? 2 * typeSize : 4;
      // Windows of the smallest aligned whole number of units: several bindings over the buffer
      // (an odd number of blocks, the last window partial).
      const step = (unit * align) / gcd(unit, align);
      const n = isBlockFormat(format) ? blockSize * (2 * Math.ceil((3 * step) / unit) + 1) : 4099;
      const whole = await fill(format, n, 7);
      const split = await fill(format, n, 7, step);
      expect(weightBytes(n, format) / step).toBeGreaterThan(2);
      expect(Buffer.from(split).equals(Buffer.from(whole))).toBe(true);
      const other = await fill(format, n, 8);
      expect(Buffer.from(other).equals(Buffer.from(whole))).toBe(false);
    }
  });

  it('constant and A_log fills (fp32)', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const ones = new Float32Array((await fill('constant', 33, 1)).buffer);
    expect([...ones.subarray(0, 33)].every((v) => v === Math.fround(SCALE))).toBe(true);
    const aLog = new Float32Array((await fill('a_log', 4096, 1)).buffer);
    expect(Math.min(...aLog)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...aLog)).toBeLessThan(Math.log(16));
    expect(Math.max(...aLog)).toBeGreaterThan(Math.log(15));
  });
});

describe('randomWeights: a random model in a storage format', () => {
  it('gives each tensor the format tensorWeightFormat gives a checkpoint of that format, and the plan counts what it allocates', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const config = shapeConfig('tiny-k');
    for (const [weights, expected] of [
      ['f16', { emb: 'f16', inProj: 'f16', xProj: 'f16', dtProj: 'f16' }],
      ['bf16', { emb: 'bf16', inProj: 'bf16', xProj: 'bf16', dtProj: 'bf16' }],
      ['q8_0', { emb: 'q8_0', inProj: 'q8_0', xProj: 'f32', dtProj: 'f32' }],
      ['q4_k_m', { emb: 'q6_k', inProj: 'q4_k', xProj: 'f32', dtProj: 'f32' }],
    ] as const) {
      const { inspection, weights: w } = randomWeights(ctx, config, 3, weights);
      try {
        const f = (name: string) => w.formats?.get(name) ?? 'f32';
        const names = ['backbone.embeddings.weight', 'backbone.layers.0.mixer.in_proj.weight', 'backbone.layers.1.mixer.x_proj.weight', 'backbone.layers.1.mixer.dt_proj.weight'];
        expect(names.map(f), weights).toEqual([expected.emb, expected.inProj, expected.xProj, expected.dtProj]);
        for (const vector of ['backbone.layers.0.mixer.A_log', 'backbone.layers.0.mixer.D', 'backbone.layers.0.norm.weight', 'backbone.norm_f.weight']) expect(f(vector)).toBe('f32');
        let total = 0;
        for (const [name, buffer] of w.buffers) {
          const shape = w.shapes.get(name)!;
          expect(buffer.size).toBe(weightBytes(shape.reduce((a, b) => a * b, 1), f(name)));
          total += buffer.size;
        }
        expect(w.bytesOnGpu).toBe(total);
        expect(gpuMemoryNeed(inspection, { weightFormat: 'auto' }).weights).toBe(total);
        const norm = new Float32Array(await readBuffer(ctx.device, w.buffers.get('backbone.norm_f.weight')!));
        expect([...norm].every((v) => v === 1)).toBe(true);
        const aLog = new Float32Array(await readBuffer(ctx.device, w.buffers.get('backbone.layers.1.mixer.A_log')!));
        expect(Math.min(...aLog)).toBeGreaterThanOrEqual(0);
        expect(Math.max(...aLog)).toBeLessThan(Math.log(16));
      } finally {
        w.destroy();
      }
    }
  });
});

describe('randomWeights: an embedding larger than one binding', () => {
  it('is split into row ranges as the loader splits it, the plan counting the parts, and the model decodes', async (test) => {
    if (!ctx) return test.skip(skipReason);
    // tiny with a 1,024-token vocabulary: the embedding (1,024 × 64, 69,632 bytes as Q8_0) is the one
    // tensor over the limit (in_proj: 17,408 bytes); 68 bytes a row → 256 rows (17,408 bytes) a part.
    const config = canonicalConfig('shape tiny, vocab 1024', { ...SHAPES.tiny, vocab_size: 1024 });
    const limit = 20_000;
    const { inspection, weights: w } = randomWeights(ctx, config, 5, 'q8_0', limit);
    try {
      expect(w.buffers.has('backbone.embeddings.weight')).toBe(false);
      const parts = w.parts?.get('backbone.embeddings.weight') ?? [];
      expect(parts.map((p) => [p.firstRow, p.rows])).toEqual([[0, 256], [256, 256], [512, 256], [768, 256]]);
      for (const p of parts) expect(p.buffer.size).toBe(weightBytes(256 * 64, 'q8_0'));
      expect(gpuMemoryNeed(inspection, { weightFormat: 'auto', bindingLimit: limit }).weights).toBe(w.bytesOnGpu);
      const rows = dequantizeBlocks('part', { name: 'part', dtype: 'Q8_0' }, ungroupBlocks('q8_0', new Uint8Array(await readBuffer(ctx.device, parts[3]!.buffer)), (256 * 64) / 32));
      expect(Math.max(...rows.map(Math.abs))).toBeLessThanOrEqual(1 / 8); // scale 1/√64
      expect(Math.max(...rows.map(Math.abs))).toBeGreaterThan(0.8 / 8);
      const model = buildModel(ctx, inspection, w, 8);
      const session = new Session(ctx, model);
      try {
        const run = await generate(ctx, session, [1, 2, 3], { maxTokens: 3, temperature: 0 });
        expect(run.ids.length).toBe(3);
        for (const id of run.ids) expect(id >= 0 && id < config.vocabSize).toBe(true);
      } finally {
        session.destroy();
        model.destroy();
      }
    } finally {
      w.destroy();
    }
  });
});

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
