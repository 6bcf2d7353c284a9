/** Writes a small, valid model folder (config.json + model.safetensors) for library and loader tests. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { canonicalConfig } from '../../app/arch/registry';
import { expectedTensors } from '../../app/arch/tensors';
import { writeSafetensors, type TestTensor } from './safetensors-writer';

export const TINY_CONFIG = { model_type: 'mamba', hidden_size: 8, num_hidden_layers: 2, vocab_size: 16, state_size: 4 };
/**
 * Its parameter count, by hand: embedding 16×8, norm_f 8, and per layer norm 8, in_proj 32×8,
 * conv1d 16×1×4 + bias 16, x_proj (1+2·4)×16, dt_proj 16×1 + bias 16, A_log 16×4, D 16, out_proj 8×16.
 */
export const TINY_PARAMETERS = 16 * 8 + 8 + 2 * (8 + 256 + 64 + 16 + 144 + 16 + 16 + 64 + 16 + 128);

/** `extra`: more tensors written into model.safetensors (an inspection warns about them). */
export function writeTinyModel(dir: string, config: Record<string, unknown> = TINY_CONFIG, extra: Record<string, TestTensor> = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const canonical = canonicalConfig('config.json', config);
  const tensors: Record<string, TestTensor> = {};
  for (const spec of expectedTensors(canonical, 'backbone.embeddings.weight')) {
    if (spec.optional) continue;
    const n = spec.shape.reduce((a, b) => a * b, 1);
    tensors[spec.name] = { dtype: 'F32', shape: spec.shape, data: Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1)) };
  }
  writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors({ ...tensors, ...extra }));
  return dir;
}
