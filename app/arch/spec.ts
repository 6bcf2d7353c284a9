/**
 * What an architecture is, in one object (app/arch/<name>/index.ts exports one; registry.ts lists
 * them): how its configs read in every convention they come in, which tensors its mixer has
 * (transformers and GGUF names, shapes), where its selection (Δ, B, C) is in a trace, and its
 * float64 reference. How its layers are built on the GPU is its `mixer.ts`, named in build.ts
 * (kept apart so that what only reads files — the main process, the library — never loads WGSL).
 * Nothing outside app/arch chooses between architectures; everything asks the registry.
 */
import type { ConfigReader, Raw } from '../formats/config.js';
import type { MambaConfig } from '../model/config.js';
import type { TraceLayout } from '../model/mixer.js';
import type { MixerRef } from '../model/reference.js';

/** A tensor a model needs: its name in the file (transformers naming) and its shape. */
export interface TensorSpec {
  name: string;
  shape: number[];
  optional?: boolean;
}

/** The fields every convention gives the same way, parsed before the architecture's own. */
export interface BaseConfig {
  source: MambaConfig['source'];
  dModel: number;
  nLayer: number;
  vocabSize: number;
  dInner: number;
  dConv: number;
  normEps: number;
}

/** A transformers or mamba_ssm config.json, its common fields already read. */
export interface JsonConfigSource {
  file: string;
  raw: Raw;
  read: ConfigReader;
  base: BaseConfig;
}

/** mamba_ssm configs: the architecture's keys are inside `ssm_cfg`. */
export interface MambaSsmConfigSource extends JsonConfigSource {
  ssm: Raw;
  /** tie_embeddings (default true). */
  tieEmbeddings: boolean;
}

/** GGUF metadata, its common keys already read (`<arch>.embedding_length`, …). */
export interface GgufConfigSource {
  file: string;
  base: BaseConfig & { dState: number; useBias: boolean; useConvBias: boolean; tieEmbeddings: boolean };
  /** `<arch>.ssm.time_step_rank` (Mamba-1: dt rank; llama.cpp writes the head count there for Mamba-2). */
  timeStepRank: number;
  /** `<arch>.<key>`: a safe integer ≥ min, or the fallback, or a ModelFileError. */
  int(key: string, min: number, fallback?: number): number;
  /** Metadata by full key. */
  get(key: string): unknown;
}

/**
 * How a GGUF tensor becomes the canonical one (llama.cpp's converter squeezes and renames):
 * 'plain' as stored; 'vector' flattened to 1-D; 'conv' [C, K] → [C, 1, K]; 'A' holds
 * A = −exp(A_log) (turned back into A_log on load; flattened when `flatA`); 'D' flattened.
 */
export type GgufRole = 'plain' | 'vector' | 'conv' | 'A' | 'D';

/** The GGUF tensors every SSM mixer llama.cpp writes has (after `blk.N.`), by their transformers names under `mixer.` */
export const SSM_GGUF_TENSORS: Readonly<Record<string, { name: string; role: GgufRole }>> = {
  'ssm_in.weight': { name: 'in_proj.weight', role: 'plain' },
  'ssm_in.bias': { name: 'in_proj.bias', role: 'vector' },
  'ssm_conv1d.weight': { name: 'conv1d.weight', role: 'conv' },
  'ssm_conv1d.bias': { name: 'conv1d.bias', role: 'vector' },
  ssm_a: { name: 'A_log', role: 'A' },
  ssm_d: { name: 'D', role: 'D' },
  'ssm_out.weight': { name: 'out_proj.weight', role: 'plain' },
  'ssm_out.bias': { name: 'out_proj.bias', role: 'vector' },
};

export interface ArchitectureSpec<Name extends string = string> {
  /** The registry name: transformers' model_type and (except Falcon-Mamba, which llama.cpp writes as "mamba") GGUF's general.architecture. */
  readonly name: Name;
  /** For people: "Mamba", "Mamba-2", "Falcon-Mamba" (the library and `info` name a model's architecture by it). */
  readonly label: string;
  /** GGUF's general.architecture when llama.cpp names it otherwise (Granite-4.0-H: "granitehybrid"); default `name`. */
  readonly ggufName?: string;
  /** transformers `architectures` entry (used when a config has no model_type). */
  readonly transformersClass: string;
  /** mamba_ssm `ssm_cfg.layer` ("Mamba1" is mamba_ssm's default when the key is absent); null when no mamba_ssm config describes it. */
  readonly mambaSsmLayer: string | null;
  /**
   * transformers configs: `intermediate_size`, when given, is d_inner whatever `expand` says
   * (FalconMambaConfig keeps it: tiiuae/falcon-mamba-7b's config.json says expand 16 and
   * intermediate_size 8192). Otherwise a disagreeing intermediate_size is refused.
   */
  readonly intermediateSizeWins?: boolean;
  /**
   * The fields this architecture uses beyond the common ones (bounds.ts): integers must be ≥ 1,
   * `mixerRmsEps` in (0, 1]; the others it sets to 0.
   */
  readonly requiredFields: readonly (keyof MambaConfig)[];
  /** The keys its own fields are read from, per convention, named in bound errors (bounds.ts). */
  readonly configKeys: Readonly<Record<MambaConfig['source'], Partial<Record<keyof MambaConfig, string>>>>;
  /**
   * transformers configs whose common fields are not the usual keys (hybrids: the layer count is
   * a layout's length, intermediate_size an MLP's): the base read here instead of by the registry.
   */
  transformersBase?(source: Omit<JsonConfigSource, 'base'>): BaseConfig;
  configFromTransformers(source: JsonConfigSource): MambaConfig;
  configFromMambaSsm(source: MambaSsmConfigSource): MambaConfig;
  configFromGguf(source: GgufConfigSource): MambaConfig;
  /** The tensors of one layer's mixer, named under `mixer` (e.g. `backbone.layers.3.mixer.`). */
  mixerTensors(config: MambaConfig, mixer: string): TensorSpec[];
  /** GGUF tensor names (after `blk.N.`) of the mixer → the transformers name under `mixer.`, and how to undo the converter. */
  readonly ggufMixerTensors: Readonly<Record<string, { name: string; role: GgufRole }>>;
  /** Whether GGUF's `ssm_a` is flattened to 1-D (Mamba-2 stores [H, 1]). */
  readonly ggufFlatA: boolean;
  /** Where Δ, B and C are in a trace of this architecture's mixer. */
  traceLayout(config: MambaConfig): TraceLayout;
  /** float64 reference of one layer's mixer (app/model/reference.ts runs the whole model with it). */
  readonly reference: MixerRef;
  /** The prefill matrix products of one layer, [inFeatures, outFeatures] (the bench times them). */
  matmulShapes(config: MambaConfig): [number, number][];
}
