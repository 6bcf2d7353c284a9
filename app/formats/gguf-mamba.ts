/**
 * GGUF (llama.cpp) files of Mamba ("mamba") and Mamba-2 ("mamba2") models: their metadata as a
 * canonical MambaConfig, their tensors under transformers names. The container itself is read by
 * gguf-reader.ts and the tensor data decoded by ggml.ts.
 *
 * Tensors map to transformers names so that `checkWeights` (weights.ts) checks them like any
 * other checkpoint. The conventions of llama.cpp's converter are undone here (see
 * `ggufTensorTable`); the one that changes values is `ssm_a`, which holds A = −exp(A_log):
 * its entry carries `transform: 'log-neg'`, and `applyTransform` (which decode.ts's
 * `tensorDecoder` applies after `dequantize`) returns A_log = log(−a), so the engine sees A_log
 * from every format alike and computes A = −exp(A_log) itself.
 */
import type { MambaConfig } from './config.js';
import { ModelFileError } from './errors.js';
import { isLoadableType, type GgmlTypeName } from './ggml.js';
import { readGgufHeader, type GgufHeader, type GgufTensorInfo } from './gguf-reader.js';
import type { ByteSource } from './source.js';
import { checkWeights, type WeightCheck } from './weights.js';

// ---------------------------------------------------------------------------------------------
// Metadata → canonical config

const OTHER_ARCHITECTURES: [RegExp, string][] = [
  [/^jamba$/, 'Jamba (a hybrid, not supported)'],
  [/^(granitehybrid|falcon-h1|nemotron_h|plamo2|lfm2)/, 'hybrid attention/SSM model (not supported)'],
  [/^rwkv/, 'RWKV'],
  [/^llama|^llama4/, 'Llama'],
  [/^(gpt2|gptj|gptneox|gpt-neox)$/, 'GPT'],
  [/^(mistral|mixtral)/, 'Mistral'],
  [/^(qwen|gemma|phi|falcon|bert|t5|starcoder|bloom|mpt|olmo|command-r|deepseek)/, ''],
];

/**
 * The canonical MambaConfig from GGUF metadata (and, for the vocabulary and the optional tensors,
 * the tensor infos).
 *
 * llama.cpp's converter (conversion/mamba.py, class MambaModel / Mamba2Model, and formerly
 * convert_hf_to_gguf.py) writes `{arch}.embedding_length`, `.block_count`, `.ssm.conv_kernel`,
 * `.ssm.inner_size`, `.ssm.state_size`, `.ssm.time_step_rank`, `.attention.layer_norm_rms_epsilon`
 * and, for mamba2, `.ssm.group_count`. For Mamba-2 it writes `ssm.time_step_rank = d_inner //
 * head_dim`, i.e. the number of heads, and llama.cpp's loader (src/models/mamba2.cpp,
 * `load_arch_tensors`) sizes `ssm_dt.bias` as {dt_rank}, `ssm_a`/`ssm_d` as {1, dt_rank} and
 * `ssm_in` as {n_embd, d_inner + conv_dim + dt_rank}: so nHeads = time_step_rank and
 * headDim = inner_size / nHeads. Mamba-1 files with `mamba.ssm.dt_b_c_rms = true` are
 * Falcon-Mamba (RMS norms on Δ, B, C), which the studio does not run.
 *
 * GGUF stores no chunk size and no Δ limit: chunkSize takes transformers' default 256 and
 * timeStepLimit [0, ∞) (llama.cpp's Mamba-2 graph does not clamp Δ either).
 */
