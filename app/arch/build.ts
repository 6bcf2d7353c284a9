/**
 * Building a model on the GPU: each registered architecture's mixer, by name. Apart from
 * registry.ts so that code that only reads model files (the main process, the library, the Vite
 * config's dev-server plugin) never imports kernels or WGSL. `MIXERS` must name every
 * architecture in the registry (a Record over ArchitectureName: a missing one does not compile).
 */
import type { GpuContext } from '../gpu/context.js';
import { allocateOrFail, GpuError } from '../gpu/errors.js';
import type { PrefillMatmul } from '../model/int8-plan.js';
import { gpuMemoryNeed, type WeightChoice } from '../model/memory.js';
import { configBlocks, type BlockKind, type BlockSpec } from '../model/config.js';
import type { ModelInspection } from '../model/inspection.js';
import type { LoadedWeights } from '../model/loader.js';
import type { MixerFactory } from '../model/mixer.js';
import { ActivationLimitError, LanguageModel, type ModelOptions } from '../model/model.js';
import { ANALYSIS_CHUNK, PREFILL_CHUNK } from '../model/memory-plan.js';
import { falconMamba } from './falcon-mamba/index.js';
import { attentionMixer } from './hybrid/attention.js';
import { mlpMixer } from './hybrid/mlp.js';
import { mamba1 } from './mamba1/index.js';
import { Mamba1Mixer } from './mamba1/mixer.js';
import { mamba2 } from './mamba2/index.js';
import { Mamba2Mixer } from './mamba2/mixer.js';
import { architectureSpec, type ArchitectureName } from './registry.js';

/** Each architecture's mixer on the GPU. */
export const MIXERS: Record<ArchitectureName, MixerFactory> = {
  mamba: (build) => new Mamba1Mixer(build, mamba1.traceLayout(build.config)),
  mamba2: (build) => new Mamba2Mixer(build, mamba2.traceLayout(build.config)),
  // Mamba-1's mixer, which runs the weightless RMS norm on dt_r, B and C when config.mixerRmsEps > 0.
  falcon_mamba: (build) => new Mamba1Mixer(build, falconMamba.traceLayout(build.config)),
  // Nemotron-H's SSM blocks are Mamba-2's; hybrids' attention and MLP blocks come from blockMixer.
  nemotron_h: (build) => new Mamba2Mixer(build, mamba2.traceLayout(build.config)),
  // Granite-4.0-H's likewise (Bamba's Mamba-2, the gated norm over all of d_inner).
  granitemoehybrid: (build) => new Mamba2Mixer(build, mamba2.traceLayout(build.config)),
};

/** The mixer factory of a block of kind `kind` in a model of architecture `name` (a hybrid's attention and MLP blocks: app/arch/hybrid/). */
export function blockMixer(name: ArchitectureName, kind: BlockKind): MixerFactory {
  if (kind === 'ssm') return MIXERS[name];
  return (build) => {
    const h = build.config.hybrid;
    if (kind === 'attention' && h?.attention) return attentionMixer(build, h.attention);
    if (kind === 'mlp' && h?.mlp) return mlpMixer(build, h.mlp);
    throw new Error(`layer ${build.layer}: the config has no ${kind} settings for its ${kind} block`);
  };
}

/**
 * The model of an inspection on the GPU: every block's mixer from its architecture.
 * `maxTokens`: tokens per prefill chunk (activations are sized for it; `options.analysisTokens`
 * per traced or analysis chunk, default the same); `options.prefillMatmul`
 * 'int8': plain prefill chunks run the projections as int8 products (app/model/int8-prefill.ts).
 */
export function buildModel(ctx: GpuContext, inspection: ModelInspection, weights: LoadedWeights, maxTokens = 256, options: Pick<ModelOptions, 'prefillMatmul' | 'int8MinTokens' | 'int8Variant' | 'analysisTokens'> = {}): LanguageModel {
  const spec = architectureSpec(inspection.architecture);
  const blocks = configBlocks(inspection.config);
  return new LanguageModel(ctx, inspection, weights, { ...options, maxTokens, name: spec.label.replace(/-/g, ''), mixer: (l) => blockMixer(spec.name, (blocks[l] as BlockSpec).kind) });
}

/**
 * buildModel under an out-of-memory scope (allocateOrFail), the int8 prefill's codes made at once
 * (LanguageModel.prepareInt8Prefill): a model that does not fit is one GpuError naming `what` and
 * the bytes the plan gives (memory.ts gpuMemoryNeed: activations, and the int8 prefill's).
 * `maxTokens` (default ANALYSIS_CHUNK): tokens per plain prefill chunk; `analysisTokens` (default
 * maxTokens): per traced or analysis chunk. Where chunks of maxTokens do not fit (out of memory,
 * or an activation over the device's buffer limit), the model is built for chunks of
 * PREFILL_CHUNK (when that is fewer, and more than analysisTokens), then of analysisTokens (its
 * maxTokens says which).
 */
export async function allocateModel(
  ctx: GpuContext,
  inspection: ModelInspection,
  weights: LoadedWeights,
  options: { maxTokens?: number; analysisTokens?: number; weightFormat: WeightChoice; prefillMatmul: PrefillMatmul; what: string },
): Promise<LanguageModel> {
  const maxTokens = options.maxTokens ?? ANALYSIS_CHUNK;
  const analysisTokens = options.analysisTokens ?? maxTokens;
  const attempt = (tokens: number) => {
    const need = gpuMemoryNeed(inspection, { maxTokens: tokens, weightFormat: options.weightFormat, prefillMatmul: options.prefillMatmul });
    const what = `${options.what}: the activations${options.maxTokens !== undefined ? ` for ${tokens} tokens` : ''}${options.prefillMatmul === 'int8' ? ' and the int8 prefill' : ''}`;
    return allocateOrFail(
      ctx.device,
      what,
      need.activations + need.int8,
      () => {
        const model = buildModel(ctx, inspection, weights, tokens, { prefillMatmul: options.prefillMatmul, analysisTokens: Math.min(analysisTokens, tokens) });
        model.prepareInt8Prefill();
        return model;
      },
      (m) => m.destroy(),
    );
  };
  // The chunks tried in turn: the one asked, PREFILL_CHUNK when that is between, the analyses'.
  const chunks = [maxTokens, ...(PREFILL_CHUNK < maxTokens && PREFILL_CHUNK > analysisTokens ? [PREFILL_CHUNK] : []), ...(analysisTokens < maxTokens ? [analysisTokens] : [])];
  const last = chunks.pop() as number;
  for (const tokens of chunks) {
    try {
      return await attempt(tokens);
    } catch (error) {
      const tooLarge = (error instanceof GpuError && error.kind === 'out-of-memory') || error instanceof ActivationLimitError;
      if (!tooLarge) throw error;
    }
  }
  return attempt(last);
}
