/**
 * Mamba-2 (Dao & Gu 2024): SSD, a scalar-A selective scan per head with grouped B and C and a
 * gated RMSNorm. transformers `Mamba2ForCausalLM` (model_type "mamba2"), mamba_ssm `Mamba2`
 * (ssm_cfg.layer "Mamba2"), GGUF general.architecture "mamba2".
 */
import { ModelFileError, preview } from '../../formats/errors.js';
import type { MambaConfig } from '../../model/config.js';
import type { TraceLayout } from '../../model/mixer.js';
import { SSM_GGUF_TENSORS, type ArchitectureSpec, type BaseConfig } from '../spec.js';
import { mamba2Layout } from './layout.js';
import { mamba2MixerRef } from './reference.js';

type Mamba2Fields = Pick<MambaConfig, 'dState' | 'nHeads' | 'headDim' | 'nGroups' | 'chunkSize' | 'timeStepLimit' | 'normGroupSize' | 'useBias' | 'useConvBias' | 'tieEmbeddings'>;

function config(base: BaseConfig, f: Mamba2Fields): MambaConfig {
  const { source, dModel, nLayer, vocabSize, dInner, dConv, normEps } = base;
  return {
    architecture: 'mamba2', source, dModel, nLayer, vocabSize, dInner, dState: f.dState, dConv, dtRank: 0,
    nHeads: f.nHeads, headDim: f.headDim, nGroups: f.nGroups, chunkSize: f.chunkSize, timeStepLimit: f.timeStepLimit, normGroupSize: f.normGroupSize, normEps, mixerRmsEps: 0,
    useBias: f.useBias, useConvBias: f.useConvBias, tieEmbeddings: f.tieEmbeddings,
  };
}

function traceLayout(c: MambaConfig): TraceLayout {
  const { dInner: Di, dState: N, nGroups: G, nHeads: H } = c;
  const l = mamba2Layout({ dInner: Di, nGroups: G, dState: N, nHeads: H });
  // Δ per head [T, H]; x, B and C [T, Di + 2GN] in the conv's rows (x | B | C).
  return { deltaWidth: H, deltaUnit: 'head', rowWidth: l.xbcWidth, bOffset: l.bOffset, cOffset: l.cOffset, bcWidth: G * N, nGroups: G, aStates: 1, xOffset: 0, extraTaps: false, aLogName: 'A_log' };
}

