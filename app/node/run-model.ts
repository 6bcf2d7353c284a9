/** Opens a model folder for running in Node: GPU, weights on it, the model its architecture builds, the tokenizer. */
import { inspectModel, tokenizerSource, type ModelInspection } from '../arch/inspect.js';
import { buildModel } from '../arch/build.js';
import { allocateOrFail } from '../gpu/errors.js';
import { withContextTokens } from '../model/inspection.js';
import { gpuMemoryNeed, type WeightChoice } from '../model/memory.js';
import type { GpuContext } from '../gpu/context.js';
import { openGpu } from '../gpu/context.js';
import { loadWeights, type LoadedWeights } from '../model/loader.js';
import type { LanguageModel } from '../model/model.js';
import { lazyTokenizer } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { findNodeGpu } from './dawn.js';
import { folderModelFiles } from './folder.js';

export interface RunnableModel {
  ctx: GpuContext;
  inspection: ModelInspection;
  weights: LoadedWeights;
  model: LanguageModel;
  /**
   * null when the model has no tokenizer (then only token ids can be given). Built at the first
   * read (app/tokenizer lazyTokenizer): a run from token ids that reads no text never builds it,
   * and a broken tokenizer.json throws its ModelFileError here, not when the model opens.
   */
  readonly tokenizer: Tokenizer | null;
  name: string;
  close(): void;
}

export interface OpenOptions {
  /** Tokens per prefill chunk (default 256). */
  maxTokens?: number;
  /** Bytes of GPU memory the model may use in all; more is refused before loading (LoadOptions.gpuMemoryBudget). Default: no cap. */
  gpuMemoryBudget?: number;
  /** The weights on the GPU: the checkpoint's own precision ('auto', the default; app/model/memory.ts tensorWeightFormat) or one format. */
  weights?: WeightChoice;
  /** A hybrid's KV caches sized for this many tokens (config.ts withContext; default its config's context). */
  contextTokens?: number;
}

export async function openRunnableModel(target: string, options: OpenOptions = {}): Promise<RunnableModel> {
  const files = await folderModelFiles(target);
  try {
    const inspection = withContextTokens(await inspectModel(files), options.contextTokens);
    // The text is read now (the files close below); it is parsed and checked at the first use.
    const tokenizer = lazyTokenizer(inspection.config.vocabSize, inspection.tokenizer === 'none' ? null : await tokenizerSource(files, inspection));
    const { gpu } = await findNodeGpu();
    const ctx = await openGpu(gpu);
    const maxTokens = options.maxTokens ?? 256;
    const weightFormat = options.weights ?? 'auto';
    let weights: LoadedWeights;
    let model: LanguageModel;
    try {
      weights = await loadWeights(ctx, files, inspection, { maxTokens, weightFormat, name: files.name, ...(options.gpuMemoryBudget !== undefined ? { gpuMemoryBudget: options.gpuMemoryBudget } : {}) });
      try {
        const bytes = gpuMemoryNeed(inspection, { maxTokens, weightFormat }).activations;
        const loaded = weights;
        model = await allocateOrFail(ctx.device, `${files.name}: the activations for ${maxTokens} tokens`, bytes, () => buildModel(ctx, inspection, loaded, maxTokens), (m) => m.destroy());
      } catch (error) {
        weights.destroy();
        throw error;
      }
    } catch (error) {
      ctx.device.destroy();
      throw error;
    }
    return {
      ctx,
      inspection,
      weights,
      model,
      get tokenizer() {
        return tokenizer.get();
      },
      name: files.name,
      close() {
        model.destroy();
        weights.destroy();
        ctx.device.destroy();
      },
    };
  } finally {
    await files.close();
  }
}
