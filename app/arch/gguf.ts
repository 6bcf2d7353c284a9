/**
 * GGUF files (llama.cpp's layout) of the registered architectures: metadata → the canonical config,
 * GGUF tensor names → transformers names, undoing the converter's conventions. The container
 * itself is read by app/formats/gguf-reader.ts (tensor encodings: ggml.ts); each architecture's own keys and tensor names are in its
 * spec (`configFromGguf`, `ggufMixerTensors`).
 *
 * llama.cpp's converter (conversion/mamba.py, class MambaModel / Mamba2Model, and formerly
 * convert_hf_to_gguf.py) writes `{arch}.embedding_length`, `.block_count`, `.ssm.conv_kernel`,
 * `.ssm.inner_size`, `.ssm.state_size`, `.ssm.time_step_rank`, `.attention.layer_norm_rms_epsilon`
 * (and the architecture's own keys, e.g. mamba2's `.ssm.group_count`). Falcon-Mamba (class
 * FalconMambaModel) is written as "mamba" with `mamba.ssm.dt_b_c_rms = true`; the Mamba-1 spec reads
 * that key and names the config Falcon-Mamba, its mixer norm run with the layer norm epsilon as
 * llama.cpp runs it.
 *
 * Tensors map to transformers names so that `checkWeights` (tensors.ts) checks them like any
 * other checkpoint:
 *
 * | GGUF | transformers | stored (row-major) → canonical |
 * | --- | --- | --- |
 * | token_embd.weight | backbone.embeddings.weight | |
 * | output_norm.weight | backbone.norm_f.weight | |
 * | output.weight | lm_head.weight (absent: tied; the converter drops it when equal to the embedding) | |
 * | blk.N.attn_norm.weight | backbone.layers.N.norm.weight | |
 * | blk.N.<mixer tensor> | backbone.layers.N.mixer.<name> | the spec's `ggufMixerTensors` role |
 *
 * Roles (spec.ts GgufRole): 'conv' [C, K] → [C, 1, K] (squeezed by the converter); 'vector' and
 * 'D' flattened whatever singleton dimensions the file gives them; 'A': `ssm_a` holds
 * A = −exp(A_log), so its entry carries `transform: 'log-neg'` and the loader's decoder returns
 * A_log = log(−a) (formats/ggml.ts `applyTransform`, applied by decode.ts's tensorDecoder), so the engine sees A_log from every format
 * alike (flattened when the spec's `ggufFlatA`). Tensors the model needs must be F32, F16, BF16 or
 * one of the block formats of ggml-quants.ts (formats/ggml.ts LOADABLE_GGML_TYPES); unknown tensors keep their GGUF name (so checkWeights warns about them) and any type.
 */
import { ModelFileError, preview } from '../formats/errors.js';
import { isLoadableType, LOADABLE_GGML_TYPES, type GgmlTypeName, type GgufTransform } from '../formats/ggml.js';
import { readGgufHeader, type GgufHeader, type GgufTensorInfo } from '../formats/gguf-reader.js';
import type { ByteSource } from '../formats/source.js';
import type { MambaConfig } from '../model/config.js';
import { checkConfigBounds } from './bounds.js';
import { falconMamba } from './falcon-mamba/index.js';
import { ARCHITECTURES, architectureSpec, isArchitectureName } from './registry.js';
import type { GgufRole } from './spec.js';
import { checkWeights, type WeightCheck } from './tensors.js';

const OTHER_ARCHITECTURES: [RegExp, string][] = [
  [/^jamba$/, 'Jamba (a hybrid, not supported)'],
  [/^nemotron_h_moe/, 'Nemotron-H mixture-of-experts model (not supported yet)'],
  [/^(falcon-h1|plamo2|lfm2)/, 'hybrid attention/SSM model (not supported)'],
  [/^rwkv/, 'RWKV'],
  [/^llama|^llama4/, 'Llama'],
  [/^(gpt2|gptj|gptneox|gpt-neox)$/, 'GPT'],
  [/^(mistral|mixtral)/, 'Mistral'],
  [/^(qwen|gemma|phi|falcon|bert|t5|starcoder|bloom|mpt|olmo|command-r|deepseek)/, ''],
];

/**
 * The canonical config from GGUF metadata (and, for the vocabulary and the optional tensors, the
 * tensor infos), checked against the bounds (bounds.ts) before anything uses it.
 */