export function ggufToCanonical(file: string, header: GgufHeader): MambaConfig {
  const meta = header.metadata;
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') {
    throw new ModelFileError(file, arch === undefined ? 'GGUF metadata has no general.architecture' : 'general.architecture is not a string');
  }
  if (arch !== 'mamba' && arch !== 'mamba2') {
    const known = OTHER_ARCHITECTURES.find(([re]) => re.test(arch));
    const what = known && known[1] ? `a ${known[1]} model` : 'another kind of model';
    throw new ModelFileError(file, `general.architecture is "${arch}": ${what}, not Mamba or Mamba-2 (the studio opens GGUF architectures "mamba" and "mamba2")`);
  }
  const int = (key: string, min: number, fallback?: number): number => {
    const full = `${arch}.${key}`;
    const v = meta.get(full);
    if (v === undefined) {
      if (fallback === undefined) throw new ModelFileError(file, `missing required metadata key "${full}"`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new ModelFileError(file, `metadata "${full}" must be an integer ≥ ${min}, got ${typeof v === 'bigint' ? v.toString() : JSON.stringify(v)}`);
    }
    return v;
  };
  const dModel = int('embedding_length', 1);
  const nLayer = int('block_count', 1);
  const dConv = int('ssm.conv_kernel', 1);
  const dInner = int('ssm.inner_size', 1);
  const dState = int('ssm.state_size', 1);
  const rank = int('ssm.time_step_rank', 1);
  const epsKey = `${arch}.attention.layer_norm_rms_epsilon`;
  const eps = meta.get(epsKey);
  if (eps === undefined) throw new ModelFileError(file, `missing required metadata key "${epsKey}"`);
  if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) throw new ModelFileError(file, `metadata "${epsKey}" must be a non-negative number, got ${String(eps)}`);

  // Vocabulary: the embedding's rows (what the weights hold), else the tokenizer's size.
  const embd = header.tensors.get('token_embd.weight');
  let vocabSize: number;
  if (embd) {
    if (embd.shape.length !== 2) throw new ModelFileError(file, `tensor "token_embd.weight" has shape [${embd.shape.join(', ')}], expected [vocab, ${dModel}]`);
    vocabSize = embd.shape[0] as number;
  } else {
    const tokens = meta.get('tokenizer.ggml.tokens');
    if (!Array.isArray(tokens)) throw new ModelFileError(file, 'no token_embd.weight tensor and no tokenizer.ggml.tokens: the vocabulary size is unknown');
    vocabSize = tokens.length;
  }
  const has = (suffix: string) => header.tensors.has(`blk.0.${suffix}`);
  const common = {
    source: 'gguf' as const, dModel, nLayer, vocabSize, dInner, dState, dConv, normEps: eps,
    useBias: has('ssm_in.bias'), useConvBias: has('ssm_conv1d.bias'),
    tieEmbeddings: !header.tensors.has('output.weight'),
  };
  if (arch === 'mamba') {
    if (meta.get('mamba.ssm.dt_b_c_rms') === true) {
      throw new ModelFileError(file, 'is a Falcon-Mamba model (mamba.ssm.dt_b_c_rms = true: RMS norms on Δ, B and C), which the studio does not run');
    }
    return {
      ...common, architecture: 'mamba', dtRank: rank, nHeads: 0, headDim: 0, nGroups: 0, chunkSize: 0, timeStepLimit: [0, Infinity], normGroupSize: 0,
    };
  }
  const nHeads = rank;
  const nGroups = int('ssm.group_count', 1);
  if (dInner % nHeads !== 0) throw new ModelFileError(file, `mamba2.ssm.inner_size ${dInner} is not a multiple of the head count (mamba2.ssm.time_step_rank) ${nHeads}`);
  if (nHeads % nGroups !== 0) throw new ModelFileError(file, `the head count (mamba2.ssm.time_step_rank) ${nHeads} is not a multiple of mamba2.ssm.group_count ${nGroups}`);
  return {
    ...common, architecture: 'mamba2', dtRank: 0, nHeads, headDim: dInner / nHeads, nGroups, chunkSize: 256, timeStepLimit: [0, Infinity],
    // llama.cpp's grouped RMS norm (src/models/mamba-base.cpp): per group, as mamba_ssm.
    normGroupSize: dInner / nGroups,
  };
}

// ---------------------------------------------------------------------------------------------
// Tensor names, shapes and transforms

/**
 * How a stored tensor becomes the canonical one. A change of shape never moves data (the stored
 * bytes, read row-major, are the canonical tensor's elements in order), so only values change:
 * 'none', or 'log-neg' for `ssm_a`, which holds A = −exp(A_log) and is turned back into
 * A_log = log(−a) by `applyTransform`.
 */
export type GgufTransform = 'none' | 'log-neg';

export interface GgufTensorEntry {
  /** transformers name (`backbone.layers.0.mixer.in_proj.weight`); the GGUF name when unknown. */
  name: string;
  ggufName: string;
  /** Canonical row-major shape (what `expectedTensors` expects). */
  shape: number[];
  /** Row-major shape as stored in the file (GGUF's ne reversed). */
  storedShape: number[];
  dtype: GgmlTypeName;
  /** Absolute byte offset and length in the file. */
  offset: number;
  byteLength: number;
  transform: GgufTransform;
}

