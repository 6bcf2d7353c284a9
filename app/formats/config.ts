/**
 * Model configs — transformers `MambaConfig` / `Mamba2Config`, the original `mamba_ssm` config,
 * and (later) GGUF metadata — into one canonical MambaConfig. Missing optional keys take the
 * defaults of the library that wrote the config; missing required keys, a config for another
 * architecture, or inconsistent sizes are ModelFileErrors naming the file.
 */
import { ModelFileError } from './errors.js';

export interface MambaConfig {
  architecture: 'mamba' | 'mamba2';
  /** Which convention the config came in. */
  source: 'transformers' | 'mamba_ssm' | 'gguf';
  dModel: number;
  nLayer: number;
  /** Vocabulary size of the embedding (after padding, for mamba_ssm configs). */
  vocabSize: number;
  dInner: number;
  dState: number;
  dConv: number;
  /** Mamba-1: rank of Δ's low-rank projection. Mamba-2: 0. */
  dtRank: number;
  /** Mamba-2 only (Mamba-1: 0). */
  nHeads: number;
  headDim: number;
  nGroups: number;
  chunkSize: number;
  /** Mamba-2: Δ is clamped to [min, max] (max may be Infinity). */
  timeStepLimit: [number, number];
  /**
   * Mamba-2: channels the gated RMSNorm normalizes over at a time. transformers normalizes over
   * all of d_inner; mamba_ssm (RMSNormGated, group_size = d_inner / ngroups) and llama.cpp per
   * group. Checkpoints are run the way the library that wrote their config runs them. Mamba-1: 0.
   */
  normGroupSize: number;
  normEps: number;
  useBias: boolean;
  useConvBias: boolean;
  tieEmbeddings: boolean;
}

/**
 * JSON.parse that also accepts bare `Infinity`, `-Infinity` and `NaN` (Python's json writes them)
 * and the `{"__float__": "Infinity"}` form.
 */
