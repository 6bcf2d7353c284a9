/**
 * Per-layer configs of a hybrid model's non-SSM blocks (issue 22): causal self-attention with a KV
 * cache (mixer: ./attention.ts) and MLPs (./mlp.ts). The model config (app/model/config.ts) says
 * which layer is which BlockKind; these say how one attention or MLP layer is built.
 */
import type { AttentionConfig, MlpConfig } from '../../model/config.js';

// The types live with the canonical config (a hybrid's MambaConfig carries them); re-exported for the mixers.
export type { AttentionConfig, BlockKind, MlpConfig } from '../../model/config.js';
export { attentionDims } from '../../model/config.js';

/** gelu: the exact erf form (torch F.gelu); gelu_tanh: its tanh approximation (approximate='tanh'). */
export type MlpActivation = MlpConfig['activation'];


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