export interface GgufTensorTable {
  /** Keyed by canonical name; pass it to `checkWeights`. */
  tensors: Map<string, GgufTensorEntry>;
  /**
   * Mamba-2: how many channels the gated RMSNorm normalizes over at a time. llama.cpp's graph
   * (src/models/mamba-base.cpp, "grouped RMS norm") reshapes y·silu(z) to [d_inner / n_group,
   * n_group] before the norm, as mamba_ssm's RMSNormGated(group_size = d_inner / ngroups) does,
   * whereas transformers normalizes over all of d_inner. A GGUF Mamba-2 is run as llama.cpp runs
   * it: d_inner / n_group. Mamba-1: 0 (no such norm).
   */
  normGroupSize: number;
  warnings: string[];
}

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Maps GGUF tensor names to transformers names and undoes the converter's conventions
 * (llama.cpp conversion/mamba.py `modify_tensors`; shapes from src/models/mamba.cpp and
 * mamba2.cpp `load_arch_tensors`):
 *
 * | GGUF | transformers | stored (row-major) → canonical |
 * | --- | --- | --- |
 * | token_embd.weight | backbone.embeddings.weight | |
 * | output_norm.weight | backbone.norm_f.weight | |
 * | output.weight | lm_head.weight (absent: tied; the converter drops it when equal to the embedding) | |
 * | blk.N.attn_norm.weight | backbone.layers.N.norm.weight | |
 * | blk.N.ssm_in.weight / .bias | …mixer.in_proj.weight / .bias | |
 * | blk.N.ssm_conv1d.weight | …mixer.conv1d.weight | [C, K] → [C, 1, K] (squeezed by the converter) |
 * | blk.N.ssm_conv1d.bias | …mixer.conv1d.bias | |
 * | blk.N.ssm_x.weight | …mixer.x_proj.weight (mamba) | |
 * | blk.N.ssm_dt.weight | …mixer.dt_proj.weight (mamba) | |
 * | blk.N.ssm_dt.bias | …mixer.dt_proj.bias (mamba), …mixer.dt_bias (mamba2) | mamba2: flattened |
 * | blk.N.ssm_a | …mixer.A_log | values −exp(A_log) → log(−a); mamba2 [H, 1] → [H] |
 * | blk.N.ssm_d | …mixer.D | mamba2 [H, 1] → [H] |
 * | blk.N.ssm_norm.weight | …mixer.norm.weight (mamba2) | [G, d_inner / G] → [d_inner] |
 * | blk.N.ssm_out.weight / .bias | …mixer.out_proj.weight / .bias | |
 *
 * One-dimensional canonical tensors (norms, biases, A_log and D of Mamba-2) are flattened
 * whatever singleton dimensions the file gives them; `checkWeights` then checks every shape
 * against the config. Tensors the model needs must be F32, F16, BF16 or Q8_0; unknown tensors
 * keep their GGUF name (so checkWeights warns about them) and any type.
 */
export function ggufTensorTable(file: string, header: GgufHeader, config: MambaConfig): GgufTensorTable {
  const mamba2 = config.architecture === 'mamba2';
  const tensors = new Map<string, GgufTensorEntry>();
  const warnings: string[] = [];
  const unsupported: GgufTensorInfo[] = [];
  for (const info of header.tensors.values()) {
    const mapped = mapName(info.name, mamba2);
    const entry: GgufTensorEntry = {
      name: mapped?.name ?? info.name,
      ggufName: info.name,
      shape: info.shape,
      storedShape: info.shape,
      dtype: info.type,
      offset: info.offset,
      byteLength: info.byteLength,
      transform: mapped?.role === 'A' ? 'log-neg' : 'none',
    };
    if (mapped) {
      if (!isLoadableType(info.type)) unsupported.push(info);
      if (mapped.role === 'conv' && info.shape.length === 2) entry.shape = [info.shape[0] as number, 1, info.shape[1] as number];
      else if (mapped.role === 'vector' || mapped.role === 'D' || (mapped.role === 'A' && mamba2)) entry.shape = [product(info.shape)];
    }
    if (tensors.has(entry.name)) throw new ModelFileError(file, `tensors "${tensors.get(entry.name)?.ggufName}" and "${info.name}" both map to ${entry.name}`);
    tensors.set(entry.name, entry);
  }
  const tokens = header.metadata.get('tokenizer.ggml.tokens');
  if (Array.isArray(tokens) && tokens.length !== config.vocabSize) {
    warnings.push(`${file}: the embedding has ${config.vocabSize} rows but the GGUF tokenizer lists ${tokens.length} tokens`);
  }
  if (unsupported.length > 0) {
    const first = unsupported[0] as GgufTensorInfo;
    const types = [...new Set(unsupported.map((t) => t.type))];
    throw new ModelFileError(
      file,
      `tensor "${first.name}": ${first.type} is not supported; use an F16/F32/Q8_0 GGUF` +
        (unsupported.length > 1 ? ` (${unsupported.length} tensors are ${types.join(', ')})` : ''),
    );
  }
  return { tensors, normGroupSize: config.normGroupSize, warnings };
}

