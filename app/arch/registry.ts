/**
 * The architectures the studio runs, in one list: the only place a model's architecture is
 * chosen. Configs are detected and read here (transformers, mamba_ssm), GGUF metadata in gguf.ts,
 * tensors checked in tensors.ts — all through the specs below; models are built on the GPU by
 * build.ts. Adding an architecture: a folder app/arch/<name>/ exporting its ArchitectureSpec and
 * its mixer, one line in ARCHITECTURES, and the line build.ts's MIXERS then demands (the compiler
 * checks that every registered architecture has one); docs/ARCHITECTURE.md has the checklist.
 */
import { configReader, type Raw } from '../formats/config.js';
import { clip, ModelFileError, preview } from '../formats/errors.js';
import { configBlocks, type BlockSpec, type MambaConfig } from '../model/config.js';
import type { TraceLayout } from '../model/mixer.js';
import { forwardRef, type ForwardRefOutput, type Linear, type MixerRef, type WeightTable } from '../model/reference.js';
import { attentionRef, mlpRef } from './hybrid/reference.js';
import { falconMamba } from './falcon-mamba/index.js';
import { mamba1 } from './mamba1/index.js';
import { mamba2 } from './mamba2/index.js';
import { mambaSsmHybrid } from './hybrid/blocks.js';
import { graniteHybrid } from './granite-hybrid/index.js';
import { nemotronH } from './nemotron-h/index.js';
import { checkConfigBounds, type ConfigKeys } from './bounds.js';
import type { ArchitectureSpec, BaseConfig } from './spec.js';

export const ARCHITECTURES = [mamba1, mamba2, falconMamba, nemotronH, graniteHybrid] as const;

/** 'mamba' | 'mamba2' | 'falcon_mamba' | 'nemotron_h' | 'granitemoehybrid': the architectures' registry names, derived from the list. */
export type ArchitectureName = (typeof ARCHITECTURES)[number]['name'];

export const ARCHITECTURE_NAMES: readonly ArchitectureName[] = ARCHITECTURES.map((a) => a.name);

const BY_NAME = new Map<string, ArchitectureSpec<ArchitectureName>>(ARCHITECTURES.map((a) => [a.name, a]));

export function isArchitectureName(name: string): name is ArchitectureName {
  return BY_NAME.has(name);
}

/** The spec of a registered architecture (a config's `architecture`, an inspection's). */
export function architectureSpec(name: string): ArchitectureSpec<ArchitectureName> {
  const spec = BY_NAME.get(name);
  if (!spec) throw new Error(`"${name}" is not an architecture the studio runs (it runs ${ARCHITECTURE_NAMES.join(', ')})`);
  return spec;
}

/** An architecture's name for people ("Falcon-Mamba" for "falcon_mamba"); the name itself when it is not registered ("unknown"). */
export function architectureLabel(name: string): string {
  return BY_NAME.get(name)?.label ?? name;
}

/**
 * The architecture a config.json names, without reading the rest of it (bundled entries before
 * inspection): its model_type, else a transformers class, else mamba_ssm's ssm_cfg.layer; or
 * 'unknown'.
 */
export function architectureOf(raw: Raw): ArchitectureName | 'unknown' {
  const type = typeof raw.model_type === 'string' ? raw.model_type.toLowerCase() : '';
  const byType = ARCHITECTURES.find((a) => a.name === type);
  if (byType) return byType.name;
  const archs = Array.isArray(raw.architectures) ? raw.architectures.map(String) : [];
  const byClass = ARCHITECTURES.find((a) => archs.includes(a.transformersClass));
  if (byClass) return byClass.name;
  if (!type && ('d_model' in raw || 'ssm_cfg' in raw)) {
    const ssm = raw.ssm_cfg;
    const layer = ssm && typeof ssm === 'object' && !Array.isArray(ssm) ? ((ssm as Raw).layer ?? 'Mamba1') : 'Mamba1';
    return ARCHITECTURES.find((a) => a.mambaSsmLayer === layer)?.name ?? 'unknown';
  }
  return 'unknown';
}

