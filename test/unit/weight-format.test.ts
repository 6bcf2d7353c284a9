import { describe, expect, it } from 'vitest';
import type { TensorLocation } from '../../app/model/inspection';
import { describeWeightFormats, storedAsF16, tensorWeightFormat, weightFormats, type WeightChoice } from '../../app/model/memory';

/** A Mamba-1 layer's tensors with the dtypes given (the big matrices by `matrices`, the rest by `small`). */
function inspection(matrices: string, small = 'F32', overrides: Record<string, string> = {}) {
  const shapes: [string, number[]][] = [
    ['backbone.embeddings.weight', [50, 8]],
    ['backbone.layers.0.mixer.in_proj.weight', [32, 8]],
    ['backbone.layers.0.mixer.x_proj.weight', [9, 16]],
    ['backbone.layers.0.mixer.dt_proj.weight', [16, 1]],
    ['backbone.layers.0.mixer.out_proj.weight', [8, 16]],
    ['backbone.layers.0.mixer.A_log', [16, 4]],
    ['backbone.layers.0.mixer.D', [16]],
    ['backbone.layers.0.mixer.conv1d.weight', [16, 1, 4]],
    ['backbone.norm_f.weight', [8]],
  ];
  const tensors = new Map<string, TensorLocation>();
  for (const [name, shape] of shapes) {
    const dtype = overrides[name] ?? (storedAsF16(name, shape, 'backbone.embeddings.weight') ? matrices : small);
    tensors.set(name, { name, shape, file: 'model.safetensors', offset: 0, byteLength: 0, encoding: 'safetensors', dtype } as TensorLocation);
  }
  return { tensors, embeddingName: 'backbone.embeddings.weight' };
}

/** The GPU format of each big matrix for a choice, by short name. */
function formats(choice: WeightChoice, inspected: ReturnType<typeof inspection>) {
  const all = weightFormats(choice, inspected);
  const short = (name: string) => name.replace(/^backbone\.(layers\.0\.mixer\.)?/, '');
  return Object.fromEntries([...all].map(([name, f]) => [short(name), f]));
}

describe('tensorWeightFormat: the weights on the GPU', () => {
  it("'auto' keeps an F16 checkpoint's halves for the big matrices; the small tensors are fp32 whatever the file holds", () => {
    for (const small of ['F32', 'F16']) {
      expect(formats('auto', inspection('F16', small))).toEqual({
        'embeddings.weight': 'f16',
        'in_proj.weight': 'f16',
        'x_proj.weight': 'f16',
        'dt_proj.weight': 'f16',
        'out_proj.weight': 'f16',
        A_log: 'f32',
        D: 'f32',
        'conv1d.weight': 'f32',
        'norm_f.weight': 'f32',
      });
    }
  });

  it("'auto' keeps BF16 as bf16 (no f16 overflow: the kernels widen it exactly), F32 as fp32, each matrix by its own dtype", () => {
    expect(formats('auto', inspection('BF16'))['in_proj.weight']).toBe('bf16');
    expect(formats('auto', inspection('BF16'))['dt_proj.weight']).toBe('bf16');
    expect(formats('auto', inspection('F32'))['in_proj.weight']).toBe('f32');
    const mixed = formats('auto', inspection('F16', 'F32', { 'backbone.layers.0.mixer.out_proj.weight': 'F32' }));
    expect([mixed['in_proj.weight'], mixed['out_proj.weight']]).toEqual(['f16', 'f32']);
  });

  it('an explicit choice is what the user asked for, whatever the file holds', () => {
    expect(formats('f32', inspection('F16'))['in_proj.weight']).toBe('f32');
    expect(formats('f16', inspection('F32'))['in_proj.weight']).toBe('f16');
    expect(formats('f16', inspection('BF16'))['x_proj.weight']).toBe('f16');
    expect(formats('f16', inspection('F16'))['A_log']).toBe('f32');
  });

  it('GGUF block formats stay blocks where matmul / norm-matvec / the embedding read them and rows are whole blocks; else fp32', () => {
    const gguf = (dtype: string, shape: number[], name = 'backbone.layers.0.mixer.in_proj.weight', transform = 'none') =>
      tensorWeightFormat({ name, shape, dtype, encoding: 'gguf', transform } as TensorLocation & { transform: string }, 'auto', 'backbone.embeddings.weight');
    expect(gguf('Q4_K', [64, 512])).toBe('q4_k');
    expect(gguf('Q6_K', [1000, 256], 'backbone.embeddings.weight')).toBe('q6_k');
    expect(gguf('Q8_0', [7, 96], 'lm_head.weight')).toBe('q8_0');
    expect(gguf('Q5_1', [16, 32], 'backbone.layers.3.mixer.x_proj.weight')).toBe('q5_1');
    // Rows that are not whole blocks (ggml never writes them, a hostile file might): decoded to fp32.
    expect(gguf('Q4_K', [256, 4])).toBe('f32');
    // dt_proj is read by the scan's fused step, which takes float formats only.
    expect(gguf('Q8_0', [64, 32], 'backbone.layers.0.mixer.dt_proj.weight')).toBe('f32');
    expect(gguf('F16', [64, 32], 'backbone.layers.0.mixer.dt_proj.weight')).toBe('f16');
    // Vectors and the conv are fp32 in any case; a transformed tensor (ssm_a) is decoded.
    expect(gguf('Q8_0', [32, 1, 4], 'backbone.layers.0.mixer.conv1d.weight')).toBe('f32');
    expect(gguf('F16', [64, 32], 'backbone.layers.0.mixer.in_proj.weight', 'log-neg')).toBe('f32');
    expect(tensorWeightFormat({ name: 'backbone.layers.0.mixer.in_proj.weight', shape: [64, 512], dtype: 'Q4_K', encoding: 'gguf', transform: 'none' } as never, 'f16', 'backbone.embeddings.weight')).toBe('f16');
  });

  it('describeWeightFormats names the big matrices\' formats, the largest first, fp32 last', () => {
    const inspected = inspection('F16', 'F32', { 'backbone.layers.0.mixer.x_proj.weight': 'F32' });
    expect(describeWeightFormats(weightFormats('auto', inspected), inspected)).toBe('f16 + fp32');
    expect(describeWeightFormats(weightFormats('f32', inspected), inspected)).toBe('fp32');
    expect(describeWeightFormats(weightFormats('auto', { tensors: new Map(), embeddingName: 'e' }), { tensors: new Map(), embeddingName: 'e' })).toBe('fp32');
  });
});
