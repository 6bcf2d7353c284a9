/**
 * Hybrid models' non-SSM blocks, on the file side (no GPU code): the tensors an attention or MLP
 * block has, and the configs of the conventions that describe them — mamba_ssm's `attn_layer_idx`
 * / `attn_cfg` / `d_intermediate` (its MHA and GatedMLP, app/arch/registry.ts `fromMambaSsm`) and
 * the transformers hybrids (app/arch/nemotron-h/). The GPU mixers are in app/arch/hybrid/ too,
 * named in app/arch/build.ts.
 */
import type { ConfigReader, Raw } from '../../formats/config.js';
import { ModelFileError, preview } from '../../formats/errors.js';
import type { AttentionConfig, BlockKind, BlockSpec, HybridConfig, MambaConfig, MlpConfig } from '../../model/config.js';
import type { GgufConfigSource, TensorSpec } from '../spec.js';
import { biasName } from './config.js';

/** KV-cache capacity when a config names no context length, and the most the studio allocates by default. */
export const DEFAULT_KV_CAPACITY = 4_096;
export const MAX_DEFAULT_KV_CAPACITY = 16_384;

/** Bounds on attention and MLP sizes, far above released models (heads ≤ 128, head_dim ≤ 256, MLP ≤ 4·16,384·1.5). */
const ATTENTION_BOUNDS = { nHeads: 4_096, headDim: 4_096, intermediate: 1_048_576 } as const;

/** The KV cache capacity for a config's `max_position_embeddings`-like value (bounded by the default maximum). */
export function kvCapacity(contextLength: number | undefined): number {
  if (contextLength === undefined || !Number.isInteger(contextLength) || contextLength < 1) return DEFAULT_KV_CAPACITY;
  return Math.min(contextLength, MAX_DEFAULT_KV_CAPACITY);
}

/** Checks an attention config's sizes; `what` names the keys they came from. */
export function checkAttention(file: string, a: AttentionConfig, what: { heads: string; kvHeads: string; headDim: string }): void {
  const int = (v: number, max: number) => Number.isInteger(v) && v >= 1 && v <= max;
  if (!int(a.nHeads, ATTENTION_BOUNDS.nHeads)) throw new ModelFileError(file, `"${what.heads}" is ${preview(a.nHeads)}: attention heads must be an integer from 1 to ${ATTENTION_BOUNDS.nHeads}`);
  if (!int(a.nKvHeads, a.nHeads) || a.nHeads % a.nKvHeads !== 0) {
    throw new ModelFileError(file, `"${what.kvHeads}" is ${preview(a.nKvHeads)}: key/value heads must divide the ${a.nHeads} attention heads`);
  }
  if (!int(a.headDim, ATTENTION_BOUNDS.headDim)) throw new ModelFileError(file, `"${what.headDim}" is ${preview(a.headDim)}: the head size must be an integer from 1 to ${ATTENTION_BOUNDS.headDim}`);
  if (!(Number.isInteger(a.rotaryDim) && a.rotaryDim >= 0 && a.rotaryDim <= a.headDim && a.rotaryDim % 2 === 0)) {
    throw new ModelFileError(file, `the rotary size ${preview(a.rotaryDim)} must be an even number from 0 to the head size ${a.headDim}`);
  }
  if (a.rotaryDim > 0 && !(a.ropeTheta > 1 && Number.isFinite(a.ropeTheta))) throw new ModelFileError(file, `the RoPE base ${preview(a.ropeTheta)} must be a finite number > 1`);
  if (!(a.scale > 0 && Number.isFinite(a.scale))) throw new ModelFileError(file, `the attention scale ${preview(a.scale)} must be a finite number > 0`);
  if (!(Number.isInteger(a.dConv) && (a.dConv === 0 || (a.dConv >= 2 && a.dConv <= 8)))) throw new ModelFileError(file, `the attention conv size ${preview(a.dConv)} must be 0 or 2 to 8`);
}

export function checkMlp(file: string, m: MlpConfig, key: string): void {
  if (!(Number.isInteger(m.intermediate) && m.intermediate >= 1 && m.intermediate <= ATTENTION_BOUNDS.intermediate)) {
    throw new ModelFileError(file, `"${key}" is ${preview(m.intermediate)}: the MLP size must be an integer from 1 to ${ATTENTION_BOUNDS.intermediate}`);
  }
}

