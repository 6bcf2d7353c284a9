/**
 * The engine as seen from its host (the renderer's worker, or Node): handles typed requests.
 * It owns the GPU context; nothing here knows about Electron, React or the DOM.
 */
import { describeAdapter } from '../gpu/adapter.js';
import { openGpu, type GpuContext } from '../gpu/context.js';
import { GpuError } from '../gpu/errors.js';
import { webGpuAdvice } from '../gpu/advice.js';
import { inspectModel } from '../formats/inspect.js';
import { blobModelFiles, urlModelFiles, type ModelFiles } from '../formats/model-files.js';
import type { FetchLike } from '../formats/source.js';
import { runResidualRmsNormCheck } from '../kernels/self-test.js';
import { generate } from '../model/generate.js';
import { loadWeights, type LoadedWeights } from '../model/loader.js';
import { Mamba1 } from '../model/mamba1.js';
import { Session } from '../model/session.js';
import { tokenizerFor } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type {
  EngineEvent,
  EngineRequest,
  EngineRequestKind,
  EngineRequests,
  EngineResponse,
  GenerateParams,
  GenerateSummary,
  GpuStatus,
  LoadedModelInfo,
  ModelSource,
} from './protocol.js';

interface LoadedModel {
  modelId: string;
  weights: LoadedWeights;
  model: Mamba1 | null;
  tokenizer: Tokenizer | null;
}

type Handler<K extends EngineRequestKind> = (
  params: EngineRequests[K]['params'],
) => Promise<EngineRequests[K]['result']>;

export class Engine {
  private gpu: GpuContext | null = null;
  private status: GpuStatus | null = null;
  private readonly handlers: { [K in EngineRequestKind]: Handler<K> };
  private loaded: LoadedModel | null = null;
  private readonly loading = new Map<string, AbortController>();
  private generating: AbortController | null = null;

  constructor(
    private readonly navigatorGpu: GPU | undefined,
    private readonly emit: (event: EngineEvent) => void,
    private readonly userAgent = '',
    private readonly fetchFn?: FetchLike,
  ) {
    this.handlers = {
      init: (params) => this.init(params.powerPreference),
      selfTest: async (params) => runResidualRmsNormCheck(await this.context(), params.rows, params.cols),
      loadModel: (params) => this.loadModel(params.modelId, params.source),
      cancelLoad: async ({ modelId }) => {
        const controller = this.loading.get(modelId);
        controller?.abort();
        return { cancelled: controller !== undefined };
      },
      unloadModel: async () => ({ unloaded: this.unload() }),
      generate: (params) => this.generate(params),
      stopGeneration: async () => {
        const running = this.generating;
        running?.abort();
        return { stopped: running !== null };
      },
    };
  }

  private unload(): string | null {
    const id = this.loaded?.modelId ?? null;
    this.generating?.abort();
    this.loaded?.model?.destroy();
    this.loaded?.weights.destroy();
    this.loaded = null;
    return id;
  }

  private files(source: ModelSource): ModelFiles {
    if (source.kind === 'files') return blobModelFiles(source.folder, source.files);
    if (!this.fetchFn) throw new Error('this engine was started without fetch, so it cannot read models from URLs');
    return urlModelFiles(source.baseUrl, source.files, this.fetchFn);
  }

