/**
 * Mistral's own checkpoint convention, as mistralai/Mamba-Codestral-7B-v0.1 ships it and
 * mistral-inference reads it: `params.json` + `consolidated.safetensors`.
 *
 * mistral-inference (src/mistral_inference/mamba.py, args.py `MambaArgs`) reads params.json's
 * `dim`, `n_layers`, `vocab_size`, `n_groups`, `rms_norm`, `residual_in_fp32`, `fused_add_norm`,
 * `pad_vocab_size_multiple`, `tie_embeddings` (all required) and `model_type` (its model class:
 * "mamba"; a params.json without it is a Transformer, main.py `get_model_cls`), and builds mamba_ssm's
 * `MambaLMHeadModel(MambaConfig(d_model=dim, n_layer=n_layers, vocab_size, ssm_cfg={"ngroups":
 * n_groups, "layer": "Mamba2"}, …))`: every other size is mamba_ssm's Mamba2 default (d_state 128,
 * headdim 64, expand 2, d_conv 4, chunk_size 256, no Δ limit, norm eps 1e-5) and the gated
 * RMSNorm runs per group (`RMSNormGated(group_size = d_inner / ngroups)`). So params.json is read
 * here as that mamba_ssm config (registry.ts `fromMambaSsm`), with errors naming params.json's keys.
 * Other keys are ignored, as mistral-inference ignores them.
 *
 * consolidated.safetensors is the state dict of mistral-inference's `Mamba` module, which holds the
 * MambaLMHeadModel as `self.model`: every name is "model." + mamba_ssm's (`model.backbone.embedding.weight`,
 * `model.lm_head.weight`, …; transformers' conversion script strips the same prefix). Inspection
 * strips it (`mistralTensorName`).
 */
import type { Raw } from '../formats/config.js';
import { ModelFileError, preview } from '../formats/errors.js';
import type { MambaConfig } from '../model/config.js';
import { fromMambaSsm } from './registry.js';

export const MISTRAL_PARAMS = 'params.json';
export const MISTRAL_WEIGHTS = 'consolidated.safetensors';
/** mistral_inference.mamba.Mamba's attribute holding the MambaLMHeadModel. */
export const MISTRAL_PREFIX = 'model.';

/** mamba_ssm's Mamba2 defaults that params.json cannot change (Mamba2.__init__). */
const MAMBA2_HEADDIM = 64;
const MAMBA2_EXPAND = 2;

const REQUIRED_INTS = ['dim', 'n_layers', 'vocab_size', 'n_groups', 'pad_vocab_size_multiple'] as const;
const REQUIRED_BOOLS = ['rms_norm', 'residual_in_fp32', 'fused_add_norm', 'tie_embeddings'] as const;

/** The canonical config of a mistral params.json (`file` names it in every error). */
export function mistralParamsConfig(file: string, raw: Raw): MambaConfig {
  const type = raw.model_type;
  if (type === undefined) {
    throw new ModelFileError(
      file,
      `has no "model_type": mistral-inference reads it as a Transformer (Mistral, Codestral 22B …), not a Mamba model; a Mamba params.json says "model_type": "mamba"`,
    );
  }
  if (type !== 'mamba') {
    throw new ModelFileError(file, `"model_type" is ${preview(type)}: the studio reads mistral params.json files of "mamba" models (Mamba-Codestral)`);
  }
  for (const key of REQUIRED_INTS) {
    const v = raw[key];
    if (v === undefined || v === null) throw new ModelFileError(file, `missing required key "${key}" (mistral-inference's MambaArgs needs it)`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new ModelFileError(file, `"${key}" must be a positive integer, got ${preview(v)}`);
  }
  for (const key of REQUIRED_BOOLS) {
    const v = raw[key];
    if (v === undefined || v === null) throw new ModelFileError(file, `missing required key "${key}" (mistral-inference's MambaArgs needs it)`);
    if (typeof v !== 'boolean') throw new ModelFileError(file, `"${key}" must be true or false, got ${preview(v)}`);
  }
  if (raw.rms_norm !== true) throw new ModelFileError(file, '"rms_norm" is false: mamba_ssm then normalizes with LayerNorm, which the studio does not run');
  const dim = raw.dim as number;
  const nGroups = raw.n_groups as number;
  const dInner = MAMBA2_EXPAND * dim;
  if (dInner % MAMBA2_HEADDIM !== 0) {
    throw new ModelFileError(file, `"dim" ${dim}: mamba_ssm's Mamba2 splits d_inner = 2 × dim = ${dInner} into heads of ${MAMBA2_HEADDIM}, and ${dInner} is not a multiple of ${MAMBA2_HEADDIM}`);
  }
  const heads = dInner / MAMBA2_HEADDIM;
  if (heads % nGroups !== 0) throw new ModelFileError(file, `"n_groups" ${nGroups} does not divide the ${heads} heads (2 × dim / ${MAMBA2_HEADDIM})`);
  const asMambaSsm: Raw = {
    d_model: dim,
    n_layer: raw.n_layers,
    vocab_size: raw.vocab_size,
    pad_vocab_size_multiple: raw.pad_vocab_size_multiple,
    tie_embeddings: raw.tie_embeddings,
    ssm_cfg: { layer: 'Mamba2', ngroups: nGroups },
  };
  const pad = raw.pad_vocab_size_multiple as number;
  return fromMambaSsm(file, asMambaSsm, {
    dModel: 'dim',
    nLayer: 'n_layers',
    vocabSize: pad > 1 ? `vocab_size (padded to a multiple of pad_vocab_size_multiple ${pad})` : 'vocab_size',
    nGroups: 'n_groups',
    dInner: `2 × dim (mamba_ssm's expand)`,
    dState: `d_state (mamba_ssm's Mamba2 default, 128)`,
    nHeads: `2 × dim / 64 (mamba_ssm's headdim)`,
    headDim: `headdim (mamba_ssm's Mamba2 default, 64)`,
    chunkSize: `chunk_size (mamba_ssm's Mamba2 default, 256)`,
    dConv: `d_conv (mamba_ssm's default, 4)`,
    normEps: `norm_epsilon (mamba_ssm's default, 1e-5)`,
  });
}

/**
 * The canonical (mamba_ssm / transformers) name of a consolidated.safetensors tensor: without
 * mistral-inference's "model." prefix. Names without it are left as they are (checkWeights then
 * reports them).
 */
export function mistralTensorName(name: string): string {
  return name.startsWith(MISTRAL_PREFIX) ? name.slice(MISTRAL_PREFIX.length) : name;
}
