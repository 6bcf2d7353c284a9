/**
 * The weight map: which tensors a config needs, with which shapes, under either naming scheme
 * (transformers `backbone.embeddings.weight`, mamba_ssm `backbone.embedding.weight`), checked
 * against what a file holds. The model's own tensors (embedding, norms, head) are named here; each
 * layer's mixer tensors come from its architecture's spec. Missing tensors and shape mismatches
 * are reported at once (the first MAX_LISTED of them, and how many more), extra tensors as
 * warnings (likewise capped).
 */
import { ModelFileError } from '../formats/errors.js';
import { configBlocks, finalNormName, modelPrefix, type MambaConfig } from '../model/config.js';
import { checkConfigBounds } from './bounds.js';
import { hybridBlockTensors } from './hybrid/blocks.js';
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

/** Problems (and unexpected tensors) listed by name in a message; the rest are counted. */
export const MAX_LISTED = 10;

/**
 * The tensors a config needs. The config is checked against the bounds first (bounds.ts; `file`
 * names it in the error), so the loop below is at most CONFIG_BOUNDS.nLayer.max layers long.
 */
export function expectedTensors(config: MambaConfig, embeddingName: string, file = 'the model config'): TensorSpec[] {
  const spec = architectureSpec(config.architecture);
  checkConfigBounds(file, config, spec);
  const prefix = modelPrefix(embeddingName);
  const { dModel: D, vocabSize: V } = config;
  const specs: TensorSpec[] = [
    { name: embeddingName, shape: [V, D] },
    { name: finalNormName(config, prefix), shape: [D] },
    { name: 'lm_head.weight', shape: [V, D], optional: true },
  ];
  for (const block of configBlocks(config)) {
    const mixer = `${prefix}${block.mixer}`;
    specs.push({ name: `${prefix}${block.norm}`, shape: [D] }, ...(block.kind === 'ssm' ? spec.mixerTensors(config, mixer) : hybridBlockTensors(config, block, mixer)));
  }
  return specs;
}

const EMBEDDING_NAMES = ['backbone.embeddings.weight', 'backbone.embedding.weight', 'embeddings.weight', 'embedding.weight', 'model.embeddings.weight', 'model.embed_tokens.weight'];

/**
 * Checks the tensors a file holds against the config. Throws one ModelFileError listing every
 * missing tensor and shape mismatch; extra tensors are warnings.
 */
export function checkWeights(file: string, config: MambaConfig, tensors: ReadonlyMap<string, { shape: number[] }>): WeightCheck {
  const embeddingName = EMBEDDING_NAMES.find((n) => tensors.has(n));
  if (!embeddingName) {
    throw new ModelFileError(file, `no embedding tensor (looked for ${EMBEDDING_NAMES.join(', ')})`);
  }
  const expected = expectedTensors(config, embeddingName, file);
  const problems: string[] = [];
  let count = 0;
  const problem = (text: () => string) => {
    if (count++ < MAX_LISTED) problems.push(text());
  };
  for (const spec of expected) {
    const actual = tensors.get(spec.name);
    if (!actual) {
      if (!spec.optional) problem(() => `missing tensor ${spec.name} [${spec.shape.join(', ')}]`);
      continue;
    }
    const same = actual.shape.length === spec.shape.length && actual.shape.every((d, i) => d === spec.shape[i]);
    if (!same) problem(() => `tensor ${spec.name} has shape [${actual.shape.slice(0, 8).join(', ')}${actual.shape.length > 8 ? ', …' : ''}], expected [${spec.shape.join(', ')}]`);
  }
  if (count > 0) {
    const more = count > MAX_LISTED ? `; and ${count - MAX_LISTED} more` : '';
    throw new ModelFileError(file, `${count} problem(s) with the weights: ${problems.join('; ')}${more}`);
  }
  const known = new Set(expected.map((s) => s.name));
  const extra = [...tensors.keys()].filter((n) => !known.has(n));
  const warnings = extra.slice(0, MAX_LISTED).map((n) => `${file}: unexpected tensor ${n} (ignored)`);
  if (extra.length > MAX_LISTED) warnings.push(`${file}: and ${extra.length - MAX_LISTED} more unexpected tensors (ignored)`);
  return { embeddingName, tiedHead: !tensors.has('lm_head.weight'), expected, warnings };
}
