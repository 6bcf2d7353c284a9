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
import { loadWeights, type LoadedWeights } from '../model/loader.js';
import type {
  EngineEvent,
  EngineRequest,
  EngineRequestKind,
  EngineRequests,
  EngineResponse,
  GpuStatus,
  LoadedModelInfo,
  ModelSource,
} from './protocol.js';

type Handler<K extends EngineRequestKind> = (
  params: EngineRequests[K]['params'],
) => Promise<EngineRequests[K]['result']>;

export class Engine {
  private gpu: GpuContext | null = null;
  private status: GpuStatus | null = null;
  private readonly handlers: { [K in EngineRequestKind]: Handler<K> };
  private loaded: { modelId: string; weights: LoadedWeights } | null = null;
  private readonly loading = new Map<string, AbortController>();

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
    };
  }

  private unload(): string | null {
    const id = this.loaded?.modelId ?? null;
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
      this.loaded = { modelId, weights };
      return {
        modelId,
        architecture: inspection.architecture,
        parameters: inspection.parameters,
        bytesOnGpu: weights.bytesOnGpu,
        seconds: (performance.now() - started) / 1000,
        warnings: inspection.warnings,
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