/** Model types that are not in the registry, named in the error that refuses them. */
const KNOWN_OTHERS: [RegExp, string][] = [
  [/llama/i, 'Llama'],
  [/gpt2|gpt_neox|gptj|gpt-neo/i, 'GPT'],
  [/mistral|mixtral/i, 'Mistral'],
  [/rwkv/i, 'RWKV'],
  [/jamba/i, 'Jamba (a hybrid, not supported)'],
  [/zamba/i, 'Zamba (a hybrid, not supported)'],
  [/falcon_h1/i, 'Falcon-H1 (a hybrid, not supported)'],
  [/bamba/i, 'Bamba (a hybrid, not supported)'],
  [/bert/i, 'BERT'],
];

const LABELS = () => ARCHITECTURES.map((a) => a.label).join(' or ');

/**
 * Detects the convention and architecture of a config.json, then builds the canonical config and
 * checks it against the bounds (bounds.ts) before anything uses it.
 */
export function canonicalConfig(file: string, raw: Raw): MambaConfig {
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : undefined;
  const archs = Array.isArray(raw.architectures) ? raw.architectures.filter((a): a is string => typeof a === 'string') : [];
  const byType = modelType !== undefined ? BY_NAME.get(modelType) : undefined;
  if (byType) return fromTransformers(file, raw, byType);
  if (modelType === undefined && ('d_model' in raw || 'ssm_cfg' in raw)) return fromMambaSsm(file, raw);
  const byClass = modelType === undefined ? ARCHITECTURES.find((a) => archs.includes(a.transformersClass)) : undefined;
  if (byClass) return fromTransformers(file, raw, byClass);
  const described = modelType ?? archs[0];
  if (described) {
    const known = KNOWN_OTHERS.find(([re]) => re.test(described));
    throw new ModelFileError(file, `describes a ${known ? known[1] : preview(described)} model${archs[0] ? ` (${clip(archs[0])})` : ''}, not ${LABELS()}`);
  }
  throw new ModelFileError(file, 'is not a Mamba config: no model_type, architectures or d_model');
}

function fromTransformers(file: string, raw: Raw, spec: ArchitectureSpec): MambaConfig {
  const read = configReader(file, raw);
  if (spec.transformersBase) {
    const base = spec.transformersBase({ file, raw, read });
    const config = spec.configFromTransformers({ file, raw, read, base });
    checkConfigBounds(file, config, spec, { dModel: 'hidden_size', vocabSize: 'vocab_size', normEps: 'layer_norm_epsilon', ...spec.configKeys.transformers });
    return config;
  }
  const { int, num } = read;
  const dModel = int('hidden_size');
  const nLayer = int('num_hidden_layers');
  const vocabSize = int('vocab_size');
  const fromExpand = Math.trunc(num('expand', 2) * dModel);
  let dInner = fromExpand;
  if (raw.intermediate_size !== undefined && spec.intermediateSizeWins) {
    dInner = int('intermediate_size');
  } else if (raw.intermediate_size !== undefined && raw.intermediate_size !== fromExpand) {
    // transformers computes intermediate_size from expand; a disagreeing key means a hand-edited config.
    throw new ModelFileError(file, `"intermediate_size" ${preview(raw.intermediate_size)} ≠ expand × hidden_size = ${fromExpand}`);
  }
  const normEps = num('layer_norm_epsilon', 1e-5);
  const dConv = int('conv_kernel', 4);
  const base: BaseConfig = { source: 'transformers', dModel, nLayer, vocabSize, dInner, dConv, normEps };
  const config = spec.configFromTransformers({ file, raw, read, base });
  const keys: ConfigKeys = {
    dModel: 'hidden_size', nLayer: 'num_hidden_layers', vocabSize: 'vocab_size', dConv: 'conv_kernel', normEps: 'layer_norm_epsilon',
    dInner: raw.intermediate_size !== undefined ? 'intermediate_size' : 'expand × hidden_size',
    ...spec.configKeys.transformers,
  };
  checkConfigBounds(file, config, spec, keys);
  return config;
}

