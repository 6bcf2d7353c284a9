/**
 * The weight map: which tensors a config needs, with which shapes, under either naming scheme
 * (transformers `backbone.embeddings.weight`, mamba_ssm `backbone.embedding.weight`), checked
 * against what a file holds. The model's own tensors (embedding, norms, head) are named here; each
 * layer's mixer tensors come from its architecture's spec. Every missing tensor, every shape
 * mismatch and every extra tensor is reported at once.
 */
import { ModelFileError } from '../formats/errors.js';
import type { MambaConfig } from '../model/config.js';
import { architectureSpec } from './registry.js';
import type { TensorSpec } from './spec.js';

export type { TensorSpec };

export interface WeightCheck {
  /** Name prefix in the file ("backbone." or ""), and the embedding's name. */
  embeddingName: string;
  /** True when the file has no lm_head and the head is the embedding. */
  tiedHead: boolean;
  expected: TensorSpec[];
  warnings: string[];
}

export function expectedTensors(config: MambaConfig, embeddingName: string): TensorSpec[] {
  const prefix = embeddingName.replace(/embeddings?\.weight$/, '');
  const { dModel: D, vocabSize: V } = config;
  const specs: TensorSpec[] = [
    { name: embeddingName, shape: [V, D] },
    { name: `${prefix}norm_f.weight`, shape: [D] },
    { name: 'lm_head.weight', shape: [V, D], optional: true },
  ];
  const spec = architectureSpec(config.architecture);
  for (let i = 0; i < config.nLayer; i++) {
    const p = `${prefix}layers.${i}.`;
    specs.push({ name: `${p}norm.weight`, shape: [D] }, ...spec.mixerTensors(config, `${p}mixer.`));
  }
  return specs;
}

const EMBEDDING_NAMES = ['backbone.embeddings.weight', 'backbone.embedding.weight', 'embeddings.weight', 'embedding.weight'];

/**
 * Checks the tensors a file holds against the config. Throws one ModelFileError listing every
 * missing tensor and shape mismatch; extra tensors are warnings.
 */
export function checkWeights(file: string, config: MambaConfig, tensors: ReadonlyMap<string, { shape: number[] }>): WeightCheck {
  const embeddingName = EMBEDDING_NAMES.find((n) => tensors.has(n));
  if (!embeddingName) {
    throw new ModelFileError(file, `no embedding tensor (looked for ${EMBEDDING_NAMES.join(', ')})`);
  }
  const expected = expectedTensors(config, embeddingName);
  const problems: string[] = [];
  for (const spec of expected) {
    const actual = tensors.get(spec.name);
    if (!actual) {
      if (!spec.optional) problems.push(`missing tensor ${spec.name} [${spec.shape.join(', ')}]`);
      continue;
    }
    const same = actual.shape.length === spec.shape.length && actual.shape.every((d, i) => d === spec.shape[i]);
    if (!same) problems.push(`tensor ${spec.name} has shape [${actual.shape.join(', ')}], expected [${spec.shape.join(', ')}]`);
  }
  if (problems.length > 0) {
    throw new ModelFileError(file, `${problems.length} problem(s) with the weights: ${problems.join('; ')}`);
  }
  const known = new Set(expected.map((s) => s.name));
  const warnings = [...tensors.keys()].filter((n) => !known.has(n)).map((n) => `${file}: unexpected tensor ${n} (ignored)`);
  return { embeddingName, tiedHead: !tensors.has('lm_head.weight'), expected, warnings };
}
