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
}
