/**
 * Plausible bounds on a model config, checked in one place before anything loops over a
 * dimension or allocates by one: every config the studio reads — transformers and mamba_ssm
 * config.json (registry.ts `canonicalConfig`), GGUF metadata (gguf.ts `ggufToCanonical`) — passes
 * `checkConfigBounds` as soon as its canonical MambaConfig exists, and `expectedTensors` /
 * `checkWeights` (tensors.ts) check again before their per-layer loop. A config outside them is a
 * ModelFileError naming the file and the key the value came from.
 *
 * Each bound is far above every released model (the largest are named beside it) and far below
 * what would make a loop, a string or an allocation run away; the products of the dimensions
 * are capped by `MAX_CONFIG_BYTES` (weights and one sequence's state as float32), which still
 * admits 70B-parameter checkpoints and 256k vocabularies. All the bounded values multiply
 * together well inside 2^53, so the arithmetic below is exact.
 */
import { ModelFileError } from '../formats/errors.js';
import type { BlockKind, MambaConfig } from '../model/config.js';
import { hybridBlockTensors } from './hybrid/blocks.js';
import type { ArchitectureSpec } from './spec.js';

/** The integer fields that are bounded, [min, max]. A field an architecture does not use is 0 (min applies only where used). */
export const CONFIG_BOUNDS = {
  /** Width: the widest released LMs have 16,384 (Llama 3.1 405B) to 18,432 (Nemotron-4 340B). */
  dModel: { min: 1, max: 65_536, what: 'the model width' },
  /** Depth: the deepest released LMs have ~126 layers (Mamba: 64). */
  nLayer: { min: 1, max: 4_096, what: 'layers' },
  /** Vocabulary: the largest released are ~256k (Gemma 262,144; NVIDIA Mamba-2 8B 256,000). */
  vocabSize: { min: 1, max: 4_194_304, what: 'vocabulary entries' },
  /** expand × d_model: 2 × the widest (Jamba: 16,384). */
  dInner: { min: 1, max: 262_144, what: 'inner channels (d_inner)' },
  /** SSM state per channel or head: 16 (Mamba-1) to 128–256 (Mamba-2). */
  dState: { min: 1, max: 4_096, what: 'state entries (d_state)' },
  /** The studio's causal conv kernel runs 2 to 8 taps (CONV_KERNEL_SIZES in kernels/causal-conv1d.ts; every Mamba uses 4). */
  dConv: { min: 2, max: 8, what: 'convolution taps (d_conv)' },
  /** Mamba-1's Δ rank: ceil(d_model / 16), so at most the width bound. */
  dtRank: { min: 1, max: 65_536, what: 'the rank of Δ (dt_rank)' },
  /** Mamba-2 heads: 24–128 in released models. */
  nHeads: { min: 1, max: 65_536, what: 'heads' },
  /** Mamba-2 head size: 64 in released models. */
  headDim: { min: 1, max: 4_096, what: 'channels per head (head_dim)' },
  /** Mamba-2 B/C groups: 1–8 in released models. */
  nGroups: { min: 1, max: 1_024, what: 'groups (n_groups)' },
  /** Mamba-2 SSD chunk: 256 in released models (the studio runs at most 1,024 at a time anyway). */
  chunkSize: { min: 1, max: 65_536, what: 'tokens per chunk (chunk_size)' },
} as const;

export type BoundedField = keyof typeof CONFIG_BOUNDS;

/**
 * Weights and one sequence's SSM state, as float32, must fit in 2^40 bytes (1 TiB): 2^38 ≈ 275
 * billion parameters. A 70B model is 280 GB as float32; mamba-2.8b is 11 GB.
 */
export const MAX_CONFIG_BYTES = 2 ** 40;

/** The layer norm epsilon (and Falcon-Mamba's mixer norm's): 1e-5 or 1e-6 in released models; it must be positive (a zero one divides by zero on an all-zero row). */
export const NORM_EPS_BOUNDS = { min: 0, max: 1 } as const;

/** Names of the keys a config's fields came from, for messages ("num_hidden_layers", "mamba.block_count"). */
export type ConfigKeys = Partial<Record<keyof MambaConfig, string>>;

const show = (x: number) => (Number.isFinite(x) && Math.abs(x) < 1e21 ? String(x) : x.toExponential(3));