export const mamba2 = {
  name: 'mamba2',
  label: 'Mamba-2',
  transformersClass: 'Mamba2ForCausalLM',
  mambaSsmLayer: 'Mamba2',
  requiredFields: ['nHeads', 'headDim', 'nGroups', 'chunkSize'],
  configKeys: {
    transformers: { dState: 'state_size', nHeads: 'num_heads', headDim: 'head_dim', nGroups: 'n_groups', chunkSize: 'chunk_size', timeStepLimit: 'time_step_limit' },
    mamba_ssm: {
      dState: 'ssm_cfg.d_state', nHeads: 'd_inner / ssm_cfg.headdim', headDim: 'ssm_cfg.headdim', nGroups: 'ssm_cfg.ngroups',
      chunkSize: 'ssm_cfg.chunk_size', timeStepLimit: 'ssm_cfg.dt_limit',
    },
    gguf: { nHeads: 'mamba2.ssm.time_step_rank', headDim: 'mamba2.ssm.inner_size / mamba2.ssm.time_step_rank', nGroups: 'mamba2.ssm.group_count' },
  },

  configFromTransformers({ file, raw, read: { int, bool }, base }) {
    const { dInner } = base;
    const nHeads = int('num_heads', 128);
    const headDim = int('head_dim', 64);
    const nGroups = int('n_groups', 8);
    const dState = int('state_size', 128);
    if (nHeads * headDim !== dInner) {
      throw new ModelFileError(file, `num_heads × head_dim = ${nHeads} × ${headDim} = ${nHeads * headDim} ≠ expand × hidden_size = ${dInner}`);
    }
    if (nGroups < 1 || nHeads % nGroups !== 0) throw new ModelFileError(file, `num_heads ${nHeads} is not a multiple of n_groups ${nGroups}`);
    const limit = raw.time_step_limit;
    let timeStepLimit: [number, number] = [0, Infinity];
    if (limit !== undefined && limit !== null) {
      if (!Array.isArray(limit) || limit.length !== 2 || !limit.every((x) => typeof x === 'number' && !Number.isNaN(x))) {
        throw new ModelFileError(file, `"time_step_limit" must be [min, max], got ${preview(limit)}`);
      }
      timeStepLimit = [limit[0] as number, limit[1] as number];
    }
    return config(base, {
      dState, nHeads, headDim, nGroups, chunkSize: int('chunk_size', 256), timeStepLimit,
      // transformers normalizes over all of d_inner.
      normGroupSize: dInner,
      useBias: bool('use_bias', false), useConvBias: bool('use_conv_bias', true), tieEmbeddings: bool('tie_word_embeddings', false),
    });
  },

  configFromMambaSsm({ file, ssm, read: { int, bool }, base, tieEmbeddings }) {
    const { dInner } = base;
    const headDim = int('headdim', 64, ssm, 'ssm_cfg.headdim');
    if (headDim < 1 || dInner % headDim !== 0) throw new ModelFileError(file, `d_inner ${dInner} is not a multiple of ssm_cfg.headdim ${headDim}`);
    const nHeads = dInner / headDim;
    const nGroups = int('ngroups', 1, ssm, 'ssm_cfg.ngroups');
    if (nGroups < 1 || nHeads % nGroups !== 0) throw new ModelFileError(file, `${nHeads} heads are not a multiple of ssm_cfg.ngroups ${nGroups}`);
    const limit = ssm.dt_limit ?? [0, Infinity];
    if (!Array.isArray(limit) || limit.length !== 2 || !limit.every((x) => typeof x === 'number' && !Number.isNaN(x))) {
      throw new ModelFileError(file, `"ssm_cfg.dt_limit" must be [min, max], got ${preview(limit)}`);
    }
    return config(base, {
      dState: int('d_state', 128, ssm, 'ssm_cfg.d_state'), nHeads, headDim, nGroups,
      chunkSize: int('chunk_size', 256, ssm, 'ssm_cfg.chunk_size'),
      timeStepLimit: [limit[0] as number, limit[1] as number],
      // mamba_ssm's RMSNormGated(group_size = d_inner / ngroups): per group.
      normGroupSize: dInner / nGroups,
      useBias: bool('bias', false, ssm, 'ssm_cfg.bias'), useConvBias: bool('conv_bias', true, ssm, 'ssm_cfg.conv_bias'), tieEmbeddings,
    });
  },

  /**
   * llama.cpp writes `ssm.time_step_rank = d_inner // head_dim` for Mamba-2, i.e. the number of
   * heads (its loader sizes ssm_dt.bias as {dt_rank}, ssm_a / ssm_d as {1, dt_rank}), so
   * nHeads = time_step_rank and headDim = inner_size / nHeads. GGUF stores no chunk size and no Δ
   * limit: chunkSize takes transformers' default 256 and timeStepLimit [0, ∞) (llama.cpp's
   * Mamba-2 graph does not clamp Δ either). llama.cpp's grouped RMS norm (src/models/mamba-base.cpp)
   * normalizes per group, as mamba_ssm does.
   */
  configFromGguf({ file, base, timeStepRank: nHeads, int }) {
    const { dInner, dState, useBias, useConvBias, tieEmbeddings } = base;
    const nGroups = int('ssm.group_count', 1);
    if (dInner % nHeads !== 0) throw new ModelFileError(file, `mamba2.ssm.inner_size ${dInner} is not a multiple of the head count (mamba2.ssm.time_step_rank) ${nHeads}`);
    if (nHeads % nGroups !== 0) throw new ModelFileError(file, `the head count (mamba2.ssm.time_step_rank) ${nHeads} is not a multiple of mamba2.ssm.group_count ${nGroups}`);
    return config(base, {
      dState, nHeads, headDim: dInner / nHeads, nGroups, chunkSize: 256, timeStepLimit: [0, Infinity],
      normGroupSize: dInner / nGroups, useBias, useConvBias, tieEmbeddings,
    });
  },

  mixerTensors(c, m) {
    const { dModel: D, dInner: Di, dState: N, dConv: K, nHeads: H, nGroups: G } = c;
    const l = mamba2Layout({ dInner: Di, nGroups: G, dState: N, nHeads: H });
    return [
      { name: `${m}in_proj.weight`, shape: [l.inProjWidth, D] },
      { name: `${m}conv1d.weight`, shape: [l.xbcWidth, 1, K] },
      { name: `${m}dt_bias`, shape: [H] },
      { name: `${m}A_log`, shape: [H] },
      { name: `${m}D`, shape: [H] },
      { name: `${m}norm.weight`, shape: [Di] },
      { name: `${m}out_proj.weight`, shape: [D, Di] },
      ...(c.useConvBias ? [{ name: `${m}conv1d.bias`, shape: [l.xbcWidth] }] : []),
      ...(c.useBias ? [{ name: `${m}in_proj.bias`, shape: [l.inProjWidth] }, { name: `${m}out_proj.bias`, shape: [D] }] : []),
    ];
  },

  ggufMixerTensors: {
    ...SSM_GGUF_TENSORS,
    'ssm_dt.bias': { name: 'dt_bias', role: 'vector' },
    'ssm_norm.weight': { name: 'norm.weight', role: 'vector' },
  },
  ggufFlatA: true,

  traceLayout,
  reference: mamba2MixerRef,

  matmulShapes: (c) => [
    [c.dModel, mamba2Layout({ dInner: c.dInner, nGroups: c.nGroups, dState: c.dState, nHeads: c.nHeads }).inProjWidth],
    [c.dInner, c.dModel],
  ],
} as const satisfies ArchitectureSpec<'mamba2'>;