  private async loadModel(modelId: string, source: ModelSource): Promise<LoadedModelInfo> {
    const ctx = await this.context();
    if (this.loading.size > 0) throw new Error('Another model is being loaded; cancel it first.');
    const controller = new AbortController();
    this.loading.set(modelId, controller);
    const started = performance.now();
    try {
      const files = this.files(source);
      const inspection = await inspectModel(files);
      this.unload(); // one model on the GPU at a time: free the previous one before allocating
      const weights = await loadWeights(ctx, files, inspection, {
        signal: controller.signal,
        onProgress: (progress) => this.emit({ kind: 'load-progress', modelId, progress }),
      });
      let tokenizer: Tokenizer | null = null;
      if (inspection.tokenizer !== 'none') {
        const json = inspection.tokenizer === 'tokenizer.json' ? await files.readText('tokenizer.json') : null;
        tokenizer = tokenizerFor(inspection.config.vocabSize, json, files.pathOf('tokenizer.json'));
      }
      const model = inspection.architecture === 'mamba' ? new Mamba1(ctx, inspection, weights) : null;
      this.loaded = { modelId, weights, model, tokenizer };
      const runtimeBytes = model ? model.activationBytes + (inspection.config.dInner * (inspection.config.dState + inspection.config.dConv - 1) * 4 * inspection.config.nLayer) : 0;
      return {
        modelId,
        architecture: inspection.architecture,
        parameters: inspection.parameters,
        bytesOnGpu: weights.bytesOnGpu,
        runtimeBytes,
        seconds: (performance.now() - started) / 1000,
        warnings: [...inspection.warnings, ...(tokenizer?.warnings ?? [])],
        tokenizer: tokenizer?.kind ?? 'none',
        ...(model ? {} : { cannotRun: `${inspection.architecture} models cannot generate yet (Mamba-1 only)` }),
      };
    } finally {
      this.loading.delete(modelId);
    }
  }

  async handle(request: EngineRequest): Promise<EngineResponse> {
    try {
      const handler = this.handlers[request.kind] as Handler<typeof request.kind>;
      const result = await handler(request.params as never);
      return { id: request.id, kind: request.kind, ok: true, result } as EngineResponse;
    } catch (error) {
      return { id: request.id, kind: request.kind, ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  private async generate(params: GenerateParams): Promise<GenerateSummary> {
    const ctx = await this.context();
    const loaded = this.loaded;
    if (!loaded || loaded.modelId !== params.modelId) throw new Error('Load the model onto the GPU first.');
    if (!loaded.model) throw new Error('This architecture cannot generate yet (Mamba-1 only).');
    if (this.generating) throw new Error('A generation is already running; stop it first.');
    let promptIds: number[];
    if ('ids' in params.prompt) promptIds = params.prompt.ids;
    else if (loaded.tokenizer) promptIds = loaded.tokenizer.encode(params.prompt.text);
    else throw new Error('This model has no tokenizer: give token ids (e.g. "5, 17, 3") instead of text.');
    if (promptIds.length === 0) throw new Error('The prompt is empty.');
    const controller = new AbortController();
    this.generating = controller;
    const session = new Session(ctx, loaded.model);
    try {
      const decoder = loaded.tokenizer?.decoder();
      const { modelId } = params;
      const result = await generate(
        ctx,
        session,
        promptIds,
        {
          maxTokens: params.maxTokens,
          temperature: params.temperature,
          topK: params.topK,
          topP: params.topP,
          repetitionPenalty: params.repetitionPenalty,
          seed: params.seed,
          stopStrings: params.stopStrings,
          signal: controller.signal,
        },
        (token) => this.emit({ kind: 'token', modelId, id: token.id, text: decoder ? token.text : `${token.id} `, index: token.index, tokensPerSecond: token.tokensPerSecond }),
        decoder,
        (tail) => this.emit({ kind: 'token', modelId, id: -1, text: tail, index: -1, tokensPerSecond: 0 }),
      );
      return { promptIds, ...result };
    } finally {
      session.destroy();
      this.generating = null;
    }
  }

  private async init(powerPreference?: GPUPowerPreference): Promise<GpuStatus> {
    if (this.status?.state === 'ready') return this.status;
    try {
      this.gpu = await openGpu(this.navigatorGpu, {
        ...(powerPreference ? { powerPreference } : {}),
        onLost: (info) => {
          this.gpu = null;
          this.status = null;
          this.loaded = null;
          this.emit({ kind: 'device-lost', ...info });
        },
        onUncapturedError: (message) => this.emit({ kind: 'gpu-error', message }),
      });
      this.status = { state: 'ready', adapter: this.gpu.adapter, description: describeAdapter(this.gpu.adapter) };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.status = { state: 'unavailable', reason, advice: webGpuAdvice(this.userAgent) };
    }
    return this.status;
  }

  private async context(): Promise<GpuContext> {
    if (!this.gpu) await this.init();
    if (!this.gpu) throw new GpuError('WebGPU is unavailable, so nothing can run on the GPU.', 'unavailable');
    return this.gpu;
  }
}