/** The tensors of an attention block's mixer (names under `m`). `bias`: whether q/k/v and out have biases. */
export function attentionTensors(D: number, a: AttentionConfig, m: string, bias: { qkv: boolean | 'optional'; out: boolean | 'optional' }): TensorSpec[] {
  const q = a.nHeads * a.headDim;
  const kv = a.nKvHeads * a.headDim;
  const b = biasName;
  const specs: TensorSpec[] = [];
  if ('qkv' in a.names) {
    specs.push({ name: `${m}${a.names.qkv}`, shape: [q + 2 * kv, D] });
    if (bias.qkv) specs.push({ name: `${m}${b(a.names.qkv)}`, shape: [q + 2 * kv], optional: bias.qkv === 'optional' });
    if (a.dConv > 0) specs.push({ name: `${m}conv1d.weight`, shape: [q + 2 * kv, 1, a.dConv] }, { name: `${m}conv1d.bias`, shape: [q + 2 * kv], optional: true });
  } else {
    for (const [name, rows] of [[a.names.q, q], [a.names.k, kv], [a.names.v, kv]] as const) {
      specs.push({ name: `${m}${name}`, shape: [rows, D] });
      if (bias.qkv) specs.push({ name: `${m}${b(name)}`, shape: [rows], optional: bias.qkv === 'optional' });
    }
  }
  specs.push({ name: `${m}${a.names.out}`, shape: [D, q] });
  if (bias.out) specs.push({ name: `${m}${b(a.names.out)}`, shape: [D], optional: bias.out === 'optional' });
  return specs;
}

export function mlpTensors(D: number, f: MlpConfig, m: string, bias: boolean | 'optional'): TensorSpec[] {
  const gate = f.gated ? f.names.gate : undefined;
  const up = f.gated && !gate ? 2 * f.intermediate : f.intermediate;
  const b = biasName;
  return [
    ...(gate ? [{ name: `${m}${gate}`, shape: [f.intermediate, D] }, ...(bias ? [{ name: `${m}${b(gate)}`, shape: [f.intermediate], optional: bias === 'optional' }] : [])] : []),
    { name: `${m}${f.names.up}`, shape: [up, D] },
    { name: `${m}${f.names.down}`, shape: [D, f.intermediate] },
    ...(bias ? [{ name: `${m}${b(f.names.up)}`, shape: [up], optional: bias === 'optional' }, { name: `${m}${b(f.names.down)}`, shape: [D], optional: bias === 'optional' }] : []),
  ];
}

/** Which optional biases a hybrid's blocks carry (recorded in the config so that tensor checks know). */
export type HybridBiases = NonNullable<HybridConfig['biases']>;

/** Every tensor of a block that is not the SSM's (SSM blocks: the architecture's mixerTensors). */
export function hybridBlockTensors(config: MambaConfig, block: BlockSpec, m: string): TensorSpec[] {
  const h = config.hybrid;
  if (!h) return [];
  const biases = hybridBiases(config);
  if (block.kind === 'attention' && h.attention) return attentionTensors(config.dModel, h.attention, m, { qkv: biases.attentionQkv, out: biases.attentionOut });
  if (block.kind === 'mlp' && h.mlp) return mlpTensors(config.dModel, h.mlp, m, biases.mlp);
  return [];
}

/** The biases the hybrid's config says its attention and MLP blocks have. */
export function hybridBiases(config: MambaConfig): HybridBiases {
  return config.hybrid?.biases ?? { attentionQkv: false, attentionOut: false, mlp: false };
}

/**
 * mamba_ssm's hybrid keys on a Mamba config.json: `attn_layer_idx` (layers whose mixer is its MHA,
 * configured by `attn_cfg`) and `d_intermediate` (> 0: every layer has `norm2` and a GatedMLP `mlp`
 * of d_intermediate rounded up to a multiple of 128, SiLU gate in the second half of fc1's rows).
 * Returns null when neither is used. mamba_ssm's MHA runs `rotary_emb_dim` leading dims of each head
 * through flash_attn's rotary embedding (rotate_half unless `rotary_emb_interleaved`).
 */
