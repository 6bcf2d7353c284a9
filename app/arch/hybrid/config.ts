/**
 * Per-layer configs of a hybrid model's non-SSM blocks (issue 22): causal self-attention with a KV
 * cache (mixer: ./attention.ts) and MLPs (./mlp.ts). The model config (app/model/config.ts) says
 * which layer is which BlockKind; these say how one attention or MLP layer is built.
 */
export type BlockKind = 'ssm' | 'attention' | 'mlp';

export interface AttentionConfig {
  nHeads: number;
  nKvHeads: number;
  headDim: number; // GQA: nHeads % nKvHeads === 0
  /** Leading dims of each q/k head rotated; 0 = no positional encoding (NoPE). Even, ≤ headDim. */
  rotaryDim: number;
  /** RoPE base, e.g. 10000. */
  ropeTheta: number;
  /** false: pairs (i, i + rotaryDim/2) (HF rotate_half / NeoX / flash_attn default); true: pairs (2i, 2i+1). */
  ropeInterleaved: boolean;
  /** Multiplies q·k (1/sqrt(headDim) usually; Granite's attention_multiplier). */
  scale: number;
  /** Weight names under the mixer prefix: fused rows [q; k; v] (mamba_ssm MHA `in_proj.weight`), or separate. Biases: the same name with `.bias` instead of `.weight`, used when present (LayerWeights.optional). */
  names: { qkv: string; out: string } | { q: string; k: string; v: string; out: string };
  /** mamba_ssm MHA's depthwise causal conv over the qkv rows (attn_cfg.d_conv, weight `conv1d.weight` [qkvDim, 1, K], bias `conv1d.bias`), no activation; 0 = none. Its window is part of the state. */
  dConv: number;
  /** KV-cache capacity in tokens (the state's size). */
  capacity: number;
}

/** gelu: the exact erf form (torch F.gelu); gelu_tanh: its tanh approximation (approximate='tanh'). */
export type MlpActivation = 'silu' | 'gelu' | 'gelu_tanh' | 'relu2';

export interface MlpConfig {
  intermediate: number;
  activation: MlpActivation;
  /** gated: fused input rows [a; b] of 2·intermediate with out = act(gate) · up; gateFirst says which half is the gate (Granite shared_mlp.input_linear: gate first; mamba_ssm GatedMLP fc1: y first, gate second). Not gated: up → act → down (Nemotron-H: up_proj, relu²). */
  gated: boolean;
  gateFirst: boolean;
  /** e.g. { up: 'fc1.weight', down: 'fc2.weight' } or { up: 'up_proj.weight', down: 'down_proj.weight' }; biases as above. */
  names: { up: string; down: string };
}

/** Rows of q, k and v: nHeads·headDim, nKvHeads·headDim twice. */
export function attentionDims(c: AttentionConfig): { qDim: number; kvDim: number; qkvDim: number } {
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  return { qDim, kvDim, qkvDim: qDim + 2 * kvDim };
}

/** The bias name of a weight name (`x.weight` → `x.bias`). */
export const biasName = (weight: string): string => weight.replace(/\.weight$/, '.bias');

/** Throws a RangeError naming `what` (e.g. `layer 3 attention`) and the field unless the config is usable. */
export function checkAttentionConfig(what: string, c: AttentionConfig): void {
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${what}: ${name} must be an integer ≥ ${min}, got ${v}`);
  };
  int('nHeads', c.nHeads, 1);
  int('nKvHeads', c.nKvHeads, 1);
  int('headDim', c.headDim, 1);
  int('capacity', c.capacity, 1);
  int('dConv', c.dConv, 0);
  int('rotaryDim', c.rotaryDim, 0);
  if (c.nHeads % c.nKvHeads !== 0) throw new RangeError(`${what}: nHeads ${c.nHeads} is not a multiple of nKvHeads ${c.nKvHeads}`);
  if (c.rotaryDim % 2 !== 0 || c.rotaryDim > c.headDim) throw new RangeError(`${what}: rotaryDim ${c.rotaryDim} must be even and ≤ headDim ${c.headDim}`);
  if (c.rotaryDim > 0 && !(c.ropeTheta > 0)) throw new RangeError(`${what}: ropeTheta must be positive, got ${c.ropeTheta}`);
  if (!(Number.isFinite(c.scale) && c.scale > 0)) throw new RangeError(`${what}: scale must be a positive number, got ${c.scale}`);
  if (c.dConv === 1) throw new RangeError(`${what}: dConv 1 is not a causal conv window (use 0 for none, or 2..8)`);
}

export function checkMlpConfig(what: string, c: MlpConfig): void {
  if (!Number.isInteger(c.intermediate) || c.intermediate < 1) throw new RangeError(`${what}: intermediate must be an integer ≥ 1, got ${c.intermediate}`);
  if (!['silu', 'gelu', 'gelu_tanh', 'relu2'].includes(c.activation)) throw new RangeError(`${what}: unknown activation ${String(c.activation)}`);
}
