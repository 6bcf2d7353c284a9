/**
 * A small Mamba-1 with random weights scaled so every term matters (Δ spanning ~1e-3..1, A from
 * −exp(log U(0.3, 8)), D and biases non-trivial), written as config.json + model.safetensors.
 * A Mamba-2 config works too (its per-head dt_bias drawn like Mamba-1's dt_proj.bias, its gated
 * norm like the block norms): `writeRandomCheckpoint`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { canonicalConfig } from '../../app/arch/registry';
import { expectedTensors } from '../../app/arch/tensors';
import { writeSafetensors, type TestTensor } from './safetensors-writer';
import { seededRandom } from '../../app/random';

/** The project's seeded generator (app/random.ts), under the name the tests use. */
export const mulberry32 = seededRandom;

export function writeRandomCheckpoint(dir: string, raw: Record<string, unknown>, seed: number): void {
  const config = canonicalConfig('config.json', raw);
  const rand = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const { dModel: D, dInner: Di, dtRank: R } = config;
  const tensors: Record<string, TestTensor> = {};
  const embeddingName = 'backbone.embeddings.weight';
  for (const spec of expectedTensors(config, embeddingName)) {
    if (spec.optional && config.tieEmbeddings) continue;
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const name = spec.name;
    let gen: () => number;
    if (name.endsWith('A_log')) gen = () => Math.log(0.3 + rand() * 7.7);
    else if (name.endsWith('.D')) gen = () => -1 + rand() * 2.5;
    else if (name.endsWith('dt_proj.bias') || name.endsWith('mixer.dt_bias')) gen = () => {
      const target = Math.exp(Math.log(2e-3) + rand() * (Math.log(0.5) - Math.log(2e-3)));
      return target + Math.log(-Math.expm1(-target)); // softplus⁻¹
    };
    else if (name.endsWith('norm.weight') || name.endsWith('norm_f.weight')) gen = () => 0.6 + rand() * 0.8;
    else if (name.endsWith('in_proj.weight')) gen = () => normal() / Math.sqrt(D);
    else if (name.endsWith('x_proj.weight')) gen = () => (1.2 * normal()) / Math.sqrt(Di);
    else if (name.endsWith('dt_proj.weight')) gen = () => (1.6 * normal()) / Math.sqrt(R);
    else if (name.endsWith('out_proj.weight')) gen = () => (2 * normal()) / Math.sqrt(Di);
    else if (name.endsWith('conv1d.weight')) gen = () => -0.7 + rand() * 1.4;
    else if (name.endsWith('.bias')) gen = () => 0.2 * normal();
    else if (name === 'lm_head.weight') gen = () => (2 * normal()) / Math.sqrt(D);
    else gen = () => 0.5 * normal(); // embeddings
    tensors[name] = { dtype: 'F32', shape: spec.shape, data: Float32Array.from({ length: n }, gen) };
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(raw));
  writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors(tensors));
}

/** The Mamba-1 callers' name for writeRandomCheckpoint. */
export const writeRandomMamba1 = writeRandomCheckpoint;