export function mambaSsmHybrid(file: string, raw: Raw, read: ConfigReader, nLayer: number): HybridConfig | null {
  const idx = raw.attn_layer_idx ?? [];
  if (!Array.isArray(idx)) throw new ModelFileError(file, `"attn_layer_idx" must be a list of layer indices, got ${preview(idx)}`);
  const attnLayers = new Set<number>();
  for (const v of idx) {
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < nLayer)) throw new ModelFileError(file, `"attn_layer_idx" holds ${preview(v)}: not a layer index below n_layer ${nLayer}`);
    attnLayers.add(v);
  }
  const dIntermediate = read.int('d_intermediate', 0);
  if (attnLayers.size === 0 && dIntermediate === 0) return null;
  if (raw.rms_norm === false) throw new ModelFileError(file, '"rms_norm" is false: mamba_ssm LayerNorm blocks are not supported (the studio runs RMSNorm)');
  let attention: AttentionConfig | null = null;
  let biases: HybridBiases = { attentionQkv: false, attentionOut: false, mlp: false };
  if (attnLayers.size > 0) {
    const cfg = (raw.attn_cfg ?? {}) as Raw;
    if (typeof cfg !== 'object' || Array.isArray(cfg)) throw new ModelFileError(file, '"attn_cfg" must be an object');
    const nHeads = read.int('num_heads', undefined, cfg, 'attn_cfg.num_heads');
    const nKvHeads = read.int('num_heads_kv', nHeads, cfg, 'attn_cfg.num_heads_kv');
    const dModel = read.int('d_model');
    const headDim = cfg.head_dim === undefined || cfg.head_dim === null ? Math.trunc(dModel / nHeads) : read.int('head_dim', undefined, cfg, 'attn_cfg.head_dim');
    if (cfg.causal !== true) throw new ModelFileError(file, `"attn_cfg.causal" is ${preview(cfg.causal)}: a language model's attention must be causal`);
    if (typeof cfg.mlp_dim === 'number' && cfg.mlp_dim > 0) throw new ModelFileError(file, '"attn_cfg.mlp_dim" > 0 (an MLP inside MHA) is not supported');
    const rotaryDim = read.int('rotary_emb_dim', 0, cfg, 'attn_cfg.rotary_emb_dim');
    const scale = cfg.softmax_scale === undefined || cfg.softmax_scale === null ? 1 / Math.sqrt(headDim) : read.num('softmax_scale', 0, cfg, 'attn_cfg.softmax_scale');
    attention = {
      nHeads, nKvHeads, headDim, rotaryDim, ropeTheta: read.num('rotary_emb_base', 10_000, cfg, 'attn_cfg.rotary_emb_base'),
      ropeInterleaved: read.bool('rotary_emb_interleaved', false, cfg, 'attn_cfg.rotary_emb_interleaved'), scale,
      names: { qkv: 'in_proj.weight', out: 'out_proj.weight' }, dConv: read.int('d_conv', 0, cfg, 'attn_cfg.d_conv'),
      capacity: DEFAULT_KV_CAPACITY,
    };
    checkAttention(file, attention, { heads: 'attn_cfg.num_heads', kvHeads: 'attn_cfg.num_heads_kv', headDim: 'attn_cfg.head_dim' });
    biases = { ...biases, attentionQkv: read.bool('qkv_proj_bias', true, cfg, 'attn_cfg.qkv_proj_bias'), attentionOut: read.bool('out_proj_bias', true, cfg, 'attn_cfg.out_proj_bias') };
  }
  let mlp: MlpConfig | null = null;
  if (dIntermediate > 0) {
    mlp = { intermediate: Math.ceil(dIntermediate / 128) * 128, activation: 'silu', gated: true, gateFirst: false, names: { up: 'fc1.weight', down: 'fc2.weight' } };
    checkMlp(file, mlp, 'd_intermediate');
  }
  const blocks: BlockSpec[] = [];
  for (let l = 0; l < nLayer; l++) {
    blocks.push({ kind: attnLayers.has(l) ? 'attention' : 'ssm', layer: l, norm: `layers.${l}.norm.weight`, mixer: `layers.${l}.mixer.` });
    if (mlp) blocks.push({ kind: 'mlp', layer: l, norm: `layers.${l}.norm2.weight`, mixer: `layers.${l}.mlp.` });
  }
  return { blocks, attention, mlp, biases };
}

/** A per-layer GGUF key (llama.cpp writes head_count_kv and feed_forward_length as arrays for hybrids): a number for every layer. */
export function ggufPerLayer(file: string, get: (key: string) => unknown, key: string, layers: number, fallback?: number): number[] {
  const v = get(key);
  if (v === undefined && fallback !== undefined) return new Array<number>(layers).fill(fallback);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return new Array<number>(layers).fill(v);
  if (Array.isArray(v) && v.length === layers && v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) return v as number[];
  throw new ModelFileError(file, `metadata "${key}" must be a non-negative integer or a list of ${layers} of them, got ${preview(v)}`);
}