export function parseConfigJson(file: string, text: string): Record<string, unknown> {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    const word = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9));
    if (word) {
      out += `{"__float__":"${word[1]}"}`;
      i += (word[1] as string).length - 1;
      continue;
    }
    out += c;
  }
  let value: unknown;
  try {
    value = JSON.parse(out);
  } catch (error) {
    throw new ModelFileError(file, `not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const revive = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(revive);
    if (x && typeof x === 'object') {
      const o = x as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0] === '__float__' && typeof o.__float__ === 'string') return Number(o.__float__);
      return Object.fromEntries(keys.map((k) => [k, revive(o[k])]));
    }
    return x;
  };
  const result = revive(value);
  if (typeof result !== 'object' || result === null || Array.isArray(result)) throw new ModelFileError(file, 'expected a JSON object');
  return result as Record<string, unknown>;
}

type Raw = Record<string, unknown>;

function reader(file: string, raw: Raw) {
  const int = (key: string, fallback?: number, from: Raw = raw, path = key): number => {
    const v = from[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ModelFileError(file, `missing required key "${path}"`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ModelFileError(file, `"${path}" must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (key: string, fallback: number, from: Raw = raw, path = key): number => {
    const v = from[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || Number.isNaN(v)) throw new ModelFileError(file, `"${path}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string, fallback: boolean, from: Raw = raw, path = key): boolean => {
    const v = from[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ModelFileError(file, `"${path}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  return { int, num, bool };
}

const KNOWN_OTHERS: [RegExp, string][] = [
  [/llama/i, 'Llama'],
  [/gpt2|gpt_neox|gptj|gpt-neo/i, 'GPT'],
  [/mistral|mixtral/i, 'Mistral'],
  [/rwkv/i, 'RWKV'],
  [/jamba/i, 'Jamba (a hybrid, not supported)'],
  [/falcon_mamba|falconmamba/i, 'Falcon-Mamba (not supported yet)'],
  [/bert/i, 'BERT'],
];

/** Detects the convention and architecture, then builds the canonical config. */
export function canonicalConfig(file: string, raw: Raw): MambaConfig {
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : undefined;
  const archs = Array.isArray(raw.architectures) ? raw.architectures.filter((a): a is string => typeof a === 'string') : [];
  if (modelType === 'mamba' || modelType === 'mamba2') return fromTransformers(file, raw, modelType);
  if (modelType === undefined && ('d_model' in raw || 'ssm_cfg' in raw)) return fromMambaSsm(file, raw);
  if (modelType === undefined && archs.some((a) => /^Mamba2?ForCausalLM$/.test(a))) {
    return fromTransformers(file, raw, archs.some((a) => a.startsWith('Mamba2')) ? 'mamba2' : 'mamba');
  }
  const described = modelType ?? archs[0];
  if (described) {
    const known = KNOWN_OTHERS.find(([re]) => re.test(described));
    throw new ModelFileError(
      file,
      `describes a ${known ? known[1] : `"${described}"`} model${archs[0] ? ` (${archs[0]})` : ''}, not Mamba or Mamba-2`,
    );
  }
  throw new ModelFileError(file, 'is not a Mamba config: no model_type, architectures or d_model');
}

function fromTransformers(file: string, raw: Raw, architecture: 'mamba' | 'mamba2'): MambaConfig {
  const { int, num, bool } = reader(file, raw);
  const dModel = int('hidden_size');
  const nLayer = int('num_hidden_layers');
  const vocabSize = int('vocab_size');
  const expand = num('expand', 2);
  const dInner = Math.trunc(expand * dModel);
  if (raw.intermediate_size !== undefined && raw.intermediate_size !== dInner) {
    // transformers computes intermediate_size from expand; a disagreeing key means a hand-edited config.
    throw new ModelFileError(file, `"intermediate_size" ${JSON.stringify(raw.intermediate_size)} ≠ expand × hidden_size = ${dInner}`);
  }
  const normEps = num('layer_norm_epsilon', 1e-5);
  const dConv = int('conv_kernel', 4);
  if (architecture === 'mamba') {
    const dState = int('state_size', 16);
    const rank = raw.time_step_rank;
    const dtRank = rank === undefined || rank === 'auto' ? Math.ceil(dModel / 16) : int('time_step_rank');
    return {
      architecture, source: 'transformers', dModel, nLayer, vocabSize, dInner, dState, dConv, dtRank,
      nHeads: 0, headDim: 0, nGroups: 0, chunkSize: 0, timeStepLimit: [0, Infinity], normGroupSize: 0, normEps,
      useBias: bool('use_bias', false), useConvBias: bool('use_conv_bias', true), tieEmbeddings: bool('tie_word_embeddings', true),
    };
  }
  const nHeads = int('num_heads', 128);
  const headDim = int('head_dim', 64);
  const nGroups = int('n_groups', 8);
  const dState = int('state_size', 128);
  if (nHeads * headDim !== dInner) {
    throw new ModelFileError(file, `num_heads × head_dim = ${nHeads} × ${headDim} = ${nHeads * headDim} ≠ expand × hidden_size = ${dInner}`);
  }
  if (nGroups < 1 || nHeads % nGroups !== 0) throw new ModelFileError(file, `num_heads ${nHeads} is not a multiple of n_groups ${nGroups}`);
  const limit = raw.time_step_limit;
  let timeStepLimit: [number, number] = [0, Infinity];
  if (limit !== undefined && limit !== null) {
    if (!Array.isArray(limit) || limit.length !== 2 || !limit.every((x) => typeof x === 'number' && !Number.isNaN(x))) {
      throw new ModelFileError(file, `"time_step_limit" must be [min, max], got ${JSON.stringify(limit)}`);
    }
    timeStepLimit = [limit[0] as number, limit[1] as number];
  }
  return {
    architecture, source: 'transformers', dModel, nLayer, vocabSize, dInner, dState, dConv, dtRank: 0,
    nHeads, headDim, nGroups, chunkSize: int('chunk_size', 256), timeStepLimit, normGroupSize: dInner, normEps,
    useBias: bool('use_bias', false), useConvBias: bool('use_conv_bias', true), tieEmbeddings: bool('tie_word_embeddings', false),
  };
}

function fromMambaSsm(file: string, raw: Raw): MambaConfig {
  const { int, num, bool } = reader(file, raw);
  const ssm = (raw.ssm_cfg ?? {}) as Raw;
  if (typeof ssm !== 'object' || Array.isArray(ssm)) throw new ModelFileError(file, '"ssm_cfg" must be an object');
  const architecture = ssm.layer === 'Mamba2' ? 'mamba2' : 'mamba';
  const dModel = int('d_model');
  const nLayer = int('n_layer');
  const pad = int('pad_vocab_size_multiple', 8);
  let vocabSize = int('vocab_size');
  if (pad > 1 && vocabSize % pad !== 0) vocabSize += pad - (vocabSize % pad);
  const expand = num('expand', 2, ssm, 'ssm_cfg.expand');
  const dInner = Math.trunc(expand * dModel);
  const dConv = int('d_conv', 4, ssm, 'ssm_cfg.d_conv');
  const normEps = num('norm_epsilon', 1e-5);
  const tieEmbeddings = bool('tie_embeddings', true);
  if (architecture === 'mamba') {
    const rank = ssm.dt_rank;
    return {
      architecture, source: 'mamba_ssm', dModel, nLayer, vocabSize, dInner,
      dState: int('d_state', 16, ssm, 'ssm_cfg.d_state'), dConv,
      dtRank: rank === undefined || rank === 'auto' ? Math.ceil(dModel / 16) : int('dt_rank', undefined, ssm, 'ssm_cfg.dt_rank'),
      nHeads: 0, headDim: 0, nGroups: 0, chunkSize: 0, timeStepLimit: [0, Infinity], normGroupSize: 0, normEps,
      useBias: bool('bias', false, ssm, 'ssm_cfg.bias'), useConvBias: bool('conv_bias', true, ssm, 'ssm_cfg.conv_bias'), tieEmbeddings,
    };
  }
  const headDim = int('headdim', 64, ssm, 'ssm_cfg.headdim');
  if (dInner % headDim !== 0) throw new ModelFileError(file, `d_inner ${dInner} is not a multiple of ssm_cfg.headdim ${headDim}`);
  const nHeads = dInner / headDim;
  const nGroups = int('ngroups', 1, ssm, 'ssm_cfg.ngroups');
  if (nGroups < 1 || nHeads % nGroups !== 0) throw new ModelFileError(file, `${nHeads} heads are not a multiple of ssm_cfg.ngroups ${nGroups}`);
  const limit = Array.isArray(ssm.dt_limit) ? (ssm.dt_limit as number[]) : [0, Infinity];
  return {
    architecture, source: 'mamba_ssm', dModel, nLayer, vocabSize, dInner,
    dState: int('d_state', 128, ssm, 'ssm_cfg.d_state'), dConv, dtRank: 0, nHeads, headDim, nGroups,
    chunkSize: int('chunk_size', 256, ssm, 'ssm_cfg.chunk_size'),
    timeStepLimit: [limit[0] ?? 0, limit[1] ?? Infinity], normGroupSize: dInner / nGroups, normEps,
    useBias: bool('bias', false, ssm, 'ssm_cfg.bias'), useConvBias: bool('conv_bias', true, ssm, 'ssm_cfg.conv_bias'), tieEmbeddings,
  };
}
