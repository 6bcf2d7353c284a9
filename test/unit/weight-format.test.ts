import { describe, expect, it } from 'vitest';
import type { TensorLocation } from '../../app/model/inspection';
import { resolveWeightFormat, storedAsF16 } from '../../app/model/memory';

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

describe('resolveWeightFormat: the weights on the GPU', () => {
  it("'auto' keeps an F16 checkpoint's halves (the small tensors may be F32, as they often are)", () => {
    expect(resolveWeightFormat('auto', inspection('F16'))).toBe('f16');
    expect(resolveWeightFormat('auto', inspection('F16', 'F16'))).toBe('f16');
  });

  it("'auto' is fp32 for F32 and BF16 checkpoints, and when any big matrix is not F16", () => {
    expect(resolveWeightFormat('auto', inspection('F32'))).toBe('f32');
    // BF16 → f16 could overflow (BF16 has fp32's exponent range): widened to fp32 instead.
    expect(resolveWeightFormat('auto', inspection('BF16'))).toBe('f32');
    expect(resolveWeightFormat('auto', inspection('F16', 'F32', { 'backbone.layers.0.mixer.out_proj.weight': 'F32' }))).toBe('f32');
    expect(resolveWeightFormat('auto', inspection('F16', 'F32', { 'backbone.embeddings.weight': 'Q8_0' }))).toBe('f32');
  });

  it('an explicit choice is what the user asked for, whatever the file holds', () => {
    expect(resolveWeightFormat('f32', inspection('F16'))).toBe('f32');
    expect(resolveWeightFormat('f16', inspection('F32'))).toBe('f16');
    expect(resolveWeightFormat('f16', inspection('BF16'))).toBe('f16');
  });

  it("'auto' with no big matrix at all is fp32", () => {
    expect(resolveWeightFormat('auto', { tensors: new Map(), embeddingName: 'e' })).toBe('f32');
  });
});
