/** Opens a model folder for running in Node: GPU, weights on it, the model its architecture builds, the tokenizer. */
import { inspectModel, tokenizerSource, type ModelInspection } from '../arch/inspect.js';
import { buildModel } from '../arch/build.js';
import type { GpuContext } from '../gpu/context.js';
import { openGpu } from '../gpu/context.js';
import { loadWeights, type LoadedWeights } from '../model/loader.js';
import type { LanguageModel } from '../model/model.js';
import { tokenizerFor } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { findNodeGpu } from './dawn.js';
import { folderModelFiles } from './folder.js';

export interface RunnableModel {
  ctx: GpuContext;
  inspection: ModelInspection;
  weights: LoadedWeights;
  model: LanguageModel;
  /** null when the model has no tokenizer (then only token ids can be given). */
  tokenizer: Tokenizer | null;
  name: string;
  close(): void;
}

export async function openRunnableModel(target: string, options: { maxTokens?: number } = {}): Promise<RunnableModel> {
  const files = await folderModelFiles(target);
  try {
    const inspection = await inspectModel(files);
    let tokenizer: Tokenizer | null = null;
    if (inspection.tokenizer !== 'none') {
      const { json, file } = await tokenizerSource(files, inspection); // tokenizer.json, or the GGUF's own
      tokenizer = tokenizerFor(inspection.config.vocabSize, json, file);
    }
    const { gpu } = await findNodeGpu();
    const ctx = await openGpu(gpu);
    const weights = await loadWeights(ctx, files, inspection);
    const maxTokens = options.maxTokens ?? 256;
    const model = buildModel(ctx, inspection, weights, maxTokens);
    return {
      ctx,
      inspection,
      weights,
      model,
      tokenizer,
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
