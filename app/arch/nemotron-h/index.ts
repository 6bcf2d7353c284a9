/**
 * NVIDIA Nemotron-H (nvidia/Nemotron-H-{4B,8B,47B,56B}-*, NVIDIA-Nemotron-Nano-*-v2): a hybrid of
 * Mamba-2 blocks, attention blocks and MLP blocks, one mixer per block (norm → mixer → residual),
 * its layout in `layers_block_type` (transformers 5: "linear_attention" = Mamba-2,
 * "full_attention", "mlp", "moe"; older configs "mamba", "attention") or the older
 * `hybrid_override_pattern` string (M, *, -, E). transformers `NemotronHForCausalLM`
 * (model_type "nemotron_h"), its tensors under `backbone.` as the Hub checkpoints name them.
 *
 * - Mamba-2 blocks: d_inner = mamba_num_heads × mamba_head_dim, the gated RMSNorm per group
 *   (group_size = d_inner / n_groups), Δ clamped to [time_step_min, ∞) as transformers' module
 *   does (`time_step_limit = (config.time_step_min, inf)`; the config's own time_step_limit is
 *   not used by it).
 * - Attention blocks: q_proj, k_proj, v_proj, o_proj (biases, with attention_bias, when the file
 *   has them: transformers' module never makes them, NVIDIA's does), grouped-query, no
 *   positional encoding (the SSM blocks carry position), scale 1/√head_dim.
 * - MLP blocks: up_proj → relu² → down_proj (mlp_bias), not gated.
 * - MoE blocks ("E", "moe": Nemotron-3 Nano) are refused for now.
 * Everything about the Mamba-2 blocks (tensors, trace layout, reference, GPU mixer) is Mamba-2's.
 */
import type { Raw } from '../../formats/config.js';
import { ModelFileError, preview } from '../../formats/errors.js';
import type { AttentionConfig, BlockKind, BlockSpec, MambaConfig, MlpConfig } from '../../model/config.js';
import { checkAttention, checkMlp, ggufAttention, ggufMamba2Fields, ggufPerLayer, ggufShared, kvCapacity } from '../hybrid/blocks.js';
import { mamba2 } from '../mamba2/index.js';
import type { ArchitectureSpec, BaseConfig, JsonConfigSource } from '../spec.js';

const PATTERN: Readonly<Record<string, BlockKind | 'moe'>> = { M: 'ssm', '*': 'attention', '-': 'mlp', E: 'moe' };
const NAMED: Readonly<Record<string, BlockKind | 'moe'>> = {
  linear_attention: 'ssm', mamba: 'ssm', full_attention: 'attention', attention: 'attention', mlp: 'mlp', moe: 'moe',
};
/** Most blocks a layout may list (the bounds' layer limit). */
const MAX_BLOCKS = 4_096;

/** The block kinds of a Nemotron-H config, from layers_block_type (or layer_types) or hybrid_override_pattern. */
export function nemotronKinds(file: string, raw: Raw): BlockKind[] {
  const list = raw.layers_block_type ?? raw.layer_types;
  let kinds: (BlockKind | 'moe')[];
  if (list !== undefined && list !== null) {
    if (!Array.isArray(list) || list.length > MAX_BLOCKS) throw new ModelFileError(file, `"layers_block_type" must be a list of at most ${MAX_BLOCKS} layer types`);
    kinds = list.map((t, i) => {
      const kind = typeof t === 'string' ? NAMED[t] : undefined;
      if (!kind) throw new ModelFileError(file, `"layers_block_type"[${i}] is ${preview(t)}: not one of ${Object.keys(NAMED).join(', ')}`);
      return kind;
    });
  } else {
    const pattern = raw.hybrid_override_pattern;
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_BLOCKS) throw new ModelFileError(file, 'has neither "layers_block_type" nor a "hybrid_override_pattern" string: the layers are not described');
    kinds = [...pattern].map((ch, i) => {
      const kind = PATTERN[ch];
      if (!kind) throw new ModelFileError(file, `"hybrid_override_pattern" has ${preview(ch)} at ${i}: not one of M, *, -, E`);
      return kind;
    });
  }
  const moe = kinds.indexOf('moe');
  if (moe >= 0) throw new ModelFileError(file, `layer ${moe} is a mixture-of-experts block: Nemotron-H MoE layers (Nemotron-3 Nano) are not supported yet`);
  if (kinds.length === 0) throw new ModelFileError(file, 'lists no layers');
  return kinds as BlockKind[];
}