/**
 * A mamba_ssm config (MambaLMHeadModel's MambaConfig as JSON). `keyNames` renames the keys that
 * bound errors name (mistral-params.ts reads params.json through this, naming its own keys).
 */
export function fromMambaSsm(file: string, raw: Raw, keyNames: ConfigKeys = {}): MambaConfig {
  const read = configReader(file, raw);
  const { int, num, bool } = read;
  const ssm = (raw.ssm_cfg ?? {}) as Raw;
  if (typeof ssm !== 'object' || Array.isArray(ssm)) throw new ModelFileError(file, '"ssm_cfg" must be an object');
  const layer = ssm.layer ?? 'Mamba1';
  const spec = ARCHITECTURES.find((a) => a.mambaSsmLayer === layer);
  if (!spec) {
    const layers = ARCHITECTURES.flatMap((a) => (a.mambaSsmLayer === null ? [] : [`"${a.mambaSsmLayer}"`]));
    throw new ModelFileError(file, `"ssm_cfg.layer" is ${preview(layer)}; the studio runs ${layers.join(', ')}`);
  }
  const dModel = int('d_model');
  const nLayer = int('n_layer');
  const pad = int('pad_vocab_size_multiple', 8);
  let vocabSize = int('vocab_size');
  if (pad > 1 && vocabSize % pad !== 0) vocabSize += pad - (vocabSize % pad);
  const dInner = Math.trunc(num('expand', 2, ssm, 'ssm_cfg.expand') * dModel);
  const dConv = int('d_conv', 4, ssm, 'ssm_cfg.d_conv');
  const normEps = num('norm_epsilon', 1e-5);
  const base: BaseConfig = { source: 'mamba_ssm', dModel, nLayer, vocabSize, dInner, dConv, normEps };
  let config = spec.configFromMambaSsm({ file, raw, read, base, ssm, tieEmbeddings: bool('tie_embeddings', true) });
  const hybrid = mambaSsmHybrid(file, raw, read, nLayer);
  if (hybrid) config = { ...config, nLayer: hybrid.blocks.length, hybrid };
  const keys: ConfigKeys = {
    dModel: 'd_model', nLayer: 'n_layer', dInner: 'ssm_cfg.expand × d_model', dConv: 'ssm_cfg.d_conv', normEps: 'norm_epsilon',
    vocabSize: pad > 1 ? `vocab_size (padded to a multiple of pad_vocab_size_multiple ${pad})` : 'vocab_size',
    ...spec.configKeys.mamba_ssm,
    ...keyNames,
  };
  checkConfigBounds(file, config, spec, keys);
  return config;
}

/** Where Δ, B and C are in a trace of a model with this config (its architecture's layout). */
export function traceLayout(config: MambaConfig): TraceLayout {
  return architectureSpec(config.architecture).traceLayout(config);
}

/** The float64 reference of a whole model of this config (every layer its architecture's mixer reference). */
export function referenceForward(
  config: MambaConfig,
  weights: WeightTable,
  ids: ArrayLike<number>,
  prefix = 'backbone.',
  knockout?: { token: number; layers: readonly number[] | null },
  projection?: Linear,
): ForwardRefOutput {
  const spec = architectureSpec(config.architecture);
  const blocks = configBlocks(config);
  const h = config.hybrid;
  const mixerOf = (l: number): MixerRef => {
    const kind = (blocks[l] as BlockSpec).kind;
    if (kind === 'attention' && h?.attention) return attentionRef(h.attention);
    if (kind === 'mlp' && h?.mlp) return mlpRef(h.mlp);
    return spec.reference;
  };
  return forwardRef(config, weights, ids, mixerOf, prefix, knockout, projection);
}