/** Everything `info` and the loader need from a GGUF file, reading only its header. */
export async function openGguf(source: ByteSource): Promise<{ header: GgufHeader; config: MambaConfig; table: GgufTensorTable; check: WeightCheck }> {
  const header = await readGgufHeader(source);
  const config = ggufToCanonical(source.name, header);
  const table = ggufTensorTable(source.name, header, config);
  const check = checkWeights(source.name, config, table.tensors);
  return { header, config, table, check: { ...check, warnings: [...table.warnings, ...check.warnings] } };
}

type Role = 'plain' | 'vector' | 'conv' | 'A' | 'D';

function mapName(name: string, mamba2: boolean): { name: string; role: Role } | null {
  switch (name) {
    case 'token_embd.weight': return { name: 'backbone.embeddings.weight', role: 'plain' };
    case 'output_norm.weight': return { name: 'backbone.norm_f.weight', role: 'vector' };
    case 'output.weight': return { name: 'lm_head.weight', role: 'plain' };
  }
  const m = /^blk\.(0|[1-9]\d*)\.(.+)$/.exec(name);
  if (!m) return null;
  const p = `backbone.layers.${m[1]}.`;
  const x = `${p}mixer.`;
  switch (m[2]) {
    case 'attn_norm.weight': return { name: `${p}norm.weight`, role: 'vector' };
    case 'ssm_in.weight': return { name: `${x}in_proj.weight`, role: 'plain' };
    case 'ssm_in.bias': return { name: `${x}in_proj.bias`, role: 'vector' };
    case 'ssm_conv1d.weight': return { name: `${x}conv1d.weight`, role: 'conv' };
    case 'ssm_conv1d.bias': return { name: `${x}conv1d.bias`, role: 'vector' };
    case 'ssm_x.weight': return { name: `${x}x_proj.weight`, role: 'plain' };
    case 'ssm_dt.weight': return { name: `${x}dt_proj.weight`, role: 'plain' };
    case 'ssm_dt.bias': return mamba2 ? { name: `${x}dt_bias`, role: 'vector' } : { name: `${x}dt_proj.bias`, role: 'vector' };
    case 'ssm_a': return { name: `${x}A_log`, role: 'A' };
    case 'ssm_d': return { name: `${x}D`, role: 'D' };
    case 'ssm_norm.weight': return { name: `${x}norm.weight`, role: 'vector' };
    case 'ssm_out.weight': return { name: `${x}out_proj.weight`, role: 'plain' };
    case 'ssm_out.bias': return { name: `${x}out_proj.bias`, role: 'vector' };
    default: return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Loading: value transforms

/**
 * Applies an entry's value transform in place: for 'log-neg' (ssm_a), A_log = log(−a).
 * a = 0 gives A_log = −∞ (so A = −exp(A_log) = 0 again); a > 0 or NaN cannot come from
 * −exp(·) and is an error.
 */
export function applyTransform(file: string, entry: { name: string; ggufName?: string; transform: GgufTransform }, values: Float32Array): Float32Array {
  if (entry.transform === 'none') return values;
  for (let i = 0; i < values.length; i++) {
    const a = values[i] as number;
    if (!(a <= 0)) {
      throw new ModelFileError(file, `tensor "${entry.ggufName ?? entry.name}" holds ${a} at index ${i}; it should hold A = −exp(A_log) ≤ 0`);
    }
    values[i] = Math.log(-a);
  }
  return values;
}