export function ggufToCanonical(file: string, header: GgufHeader): MambaConfig {
  const meta = header.metadata;
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') {
    throw new ModelFileError(file, arch === undefined ? 'GGUF metadata has no general.architecture' : 'general.architecture is not a string');
  }
  // llama.cpp's name for an architecture (Granite-4.0-H's "granitehybrid"), else the registry's.
  const byGguf = ARCHITECTURES.find((a) => 'ggufName' in a && a.ggufName === arch);
  if (!byGguf && !isArchitectureName(arch)) {
    const known = OTHER_ARCHITECTURES.find(([re]) => re.test(arch));
    const what = known && known[1] ? `a ${known[1]} model` : 'another kind of model';
    // Falcon-Mamba is "mamba" with mamba.ssm.dt_b_c_rms in GGUF, not a general.architecture of its own.
    const names = ARCHITECTURES.filter((a) => a.name !== falconMamba.name).map((a) => `"${a.name}"`).join(' and ');
    throw new ModelFileError(file, `general.architecture is "${arch}": ${what}, not ${ARCHITECTURES.map((a) => a.label).join(' or ')} (the studio opens GGUF architectures ${names})`);
  }
  const int = (key: string, min: number, fallback?: number): number => {
    const full = `${arch}.${key}`;
    const v = meta.get(full);
    if (v === undefined) {
      if (fallback === undefined) throw new ModelFileError(file, `missing required metadata key "${full}"`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new ModelFileError(file, `metadata "${full}" must be an integer ≥ ${min}, got ${preview(v)}`);
    }
    return v;
  };
  const dModel = int('embedding_length', 1);
  const nLayer = int('block_count', 1);
  const dConv = int('ssm.conv_kernel', 1);
  const dInner = int('ssm.inner_size', 1);
  const dState = int('ssm.state_size', 1);
  const timeStepRank = int('ssm.time_step_rank', 1);
  const epsKey = `${arch}.attention.layer_norm_rms_epsilon`;
  const eps = meta.get(epsKey);
  if (eps === undefined) throw new ModelFileError(file, `missing required metadata key "${epsKey}"`);
  if (typeof eps !== 'number') throw new ModelFileError(file, `metadata "${epsKey}" must be a number, got ${preview(eps)}`);

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
  // In any block (a hybrid's block 0 may be attention).
  const has = (suffix: string) => [...header.tensors.keys()].some((n) => n.startsWith('blk.') && n.endsWith(`.${suffix}`) && /^blk\.\d+\./.test(n));
  const spec = byGguf ?? architectureSpec(arch);
  const config = spec.configFromGguf({
    file,
    base: {
      source: 'gguf', dModel, nLayer, vocabSize, dInner, dConv, normEps: eps, dState,
      useBias: has('ssm_in.bias'), useConvBias: has('ssm_conv1d.bias'), tieEmbeddings: !header.tensors.has('output.weight'),
    },
    timeStepRank,
    int,
    get: (key) => meta.get(key),
  });
  // The config's own architecture: a "mamba" file with mamba.ssm.dt_b_c_rms is Falcon-Mamba.
  const configSpec = architectureSpec(config.architecture);
  checkConfigBounds(file, config, configSpec, {
    dModel: `${arch}.embedding_length`, nLayer: `${arch}.block_count`, dConv: `${arch}.ssm.conv_kernel`, dInner: `${arch}.ssm.inner_size`,
    dState: `${arch}.ssm.state_size`, normEps: epsKey, vocabSize: embd ? 'token_embd.weight (its rows)' : 'tokenizer.ggml.tokens (its length)',
    ...configSpec.configKeys.gguf,
  });
  return config;
}

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

/** The model-level tensors, the same for every architecture. */
const MODEL_TENSORS: Record<string, { name: string; role: GgufRole }> = {
  'token_embd.weight': { name: 'backbone.embeddings.weight', role: 'plain' },
  'output_norm.weight': { name: 'backbone.norm_f.weight', role: 'vector' },
  'output.weight': { name: 'lm_head.weight', role: 'plain' },
};

/**
 * A GGUF tensor name → its transformers name and role under this architecture; null when unknown.
 * `hybrid`: the other tensors of a block (llama.cpp's attn_q, ffn_up, ffn_norm, …) keep their GGUF
 * names under `backbone.layers.N.`, which is how a hybrid GGUF config names them (nemotron-h,
 * granite-hybrid `configFromGguf`).
 */
function mapName(name: string, mixer: Readonly<Record<string, { name: string; role: GgufRole }>>, hybrid: boolean): { name: string; role: GgufRole } | null {
  const model = MODEL_TENSORS[name];
  if (model) return model;
  const m = /^blk\.(0|[1-9]\d*)\.(.+)$/.exec(name);
  if (!m) return null;
  const p = `backbone.layers.${m[1]}.`;
  if (m[2] === 'attn_norm.weight') return { name: `${p}norm.weight`, role: 'vector' };
  const own = mixer[m[2] as string];
  if (own) return { name: `${p}mixer.${own.name}`, role: own.role };
  if (hybrid) return { name: `${p}${m[2]}`, role: /\.bias$|_norm\.weight$/.test(m[2] as string) ? 'vector' : 'plain' };
  return null;
}

/** Maps GGUF tensor names to transformers names and undoes the converter's conventions (see above). */
export function ggufTensorTable(file: string, header: GgufHeader, config: MambaConfig): GgufTensorTable {
  const spec = architectureSpec(config.architecture);
  const tensors = new Map<string, GgufTensorEntry>();
  const warnings: string[] = [];
  const unsupported: GgufTensorInfo[] = [];
  for (const info of header.tensors.values()) {
    const mapped = mapName(info.name, spec.ggufMixerTensors, config.hybrid !== undefined);
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
      else if (mapped.role === 'vector' || mapped.role === 'D' || (mapped.role === 'A' && spec.ggufFlatA)) entry.shape = [product(info.shape)];
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
      `tensor "${first.name}": ${first.type} is not supported; use a GGUF in ${LOADABLE_GGML_TYPES.join(', ')}` +
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
