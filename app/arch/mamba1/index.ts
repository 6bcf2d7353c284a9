/**
 * Mamba-1 (Gu & Dao 2023): the selective scan S6 with a low-rank Δ projection. transformers
 * `MambaForCausalLM` (model_type "mamba"), mamba_ssm `Mamba` (ssm_cfg.layer "Mamba1", the
 * default), GGUF general.architecture "mamba" — which is also how llama.cpp writes Falcon-Mamba,
 * with `mamba.ssm.dt_b_c_rms = true`: such a file is read here and named Falcon-Mamba
 * (app/arch/falcon-mamba/).
 */
import { ModelFileError, preview } from '../../formats/errors.js';
import type { MambaConfig } from '../../model/config.js';
import type { TraceLayout } from '../../model/mixer.js';
import { SSM_GGUF_TENSORS, type ArchitectureSpec, type BaseConfig } from '../spec.js';
import { mamba1MixerRef } from './reference.js';

/** The Mamba-2-only fields, unused here. */
const NOT_MAMBA2 = { nHeads: 0, headDim: 0, nGroups: 0, chunkSize: 0, timeStepLimit: [0, Infinity] as [number, number], normGroupSize: 0 };

/** A Mamba-1 config; Falcon-Mamba's is one with its architecture and mixer norm epsilon set. */
export function mamba1Config(base: BaseConfig, dState: number, dtRank: number, rest: Pick<MambaConfig, 'useBias' | 'useConvBias' | 'tieEmbeddings'>): MambaConfig {
  const { source, dModel, nLayer, vocabSize, dInner, dConv, normEps } = base;
  return { architecture: 'mamba', source, dModel, nLayer, vocabSize, dInner, dState, dConv, dtRank, ...NOT_MAMBA2, normEps, mixerRmsEps: 0, ...rest };
}
const config = mamba1Config;

/** The GGUF key llama.cpp sets on Falcon-Mamba files (src/llama-arch.cpp LLM_KV_SSM_DT_B_C_RMS). */
export const GGUF_DT_B_C_RMS = 'mamba.ssm.dt_b_c_rms';

function traceLayout(c: MambaConfig): TraceLayout {
  const { dInner: Di, dState: N, dtRank: R } = c;
  // Δ per channel [T, Di]; B and C [T, N] inside x_proj's rows (dt_r | B | C).
  return { deltaWidth: Di, deltaUnit: 'channel', rowWidth: R + 2 * N, bOffset: R, cOffset: R + N, bcWidth: N, nGroups: 1, aStates: N, extraTaps: true, aLogName: 'A_log' };
}

export const mamba1 = {
  name: 'mamba',
  label: 'Mamba',
  transformersClass: 'MambaForCausalLM',
  mambaSsmLayer: 'Mamba1',
  requiredFields: ['dtRank'],
  configKeys: {
    transformers: { dState: 'state_size', dtRank: 'time_step_rank' },
    mamba_ssm: { dState: 'ssm_cfg.d_state', dtRank: 'ssm_cfg.dt_rank' },
    gguf: { dtRank: 'mamba.ssm.time_step_rank' },
  },

  configFromTransformers({ raw, read: { int, bool }, base }) {
    const rank = raw.time_step_rank;
    const dtRank = rank === undefined || rank === 'auto' ? Math.ceil(base.dModel / 16) : int('time_step_rank');
    return config(base, int('state_size', 16), dtRank, { useBias: bool('use_bias', false), useConvBias: bool('use_conv_bias', true), tieEmbeddings: bool('tie_word_embeddings', true) });
  },

  configFromMambaSsm({ ssm, read: { int, bool }, base, tieEmbeddings }) {
    const rank = ssm.dt_rank;
    const dtRank = rank === undefined || rank === 'auto' ? Math.ceil(base.dModel / 16) : int('dt_rank', undefined, ssm, 'ssm_cfg.dt_rank');
    return config(base, int('d_state', 16, ssm, 'ssm_cfg.d_state'), dtRank, {
      useBias: bool('bias', false, ssm, 'ssm_cfg.bias'),
      useConvBias: bool('conv_bias', true, ssm, 'ssm_cfg.conv_bias'),
      tieEmbeddings,
    });
  },

  configFromGguf({ file, base, timeStepRank, get }) {
    const { useBias, useConvBias, tieEmbeddings } = base;
    const plain = config(base, base.dState, timeStepRank, { useBias, useConvBias, tieEmbeddings });
    const rms = get(GGUF_DT_B_C_RMS);
    if (rms !== undefined && typeof rms !== 'boolean') throw new ModelFileError(file, `metadata "${GGUF_DT_B_C_RMS}" must be a boolean, got ${preview(rms)}`);
    // llama.cpp's Falcon-Mamba: the weightless RMS norm on dt_r, B and C, which its graph
    // (build_mamba_layer: build_norm(…, LLM_NORM_RMS)) runs with the layer norm epsilon
    // (hparams.f_norm_rms_eps); its converter writes no mixer_rms_eps.
    return rms === true ? { ...plain, architecture: 'falcon_mamba', mixerRmsEps: base.normEps } : plain;
  },

  mixerTensors(c, m) {
    const { dModel: D, dInner: Di, dState: N, dConv: K, dtRank: R } = c;
    return [
      { name: `${m}in_proj.weight`, shape: [2 * Di, D] },
      { name: `${m}conv1d.weight`, shape: [Di, 1, K] },
      { name: `${m}x_proj.weight`, shape: [R + 2 * N, Di] },
      { name: `${m}dt_proj.weight`, shape: [Di, R] },
      { name: `${m}dt_proj.bias`, shape: [Di] },
      { name: `${m}A_log`, shape: [Di, N] },
      { name: `${m}D`, shape: [Di] },
      { name: `${m}out_proj.weight`, shape: [D, Di] },
      ...(c.useConvBias ? [{ name: `${m}conv1d.bias`, shape: [Di] }] : []),
      ...(c.useBias ? [{ name: `${m}in_proj.bias`, shape: [2 * Di] }, { name: `${m}out_proj.bias`, shape: [D] }] : []),
    ];
  },

  ggufMixerTensors: {
    ...SSM_GGUF_TENSORS,
    'ssm_x.weight': { name: 'x_proj.weight', role: 'plain' },
    'ssm_dt.weight': { name: 'dt_proj.weight', role: 'plain' },
    'ssm_dt.bias': { name: 'dt_proj.bias', role: 'vector' },
  },
  ggufFlatA: false,

  traceLayout,
  reference: mamba1MixerRef,

  matmulShapes: ({ dModel: D, dInner: Di, dtRank: R, dState: N }) => [
    [D, 2 * Di],
    [Di, R + 2 * N],
    [Di, D],
  ],
} as const satisfies ArchitectureSpec<'mamba'>;
