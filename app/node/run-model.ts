/** Opens a model folder for running in Node: GPU, weights on it, the model its architecture builds, the tokenizer. */
import { inspectModel, tokenizerSource, type ModelInspection } from '../arch/inspect.js';
import { allocateModel } from '../arch/build.js';
import { withContextTokens } from '../model/inspection.js';
import type { WeightChoice } from '../model/memory.js';
import type { PrefillMatmul } from '../model/int8-plan.js';
import { DAWN_UNSAFE_FLAG, usablePrefillMatmul } from '../model/int8-prefill.js';
import type { GpuContext } from '../gpu/context.js';
import { openGpu } from '../gpu/context.js';
import { loadWeights, type LoadedWeights } from '../model/loader.js';
import { chunksOf, modelChunks } from '../model/memory-plan.js';
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
  /** Why something asked for is not so (int8 prefill without tensor cores). */
  warnings: string[];
  close(): void;
}

export interface OpenOptions {
  /** Tokens per plain prefill chunk (default: PREFILL_CHUNK where it fits, else ANALYSIS_CHUNK: memory-plan.ts modelChunks); analyses take at most ANALYSIS_CHUNK. */
  maxTokens?: number;
  /** Bytes of GPU memory the model may use in all; more is refused before loading (LoadOptions.gpuMemoryBudget). Default: no cap. */
  gpuMemoryBudget?: number;
  /** The weights on the GPU: the checkpoint's own precision ('auto', the default; app/model/memory.ts tensorWeightFormat) or one format. */
  weights?: WeightChoice;
  /** A hybrid's KV caches sized for this many tokens (config.ts withContext; default its config's context). */
  contextTokens?: number;
  /** How plain prefill chunks multiply (default 'fp32'); 'int8' opens Dawn with its unsafe APIs for the tensor cores and falls back to fp32 without them (RunnableModel.warnings). */
  prefillMatmul?: PrefillMatmul;
}

export async function openRunnableModel(target: string, options: OpenOptions = {}): Promise<RunnableModel> {
  const files = await folderModelFiles(target);
  try {
    const inspection = withContextTokens(await inspectModel(files), options.contextTokens);
    // The text is read now (the files close below); it is parsed and checked at the first use.
    const tokenizer = lazyTokenizer(inspection.config.vocabSize, inspection.tokenizer === 'none' ? null : await tokenizerSource(files, inspection));
    const { gpu } = await findNodeGpu(options.prefillMatmul === 'int8' ? { flags: [DAWN_UNSAFE_FLAG] } : {});
    const ctx = await openGpu(gpu);
    const prefill = usablePrefillMatmul(ctx, options.prefillMatmul ?? 'fp32');
    const weightFormat = options.weights ?? 'auto';
    // Plain prefills in chunks of PREFILL_CHUNK where they fit (modelChunks), analyses in ANALYSIS_CHUNK.
    const chunks = options.maxTokens !== undefined
      ? chunksOf(options.maxTokens)
      : modelChunks(inspection, { weights: weightFormat, prefillMatmul: prefill.matmul, adapter: ctx.adapter, ...(options.gpuMemoryBudget !== undefined ? { budget: options.gpuMemoryBudget } : {}) });
    const { maxTokens } = chunks;
    let weights: LoadedWeights;
    let model: LanguageModel;
    try {
      weights = await loadWeights(ctx, files, inspection, { maxTokens, weightFormat, name: files.name, ...(options.gpuMemoryBudget !== undefined ? { gpuMemoryBudget: options.gpuMemoryBudget } : {}) });
      try {
        model = await allocateModel(ctx, inspection, weights, { ...chunks, weightFormat, prefillMatmul: prefill.matmul, what: files.name });
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
      warnings: prefill.warning ? [prefill.warning] : [],
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
