/**
 * Falcon-Mamba (TII 2024, tiiuae/falcon-mamba-7b and its instruct and Falcon3-Mamba kin): Mamba-1
 * with a weightless RMS norm applied separately to the three parts of x_proj's output — Δ's
 * low-rank input dt_r, B and C — before dt_proj and the scan:
 *   v ← v / sqrt(mean(v²) + mixer_rms_eps)   over each part of each token's row, in float32.
 * transformers `FalconMambaForCausalLM` (model_type "falcon_mamba"; `mixer_rms_eps` 1e-6,
 * `tie_word_embeddings` defaults to true there, false in the 7B checkpoints, which also have a
 * 65,024-token vocabulary and 64 layers, and say expand 16 beside intermediate_size 8192: like
 * transformers, intermediate_size wins). `use_falcon_mambapy` only picks a training fallback. llama.cpp writes it as GGUF general.architecture "mamba"
 * with `mamba.ssm.dt_b_c_rms = true` and runs the norm with the layer norm epsilon: the Mamba-1
 * spec reads those files and names this architecture. No mamba_ssm config describes it.
 *
 * Its own registry entry (name, label, detection, config keys) rather than a flag on Mamba-1's,
 * because its checkpoints name themselves by model_type and the library and `info` name it;
 * everything else is Mamba-1's — tensors, GGUF names, trace layout, the GPU mixer (build.ts) and
 * the float64 reference — which apply the norm when `config.mixerRmsEps` > 0.
 */
import { ModelFileError } from '../../formats/errors.js';
import { mamba1 } from '../mamba1/index.js';
import type { ArchitectureSpec } from '../spec.js';

/** transformers' FalconMambaConfig default for mixer_rms_eps. */
export const DEFAULT_MIXER_RMS_EPS = 1e-6;

export const falconMamba = {
  name: 'falcon_mamba',
  label: 'Falcon-Mamba',
  transformersClass: 'FalconMambaForCausalLM',
  mambaSsmLayer: null,
  intermediateSizeWins: true,
  requiredFields: ['dtRank', 'mixerRmsEps'],
  configKeys: {
    transformers: { ...mamba1.configKeys.transformers, mixerRmsEps: 'mixer_rms_eps' },
    mamba_ssm: {},
    gguf: { ...mamba1.configKeys.gguf, mixerRmsEps: 'mamba.attention.layer_norm_rms_epsilon (llama.cpp runs the mixer norm with it)' },
  },

  configFromTransformers(source) {
    return { ...mamba1.configFromTransformers(source), architecture: 'falcon_mamba', mixerRmsEps: source.read.num('mixer_rms_eps', DEFAULT_MIXER_RMS_EPS) };
  },

  configFromMambaSsm({ file }) {
    throw new ModelFileError(file, 'mamba_ssm has no Falcon-Mamba config; use the transformers checkpoint (model_type "falcon_mamba")');
  },

  configFromGguf({ file }) {
    throw new ModelFileError(file, 'general.architecture is "falcon_mamba", which llama.cpp does not write: its Falcon-Mamba GGUFs are "mamba" with mamba.ssm.dt_b_c_rms = true');
  },

  mixerTensors: mamba1.mixerTensors,
  ggufMixerTensors: mamba1.ggufMixerTensors,
  ggufFlatA: mamba1.ggufFlatA,
  traceLayout: mamba1.traceLayout,
  reference: mamba1.reference,
  matmulShapes: mamba1.matmulShapes,
} as const satisfies ArchitectureSpec<'falcon_mamba'>;