/** Elements of all the tensors a config implies, computed without a loop over layers. */
export function impliedParameters(config: MambaConfig, spec: ArchitectureSpec): number {
  const { dModel: D, vocabSize: V, nLayer: L } = config;
  const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
  const ssm = spec.mixerTensors(config, '').reduce((sum, t) => sum + count(t.shape), 0);
  const blocks = config.hybrid?.blocks;
  if (!blocks) return V * D * (config.tieEmbeddings ? 1 : 2) + D + L * (D + ssm);
  // A hybrid: each kind's mixer once, times its blocks (the blocks list is at most nLayer long, checked before).
  const per = { ssm, attention: 0, mlp: 0 };
  const first = (kind: BlockKind) => blocks.find((b) => b.kind === kind);
  for (const kind of ['attention', 'mlp'] as const) {
    const block = first(kind);
    if (block) per[kind] = hybridBlockTensors(config, block, '').reduce((sum, t) => sum + count(t.shape), 0);
  }
  const mixers = blocks.reduce((sum, b) => sum + per[b.kind], 0);
  return V * D * (config.tieEmbeddings ? 1 : 2) + D + L * D + mixers;
}

/**
 * Throws a ModelFileError naming `file` and the key when a config is outside the bounds above;
 * `required` are the architecture's own fields that must be ≥ 1 (the base ones always are).
 */
export function checkConfigBounds(file: string, config: MambaConfig, spec: ArchitectureSpec, keys: ConfigKeys = {}): void {
  const key = (field: keyof ConfigKeys) => keys[field] ?? field;
  const base: BoundedField[] = ['dModel', 'nLayer', 'vocabSize', 'dInner', 'dState', 'dConv'];
  const required = new Set<keyof MambaConfig>([...base, ...spec.requiredFields]);
  for (const [field, bound] of Object.entries(CONFIG_BOUNDS) as [BoundedField, (typeof CONFIG_BOUNDS)[BoundedField]][]) {
    const value = config[field];
    const min = required.has(field) ? bound.min : 0;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > bound.max) {
      throw new ModelFileError(
        file,
        `"${key(field)}" is ${typeof value === 'number' ? show(value) : String(value)}: ${bound.what} must be an integer from ${min} to ${bound.max}`,
      );
    }
  }
  const eps = config.normEps;
  if (typeof eps !== 'number' || !(eps > NORM_EPS_BOUNDS.min && eps <= NORM_EPS_BOUNDS.max)) {
    throw new ModelFileError(file, `"${key('normEps')}" is ${typeof eps === 'number' ? show(eps) : String(eps)}: the norm epsilon must be > ${NORM_EPS_BOUNDS.min} and ≤ ${NORM_EPS_BOUNDS.max}`);
  }
  const mixerEps = config.mixerRmsEps;
  const hasMixerNorm = spec.requiredFields.includes('mixerRmsEps');
  if (typeof mixerEps !== 'number' || (hasMixerNorm ? !(mixerEps > NORM_EPS_BOUNDS.min && mixerEps <= NORM_EPS_BOUNDS.max) : mixerEps !== 0)) {
    const shown = typeof mixerEps === 'number' ? show(mixerEps) : String(mixerEps);
    throw new ModelFileError(
      file,
      hasMixerNorm
        ? `"${key('mixerRmsEps')}" is ${shown}: the mixer norm epsilon must be > ${NORM_EPS_BOUNDS.min} and ≤ ${NORM_EPS_BOUNDS.max}`
        : `"${key('mixerRmsEps')}" is ${shown}: ${spec.label} has no mixer norm (it must be 0)`,
    );
  }
  const [lo, hi] = config.timeStepLimit;
  if (!(Number.isFinite(lo) && lo >= 0 && typeof hi === 'number' && hi >= lo)) {
    throw new ModelFileError(file, `"${key('timeStepLimit')}" is [${show(lo)}, ${show(hi)}]: Δ's limits must be [min, max] with 0 ≤ min ≤ max (max may be Infinity)`);
  }
  const { dModel: D, dInner: Di, dState: N, nLayer: L, vocabSize: V } = config;
  const blocks = config.hybrid?.blocks;
  if (blocks && blocks.length !== L) throw new ModelFileError(file, `the layout lists ${blocks.length} blocks for ${L} layers`);
  const a = config.hybrid?.attention;
  const kvEntries = a ? 2 * a.capacity * a.nKvHeads * a.headDim * (blocks?.filter((b) => b.kind === 'attention').length ?? 0) : 0;
  const bytes = 4 * (impliedParameters(config, spec) + L * Di * N + kvEntries);
  if (!(bytes <= MAX_CONFIG_BYTES)) {
    throw new ModelFileError(
      file,
      `the config implies ${show(bytes / 4)} parameters and state entries (${key('dModel')} ${D}, ${key('nLayer')} ${L}, ${key('vocabSize')} ${V}, ` +
        `${key('dInner')} ${Di}, ${key('dState')} ${N}): ${(bytes / 2 ** 40).toFixed(1)} TiB as float32, over the limit of 1 TiB`,
    );
  }
}
