/**
 * The weight map: which tensors a config needs, with which shapes, under either naming scheme
 * (transformers `backbone.embeddings.weight`, mamba_ssm `backbone.embedding.weight`), checked
 * against what a file holds. Every missing tensor, every shape mismatch and every extra tensor
 * is reported at once.
 */
import type { MambaConfig } from './config.js';
import { ModelFileError } from './errors.js';

/** Canonical tensor roles, independent of naming scheme. */
export interface TensorSpec {
  /** Name in the file. */
  name: string;
  shape: number[];
  optional?: boolean;
}

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
  const { dModel: D, dInner: Di, dState: N, dConv: K, vocabSize: V } = config;
  const specs: TensorSpec[] = [
    { name: embeddingName, shape: [V, D] },
    { name: `${prefix}norm_f.weight`, shape: [D] },
    { name: 'lm_head.weight', shape: [V, D], optional: true },
  ];
  for (let i = 0; i < config.nLayer; i++) {
    const p = `${prefix}layers.${i}.`;
    const m = `${p}mixer.`;
    specs.push({ name: `${p}norm.weight`, shape: [D] });
    if (config.architecture === 'mamba') {
      const R = config.dtRank;
      specs.push(
        { name: `${m}in_proj.weight`, shape: [2 * Di, D] },
        { name: `${m}conv1d.weight`, shape: [Di, 1, K] },
        { name: `${m}x_proj.weight`, shape: [R + 2 * N, Di] },
        { name: `${m}dt_proj.weight`, shape: [Di, R] },
        { name: `${m}dt_proj.bias`, shape: [Di] },
        { name: `${m}A_log`, shape: [Di, N] },
        { name: `${m}D`, shape: [Di] },
        { name: `${m}out_proj.weight`, shape: [D, Di] },
      );
      if (config.useConvBias) specs.push({ name: `${m}conv1d.bias`, shape: [Di] });
      if (config.useBias) specs.push({ name: `${m}in_proj.bias`, shape: [2 * Di] }, { name: `${m}out_proj.bias`, shape: [D] });
    } else {
      const H = config.nHeads;
      const G = config.nGroups;
      const convDim = Di + 2 * G * N;
      specs.push(
        { name: `${m}in_proj.weight`, shape: [2 * Di + 2 * G * N + H, D] },
        { name: `${m}conv1d.weight`, shape: [convDim, 1, K] },
        { name: `${m}dt_bias`, shape: [H] },
        { name: `${m}A_log`, shape: [H] },
        { name: `${m}D`, shape: [H] },
        { name: `${m}norm.weight`, shape: [Di] },
        { name: `${m}out_proj.weight`, shape: [D, Di] },
      );
      if (config.useConvBias) specs.push({ name: `${m}conv1d.bias`, shape: [convDim] });
      if (config.useBias) specs.push({ name: `${m}in_proj.bias`, shape: [2 * Di + 2 * G * N + H] }, { name: `${m}out_proj.bias`, shape: [D] });
    }
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