/** The one value the layers of a kind share (the studio builds one attention / MLP config per model). */
export function ggufShared(file: string, key: string, values: readonly number[], what: string): number {
  const set = [...new Set(values)];
  if (set.length !== 1) throw new ModelFileError(file, `metadata "${key}" differs between the ${what} layers (${set.slice(0, 4).join(', ')}): per-layer sizes are not supported`);
  return set[0] as number;
}

/** A GGUF float key (multipliers, scales, RoPE base), or the fallback when absent. */
export function ggufNumber(file: string, get: (key: string) => unknown, key: string, fallback: number): number {
  const v = get(key);
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelFileError(file, `metadata "${key}" must be a number, got ${preview(v)}`);
  return v;
}

/**
 * llama.cpp's attention tensors as a hybrid GGUF config names them (under `backbone.layers.N.`).
 * Its converter permutes q_proj / k_proj rows within each head for GGML's rope (LlamaModel.permute);
 * with RoPE the rotation is then interleaved pairs, without it the permutation cancels in q·k.
 */
export const GGUF_ATTENTION_NAMES = { q: 'attn_q.weight', k: 'attn_k.weight', v: 'attn_v.weight', out: 'attn_output.weight' } as const;

/**
 * A hybrid GGUF's attention config (null when no layer is attention): heads from
 * `<arch>.attention.head_count`, kv heads from the attention layers' `head_count_kv`, head size
 * `attention.key_length` (else width / heads), the KV cache from `context_length`; `positions` gives
 * the architecture's RoPE and scale for a head size.
 */
export function ggufAttention(
  file: string,
  arch: string,
  src: Pick<GgufConfigSource, 'int' | 'get'>,
  kinds: readonly BlockKind[],
  kv: readonly number[],
  dModel: number,
  positions: (headDim: number) => Pick<AttentionConfig, 'rotaryDim' | 'ropeTheta' | 'ropeInterleaved' | 'scale'>,
): AttentionConfig | null {
  const layers = kinds.flatMap((k, l) => (k === 'attention' ? [l] : []));
  if (layers.length === 0) return null;
  const heads = ggufShared(file, `${arch}.attention.head_count`, ggufPerLayer(file, src.get, `${arch}.attention.head_count`, kinds.length).filter((_, l) => kinds[l] === 'attention'), 'attention');
  const headDim = src.int('attention.key_length', 1, Math.trunc(dModel / heads));
  const attention: AttentionConfig = {
    nHeads: heads, nKvHeads: ggufShared(file, `${arch}.attention.head_count_kv`, layers.map((l) => kv[l] as number), 'attention'), headDim,
    ...positions(headDim), names: GGUF_ATTENTION_NAMES, dConv: 0, capacity: kvCapacity(src.int('context_length', 1, DEFAULT_KV_CAPACITY)),
  };
  checkAttention(file, attention, { heads: `${arch}.attention.head_count`, kvHeads: `${arch}.attention.head_count_kv`, headDim: `${arch}.attention.key_length` });
  return attention;
}

/**
 * The Mamba-2 fields of a hybrid GGUF config, run as llama.cpp runs them: the gated norm per group,
 * Δ not clamped, transformers' default chunk (GGUF stores none).
 */
export function ggufMamba2Fields(file: string, arch: string, base: GgufConfigSource['base'], nHeads: number, nGroups: number) {
  const { dInner } = base;
  if (dInner % nHeads !== 0 || nHeads % nGroups !== 0) throw new ModelFileError(file, `${arch}.ssm.inner_size ${dInner}, the head count ${nHeads} and ssm.group_count ${nGroups} do not divide`);
  return {
    source: 'gguf', dModel: base.dModel, vocabSize: base.vocabSize, dInner, dState: base.dState, dConv: base.dConv, dtRank: 0, nHeads, headDim: dInner / nHeads, nGroups,
    chunkSize: 256, timeStepLimit: [0, Infinity], normGroupSize: dInner / nGroups, normEps: base.normEps, mixerRmsEps: 0,
    useBias: base.useBias, useConvBias: base.useConvBias, tieEmbeddings: base.tieEmbeddings,
  } satisfies Omit<MambaConfig, 'architecture' | 'nLayer'>;
}
