/**
 * IBM Granite-4.0-H (ibm-granite/granite-4.0-h-{micro,tiny,small}): transformers
 * `GraniteMoeHybridForCausalLM` (model_type "granitemoehybrid"). Each layer is two blocks: its
 * mixer (Mamba-2, as Bamba runs it, or attention) after `input_layernorm`, then the shared MLP
 * (`shared_mlp.input_linear` rows [gate; up], act(gate)·up, `output_linear`) after
 * `post_attention_layernorm`. Tensors under `model.` (`embed_tokens`, final `norm`).
 *
 * - Multipliers: the embedding × embedding_multiplier, every block's output × residual_multiplier
 *   before the residual add, the logits ÷ logits_scaling; attention scores × attention_multiplier
 *   (its scale, instead of 1/√head_dim).
 * - Attention: q/k/v/o_proj, grouped-query; RoPE over the whole head (rotate_half, θ from
 *   rope_parameters or rope_theta) when position_embedding_type is "rope", none ("nope", as the
 *   released 4.0-H models) otherwise.
 * - Mamba-2 blocks: d_inner = mamba_n_heads × mamba_d_head, the gated RMSNorm over all of d_inner,
 *   Δ clamped to time_step_limit.
 * - MoE layers (num_local_experts > 0: granite-4.0-h-tiny, -small) are refused for now; the dense
 *   ones (granite-4.0-h-micro, -350m, -1b) load.
 */
import type { Raw } from '../../formats/config.js';
import { ModelFileError, preview } from '../../formats/errors.js';
import type { AttentionConfig, BlockSpec, MambaConfig, MlpConfig } from '../../model/config.js';
import { checkAttention, checkMlp, ggufAttention, ggufMamba2Fields, ggufNumber, ggufPerLayer, kvCapacity } from '../hybrid/blocks.js';
import { mamba2 } from '../mamba2/index.js';
import type { ArchitectureSpec, BaseConfig, JsonConfigSource } from '../spec.js';

const KINDS: Readonly<Record<string, 'ssm' | 'attention'>> = { mamba: 'ssm', linear_attention: 'ssm', attention: 'attention', full_attention: 'attention' };
const MAX_LAYERS = 2_048;

function layerKinds(file: string, raw: Raw): ('ssm' | 'attention')[] {
  const list = raw.layer_types ?? raw.layers_block_type;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_LAYERS) throw new ModelFileError(file, `"layer_types" must be a list of 1 to ${MAX_LAYERS} layer types`);
  return list.map((t, i) => {
    const kind = typeof t === 'string' ? KINDS[t] : undefined;
    if (!kind) throw new ModelFileError(file, `"layer_types"[${i}] is ${preview(t)}: not one of ${Object.keys(KINDS).join(', ')}`);
    return kind;
  });
}

function timeStepLimit(file: string, raw: Raw): [number, number] {
  const limit = raw.time_step_limit;
  if (limit === undefined || limit === null) return [0, Infinity];
  if (!Array.isArray(limit) || limit.length !== 2 || !limit.every((x) => typeof x === 'number' && !Number.isNaN(x))) {
    throw new ModelFileError(file, `"time_step_limit" must be [min, max], got ${preview(limit)}`);
  }
  return [limit[0] as number, limit[1] as number];
}

/** RoPE's base: rope_parameters.rope_theta (transformers 5), else rope_theta; other rope types refused. */
function ropeTheta(file: string, raw: Raw): number {
  const params = raw.rope_parameters ?? raw.rope_scaling;
  if (params && typeof params === 'object' && !Array.isArray(params)) {
    const p = params as Raw;
    const type = p.rope_type ?? p.type ?? 'default';
    if (type !== 'default') throw new ModelFileError(file, `RoPE type ${preview(type)} is not supported (only the default rotation)`);
    if (typeof p.rope_theta === 'number') return p.rope_theta;
  }
  return typeof raw.rope_theta === 'number' ? raw.rope_theta : 10_000;
}

function transformersBase({ file, raw, read }: Omit<JsonConfigSource, 'base'>): BaseConfig {
  const kinds = layerKinds(file, raw);
  const { int, num } = read;
  const dModel = int('hidden_size');
  const nHeads = int('mamba_n_heads', 128);
  const headDim = raw.mamba_d_head === 'auto' || raw.mamba_d_head === undefined ? Math.trunc((num('mamba_expand', 2) * dModel) / nHeads) : int('mamba_d_head');
  return { source: 'transformers', dModel, nLayer: 2 * kinds.length, vocabSize: int('vocab_size'), dInner: nHeads * headDim, dConv: int('mamba_d_conv', 4), normEps: num('rms_norm_eps', 1e-6) };
}

