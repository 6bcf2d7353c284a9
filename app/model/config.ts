/**
 * The canonical model config: what every convention a checkpoint comes in (transformers,
 * mamba_ssm, GGUF metadata) is turned into by its architecture's spec (app/arch/<name>/), and
 * what the engine reads. Fields an architecture does not use are 0 (see each field).
 */
export interface MambaConfig {
  /** The architecture's registry name (app/arch/registry.ts: ArchitectureName). */
  architecture: string;
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
  /**
   * Falcon-Mamba: the epsilon of the weightless RMS norm applied separately to x_proj's three
   * parts — Δ's low-rank input dt_r, B and C — before dt_proj and the scan (transformers
   * `mixer_rms_eps`, 1e-6; a GGUF's layer norm epsilon, which llama.cpp runs that norm with).
   * 0: no such norm (Mamba, Mamba-2).
   */
  mixerRmsEps: number;
  useBias: boolean;
  useConvBias: boolean;
  tieEmbeddings: boolean;
  /**
   * Hybrids (attention and MLP blocks beside the SSM blocks): the blocks and their mixers' configs.
   * Absent: every block is the architecture's SSM mixer, named `layers.<l>.norm.weight` /
   * `layers.<l>.mixer.` (configBlocks). `nLayer` counts blocks: a checkpoint layer with a mixer
   * and an MLP (mamba_ssm's `norm2`/`mlp`, Granite's `shared_mlp`) is two blocks.
   */
  hybrid?: HybridConfig;
  /** The final norm's weight name after the model's prefix (absent: `norm_f.weight`; Granite: `norm.weight`). */
  finalNorm?: string;
  /**
   * Granite's multipliers (absent: all 1): the embedding output × `embedding`, every block's output
   * × `residual` before the residual add, the logits × `logits` (1 / logits_scaling).
   */
  multipliers?: { embedding: number; residual: number; logits: number };
}

/** A config's multipliers, 1 where it has none (every model but Granite's). */
export function configMultipliers(config: MambaConfig): NonNullable<MambaConfig['multipliers']> {
  return config.multipliers ?? { embedding: 1, residual: 1, logits: 1 };
}

/** The final norm's weight name under the model's prefix. */
export function finalNormName(config: MambaConfig, prefix: string): string {
  return `${prefix}${config.finalNorm ?? 'norm_f.weight'}`;
}

/** The weight-name prefix of a model from its embedding's name: `backbone.`, `model.`, or ''. */
export function modelPrefix(embeddingName: string): string {
  return embeddingName.replace(/(embeddings?|embed_tokens)\.weight$/, '');
}

/** What a block's mixer is: the architecture's SSM, attention, or an MLP. */
export type BlockKind = 'ssm' | 'attention' | 'mlp';

/** One block: norm, mixer, residual add. Names follow the model's prefix (`backbone.`, `model.`). */
export interface BlockSpec {
  kind: BlockKind;
  /** The checkpoint layer it belongs to (two blocks share one when the layer has an MLP). */
  layer: number;
  /** Its norm's weight, e.g. `layers.3.norm.weight`. */
  norm: string;
  /** Its mixer's weight prefix, e.g. `layers.3.mixer.`. */
  mixer: string;
}

/** Causal self-attention with a KV cache (multi-head or grouped-query). */
export interface AttentionConfig {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Leading dims of each q/k head rotated; 0 = no positional encoding (NoPE). */
  rotaryDim: number;
  ropeTheta: number;
  /** false: pairs (i, i + rotaryDim/2) (HF rotate_half, NeoX); true: pairs (2i, 2i+1). */
  ropeInterleaved: boolean;
  /** Multiplies q·k (1/√headDim usually; Granite's attention_multiplier). */
  scale: number;
  /** Weight names under the mixer prefix: fused rows [q; k; v] or separate; biases: `.bias` for `.weight`, when present. */
  names: { qkv: string; out: string } | { q: string; k: string; v: string; out: string };
  /** mamba_ssm MHA's depthwise causal conv over the qkv rows (no activation); 0 = none. */
  dConv: number;
  /** KV-cache capacity in tokens (the state's size). */
  capacity: number;
}

/** Rows of q, k and v: nHeads·headDim, nKvHeads·headDim twice. */
export function attentionDims(c: AttentionConfig): { qDim: number; kvDim: number; qkvDim: number } {
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  return { qDim, kvDim, qkvDim: qDim + 2 * kvDim };
}

/** A (gated) MLP block. */
export interface MlpConfig {
  intermediate: number;
  /** gelu: the exact erf form (torch F.gelu); gelu_tanh: its tanh approximation. */
  activation: 'silu' | 'gelu' | 'gelu_tanh' | 'relu2';
  /** gated: the up matrix's rows are [a; b] (2·intermediate), out = act(gate)·up; gateFirst says which half is the gate. */
  gated: boolean;
  gateFirst: boolean;
  /**
   * `gate` (gated only): the gate as its own matrix [intermediate, D] and `up` as the up half alone
   * (llama.cpp's ffn_gate / ffn_up), written into the gate and up halves of one row; else `up`
   * holds both halves (gateFirst orders them).
   */
  names: { up: string; down: string; gate?: string };
}

export interface HybridConfig {
  blocks: BlockSpec[];
  /** The attention blocks' config (null when there are none). */
  attention: AttentionConfig | null;
  /** The MLP blocks' config (null when there are none). */
  mlp: MlpConfig | null;
  /** Which biases the attention and MLP blocks carry: true required, false none, 'optional' used when the file has them (absent: none). */
  biases?: { attentionQkv: boolean | 'optional'; attentionOut: boolean | 'optional'; mlp: boolean | 'optional' };
}

/** The blocks of a config: its hybrid's, else one SSM block per layer under the usual names. */
export function configBlocks(config: MambaConfig): readonly BlockSpec[] {
  if (config.hybrid) return config.hybrid.blocks;
  return Array.from({ length: config.nLayer }, (_, l) => ({ kind: 'ssm', layer: l, norm: `layers.${l}.norm.weight`, mixer: `layers.${l}.mixer.` }));
}

/** The longest context a user may choose for a hybrid's KV caches (tokens). */
export const MAX_CONTEXT_TOKENS = 1_048_576;

/**
 * The config with its attention blocks' KV caches sized for `tokens` of context (the user's choice:
 * the app's load option, the CLI's --context); unchanged without attention blocks or a choice.
 */
export function withContext(config: MambaConfig, tokens: number | undefined): MambaConfig {
  const attention = config.hybrid?.attention;
  if (tokens === undefined || !attention) return config;
  if (!Number.isInteger(tokens) || tokens < 1 || tokens > MAX_CONTEXT_TOKENS) throw new RangeError(`the context must be a whole number of tokens from 1 to ${MAX_CONTEXT_TOKENS.toLocaleString('en-US')}, got ${tokens}`);
  return { ...config, hybrid: { ...config.hybrid!, attention: { ...attention, capacity: tokens } } };
}