/** A key, or the older name transformers still reads (NemotronHConfig.__post_init__'s aliases). */
function aliased(raw: Raw, key: string, legacy: string): string {
  return raw[key] === undefined && raw[legacy] !== undefined ? legacy : key;
}

function transformersBase({ file, raw, read }: Omit<JsonConfigSource, 'base'>): BaseConfig {
  const kinds = nemotronKinds(file, raw);
  const { int, num } = read;
  const dInner = int('mamba_num_heads', 128) * int('mamba_head_dim', 64);
  return {
    source: 'transformers', dModel: int('hidden_size'), nLayer: kinds.length, vocabSize: int('vocab_size'), dInner,
    dConv: int(aliased(raw, 'conv_kernel', 'mamba_d_conv'), 4), normEps: num('layer_norm_epsilon', 1e-5),
  };
}

export const nemotronH = {
  name: 'nemotron_h',
  label: 'Nemotron-H',
  transformersClass: 'NemotronHForCausalLM',
  mambaSsmLayer: null,
  requiredFields: mamba2.requiredFields,
  configKeys: {
    transformers: {
      nLayer: 'layers_block_type (its length)', dInner: 'mamba_num_heads × mamba_head_dim', dState: 'ssm_state_size', nHeads: 'mamba_num_heads',
      headDim: 'mamba_head_dim', nGroups: 'n_groups', chunkSize: 'chunk_size', timeStepLimit: 'time_step_min', dConv: 'conv_kernel',
    },
    mamba_ssm: {},
    gguf: {},
  },
  transformersBase,

  configFromTransformers({ file, raw, read, base }) {
    const { int, num, bool } = read;
    const kinds = nemotronKinds(file, raw);
    const { dModel: D, dInner } = base;
    const nHeads = int('mamba_num_heads', 128);
    const headDim = int('mamba_head_dim', 64);
    const nGroups = int(aliased(raw, 'n_groups', 'mamba_n_groups'), 8);
    if (nGroups < 1 || nHeads % nGroups !== 0) throw new ModelFileError(file, `mamba_num_heads ${nHeads} is not a multiple of n_groups ${nGroups}`);
    const floor = num(aliased(raw, 'time_step_min', 'mamba_dt_min'), 0.001);
    const attentionHeads = int('num_attention_heads', 32);
    // head_dim (transformers), attention_head_dim (NVIDIA's configs on the Hub), else hidden_size / heads.
    const headKey = raw.head_dim !== undefined && raw.head_dim !== null ? 'head_dim' : raw.attention_head_dim !== undefined && raw.attention_head_dim !== null ? 'attention_head_dim' : null;
    const headSize = headKey ? int(headKey) : Math.trunc(D / attentionHeads);
    const attention: AttentionConfig | null = kinds.includes('attention')
      ? {
          nHeads: attentionHeads, nKvHeads: int('num_key_value_heads', attentionHeads), headDim: headSize, rotaryDim: 0, ropeTheta: 10_000,
          ropeInterleaved: false, scale: 1 / Math.sqrt(headSize), names: { q: 'q_proj.weight', k: 'k_proj.weight', v: 'v_proj.weight', out: 'o_proj.weight' },
          dConv: 0, capacity: kvCapacity(typeof raw.max_position_embeddings === 'number' ? raw.max_position_embeddings : undefined),
        }
      : null;
    if (attention) checkAttention(file, attention, { heads: 'num_attention_heads', kvHeads: 'num_key_value_heads', headDim: 'head_dim' });
    const act = raw.mlp_hidden_act ?? 'relu2';
    if (act !== 'relu2') throw new ModelFileError(file, `"mlp_hidden_act" is ${preview(act)}: Nemotron-H MLPs run relu² (the studio runs no other here)`);
    const mlp: MlpConfig | null = kinds.includes('mlp')
      ? { intermediate: int('intermediate_size'), activation: 'relu2', gated: false, gateFirst: false, names: { up: 'up_proj.weight', down: 'down_proj.weight' } }
      : null;
    if (mlp) checkMlp(file, mlp, 'intermediate_size');
    // attention_bias: NVIDIA's modeling code gives q/k/v/o biases by it; transformers' (JambaAttention) never does. Used when the file has them.
    const attentionBias = bool('attention_bias', false) ? 'optional' : false;
    const blocks: BlockSpec[] = kinds.map((kind, l) => ({ kind, layer: l, norm: `layers.${l}.norm.weight`, mixer: `layers.${l}.mixer.` }));
    const config: MambaConfig = {
      architecture: 'nemotron_h', source: 'transformers', dModel: D, nLayer: kinds.length, vocabSize: base.vocabSize, dInner,
      dState: int('ssm_state_size', 128), dConv: base.dConv, dtRank: 0, nHeads, headDim, nGroups,
      chunkSize: int(aliased(raw, 'chunk_size', 'mamba_chunk_size'), 128), timeStepLimit: [floor, Infinity],
      normGroupSize: dInner / nGroups, normEps: base.normEps, mixerRmsEps: 0,
      useBias: bool('use_bias', false), useConvBias: bool(aliased(raw, 'use_conv_bias', 'mamba_conv_bias'), true),
      tieEmbeddings: bool('tie_word_embeddings', false),
      hybrid: { blocks, attention, mlp, biases: { attentionQkv: attentionBias, attentionOut: attentionBias, mlp: bool('mlp_bias', false) } },
    };
    return config;
  },

  configFromMambaSsm({ file }) {
    throw new ModelFileError(file, 'mamba_ssm has no Nemotron-H config; use the transformers checkpoint (model_type "nemotron_h")');
  },

  /**
   * llama.cpp's GGUF (conversion NemotronHModel): a layer is attention where
   * `nemotron_h.attention.head_count_kv[l]` > 0, an MLP where `nemotron_h.feed_forward_length[l]`
   * > 0, else Mamba-2; head size `attention.key_length`. Run as llama.cpp runs it: the gated norm
   * per group, Δ not clamped (its Mamba-2 graph has no time_step_min floor), no positions in
   * attention. Tensors: ssm_* as Mamba-2's, attn_q/k/v/output, ffn_up/ffn_down (biases when there).
   */
  configFromGguf({ file, base, timeStepRank: nHeads, int, get }) {
    const L = base.nLayer;
    const kv = ggufPerLayer(file, get, 'nemotron_h.attention.head_count_kv', L, 0);
    const ff = ggufPerLayer(file, get, 'nemotron_h.feed_forward_length', L, 0);
    const kinds: BlockKind[] = kv.map((k, l) => (k > 0 ? 'attention' : (ff[l] as number) > 0 ? 'mlp' : 'ssm'));
    const nGroups = int('ssm.group_count', 1, 1);
    const ssm = ggufMamba2Fields(file, 'nemotron_h', base, nHeads, nGroups);
    const mlpLayers = kinds.flatMap((k, l) => (k === 'mlp' ? [l] : []));
    // No positions in attention: the SSM blocks carry them.
    const attention = ggufAttention(file, 'nemotron_h', { int, get }, kinds, kv, base.dModel, (headDim) => ({ rotaryDim: 0, ropeTheta: 10_000, ropeInterleaved: false, scale: 1 / Math.sqrt(headDim) }));
    const mlp: MlpConfig | null =
      mlpLayers.length > 0
        ? { intermediate: ggufShared(file, 'nemotron_h.feed_forward_length', mlpLayers.map((l) => ff[l] as number), 'MLP'), activation: 'relu2', gated: false, gateFirst: false, names: { up: 'ffn_up.weight', down: 'ffn_down.weight' } }
        : null;
    const blocks: BlockSpec[] = kinds.map((kind, l) => ({ kind, layer: l, norm: `layers.${l}.norm.weight`, mixer: kind === 'ssm' ? `layers.${l}.mixer.` : `layers.${l}.` }));
    return {
      ...ssm, architecture: 'nemotron_h', nLayer: L,
      hybrid: { blocks, attention, mlp, biases: { attentionQkv: 'optional', attentionOut: 'optional', mlp: 'optional' } },
    };
  },

  mixerTensors: mamba2.mixerTensors,
  ggufMixerTensors: mamba2.ggufMixerTensors,
  ggufFlatA: mamba2.ggufFlatA,
  traceLayout: mamba2.traceLayout,
  reference: mamba2.reference,
  matmulShapes: mamba2.matmulShapes,
} as const satisfies ArchitectureSpec<'nemotron_h'>;