export const graniteHybrid = {
  name: 'granitemoehybrid',
  label: 'Granite-4.0-H',
  ggufName: 'granitehybrid',
  transformersClass: 'GraniteMoeHybridForCausalLM',
  mambaSsmLayer: null,
  requiredFields: mamba2.requiredFields,
  configKeys: {
    transformers: {
      nLayer: '2 × layer_types (its length)', dInner: 'mamba_n_heads × mamba_d_head', dState: 'mamba_d_state', nHeads: 'mamba_n_heads', headDim: 'mamba_d_head',
      nGroups: 'mamba_n_groups', chunkSize: 'mamba_chunk_size', timeStepLimit: 'time_step_limit', dConv: 'mamba_d_conv', normEps: 'rms_norm_eps',
    },
    mamba_ssm: {},
    gguf: {},
  },
  transformersBase,

  configFromTransformers({ file, raw, read, base }) {
    const { int, num, bool } = read;
    if (int('num_local_experts', 0) > 0) throw new ModelFileError(file, `"num_local_experts" is ${preview(raw.num_local_experts)}: Granite-4.0-H mixture-of-experts layers (granite-4.0-h-tiny, -small) are not supported yet; the dense models (granite-4.0-h-micro, -1b, -350m) are`);
    const kinds = layerKinds(file, raw);
    const { dModel: D, dInner } = base;
    const nHeads = int('mamba_n_heads', 128);
    const nGroups = int('mamba_n_groups', 1);
    if (nGroups < 1 || nHeads % nGroups !== 0) throw new ModelFileError(file, `mamba_n_heads ${nHeads} is not a multiple of mamba_n_groups ${nGroups}`);
    const heads = int('num_attention_heads');
    const headSize = Math.trunc(D / heads);
    const positions = raw.position_embedding_type ?? 'rope';
    if (positions !== 'rope' && positions !== 'nope') throw new ModelFileError(file, `"position_embedding_type" is ${preview(positions)}: not "rope" or "nope"`);
    const attention: AttentionConfig | null = kinds.includes('attention')
      ? {
          nHeads: heads, nKvHeads: int('num_key_value_heads', heads), headDim: headSize, rotaryDim: positions === 'rope' ? headSize : 0, ropeTheta: ropeTheta(file, raw),
          ropeInterleaved: false, scale: num('attention_multiplier', 1 / Math.sqrt(headSize)), names: { q: 'q_proj.weight', k: 'k_proj.weight', v: 'v_proj.weight', out: 'o_proj.weight' },
          dConv: 0, capacity: kvCapacity(typeof raw.max_position_embeddings === 'number' ? raw.max_position_embeddings : undefined),
        }
      : null;
    if (attention) checkAttention(file, attention, { heads: 'num_attention_heads', kvHeads: 'num_key_value_heads', headDim: 'hidden_size / num_attention_heads' });
    const act = raw.hidden_act ?? 'silu';
    if (act !== 'silu' && act !== 'gelu') throw new ModelFileError(file, `"hidden_act" is ${preview(act)}: the studio runs silu or gelu MLPs here`);
    const mlp: MlpConfig = { intermediate: raw.shared_intermediate_size !== undefined ? int('shared_intermediate_size') : int('intermediate_size'), activation: act, gated: true, gateFirst: true, names: { up: 'input_linear.weight', down: 'output_linear.weight' } };
    checkMlp(file, mlp, 'shared_intermediate_size');
    const blocks: BlockSpec[] = kinds.flatMap((kind, l): BlockSpec[] => [
      { kind, layer: l, norm: `layers.${l}.input_layernorm.weight`, mixer: kind === 'ssm' ? `layers.${l}.mamba.` : `layers.${l}.self_attn.` },
      { kind: 'mlp', layer: l, norm: `layers.${l}.post_attention_layernorm.weight`, mixer: `layers.${l}.shared_mlp.` },
    ]);
    const logitsScaling = num('logits_scaling', 1);
    if (!(logitsScaling > 0 && Number.isFinite(logitsScaling))) throw new ModelFileError(file, `"logits_scaling" is ${preview(raw.logits_scaling)}: it must be a positive number`);
    const attentionBias = bool('attention_bias', false);
    const config: MambaConfig = {
      architecture: 'granitemoehybrid', source: 'transformers', dModel: D, nLayer: blocks.length, vocabSize: base.vocabSize, dInner,
      dState: int('mamba_d_state', 128), dConv: base.dConv, dtRank: 0, nHeads, headDim: dInner / nHeads, nGroups,
      chunkSize: int('mamba_chunk_size', 256), timeStepLimit: timeStepLimit(file, raw),
      // Bamba's RMSNormGated normalizes over all of d_inner.
      normGroupSize: dInner, normEps: base.normEps, mixerRmsEps: 0,
      useBias: bool('mamba_proj_bias', false), useConvBias: bool('mamba_conv_bias', true), tieEmbeddings: bool('tie_word_embeddings', true),
      hybrid: { blocks, attention, mlp, biases: { attentionQkv: attentionBias, attentionOut: attentionBias, mlp: false } },
      finalNorm: 'norm.weight',
      multipliers: { embedding: num('embedding_multiplier', 1), residual: num('residual_multiplier', 1), logits: 1 / logitsScaling },
    };
    return config;
  },

  configFromMambaSsm({ file }) {
    throw new ModelFileError(file, 'mamba_ssm has no Granite-4.0-H config; use the transformers checkpoint (model_type "granitemoehybrid")');
  },

  /**
   * llama.cpp's GGUF (general.architecture "granitehybrid", conversion GraniteHybridModel): a layer
   * is attention where `granitehybrid.attention.head_count_kv[l]` > 0, else Mamba-2; every layer's
   * shared MLP as ffn_gate / ffn_up / ffn_down after `ffn_norm` (input_linear split in two);
   * `embedding_scale`, `residual_scale`, `logit_scale`, `attention.scale` are the multipliers. RoPE
   * only when `rope.scaling.finetuned` (its converter sets it for Bamba, not for Granite-4.0-H),
   * over interleaved pairs: the converter permuted q and k for GGML's rope. Run as llama.cpp runs
   * it: the gated norm per group, Δ not clamped. MoE files (`expert_count` > 0) are refused.
   */
  configFromGguf({ file, base, timeStepRank: nHeads, int, get }) {
    const A = 'granitehybrid';
    if (int('expert_count', 0, 0) > 0) throw new ModelFileError(file, `metadata "${A}.expert_count" is ${preview(get(`${A}.expert_count`))}: Granite-4.0-H mixture-of-experts layers are not supported yet`);
    const L = base.nLayer;
    const kv = ggufPerLayer(file, get, `${A}.attention.head_count_kv`, L, 0);
    const kinds: ('ssm' | 'attention')[] = kv.map((k) => (k > 0 ? 'attention' : 'ssm'));
    const nGroups = int('ssm.group_count', 1, 1);
    const ssm = ggufMamba2Fields(file, A, base, nHeads, nGroups);
    const rope = get(`${A}.rope.scaling.finetuned`) === true;
    const attention = ggufAttention(file, A, { int, get }, kinds, kv, base.dModel, (headDim) => ({
      rotaryDim: rope ? int('rope.dimension_count', 2, headDim) : 0, ropeTheta: ggufNumber(file, get, `${A}.rope.freq_base`, 10_000), ropeInterleaved: true,
      scale: ggufNumber(file, get, `${A}.attention.scale`, 1 / Math.sqrt(headDim)),
    }));
    const shared = get(`${A}.expert_shared_feed_forward_length`) !== undefined ? int('expert_shared_feed_forward_length', 1) : int('feed_forward_length', 1);
    const mlp: MlpConfig = { intermediate: shared, activation: 'silu', gated: true, gateFirst: true, names: { up: 'ffn_up.weight', gate: 'ffn_gate.weight', down: 'ffn_down.weight' } };
    checkMlp(file, mlp, `${A}.expert_shared_feed_forward_length`);
    const blocks: BlockSpec[] = kinds.flatMap((kind, l): BlockSpec[] => [
      { kind, layer: l, norm: `layers.${l}.norm.weight`, mixer: kind === 'ssm' ? `layers.${l}.mixer.` : `layers.${l}.` },
      { kind: 'mlp', layer: l, norm: `layers.${l}.ffn_norm.weight`, mixer: `layers.${l}.` },
    ]);
    const logitScale = ggufNumber(file, get, `${A}.logit_scale`, 1);
    if (!(logitScale > 0)) throw new ModelFileError(file, `metadata "${A}.logit_scale" is ${logitScale}: it must be positive`);
    return {
      ...ssm, architecture: 'granitemoehybrid', nLayer: blocks.length,
      hybrid: { blocks, attention, mlp, biases: { attentionQkv: 'optional', attentionOut: 'optional', mlp: 'optional' } },
      multipliers: { embedding: ggufNumber(file, get, `${A}.embedding_scale`, 1), residual: ggufNumber(file, get, `${A}.residual_scale`, 1), logits: 1 / logitScale },
    };
  },

  mixerTensors: mamba2.mixerTensors,
  ggufMixerTensors: mamba2.ggufMixerTensors,
  ggufFlatA: mamba2.ggufFlatA,
  traceLayout: mamba2.traceLayout,
  reference: mamba2.reference,
  matmulShapes: mamba2.matmulShapes,
} as const satisfies ArchitectureSpec<'granitemoehybrid'>;
