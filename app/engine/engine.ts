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
import { readF32 } from '../gpu/buffers.js';
import { generate } from '../model/generate.js';
import { loadWeights, type LoadedWeights } from '../model/loader.js';
import type { MambaModel } from '../model/base.js';
import { Mamba1 } from '../model/mamba1.js';
import { Mamba2 } from '../model/mamba2.js';
import { Session } from '../model/session.js';
import { tokenizerFor } from '../tokenizer/index.js';
import { TraceRecorder } from '../trace/recorder.js';
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
  TraceParams,
  TraceResult,
} from './protocol.js';

/** One character shown for a control character or a byte that is not printable ASCII. */
const READABLE: Record<string, string> = { '\n': '⏎', '\t': '⇥', '\r': '␍' };

const hexByte = (b: number) => `0x${b.toString(16).toUpperCase().padStart(2, '0')}`;

/** Text of one token for display: bytes readably for byte models, control characters as symbols. */
function readableToken(tokenizer: Tokenizer | null, id: number): string {
  if (!tokenizer) return String(id);
  if (tokenizer.kind === 'bytes') {
    const ch = String.fromCharCode(id);
    if (READABLE[ch]) return READABLE[ch];
    return id >= 0x20 && id < 0x7f ? ch : hexByte(id);
  }
  const text = tokenizer.decode([id]);
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\n\t\r]/g, (c) => READABLE[c] ?? c).replace(/[\u0000-\u001f\u007f]/g, (c) => hexByte(c.charCodeAt(0)));
}

interface LoadedModel {
  modelId: string;
  weights: LoadedWeights;
  model: MambaModel;
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
      trace: (params) => this.trace(params),
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
    this.loaded?.model.destroy();
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
      const model = inspection.architecture === 'mamba2' ? new Mamba2(ctx, inspection, weights) : new Mamba1(ctx, inspection, weights);
      this.loaded = { modelId, weights, model, tokenizer };
      const runtimeBytes = model.activationBytes + model.stateBytes;
      return {
        modelId,
        architecture: inspection.architecture,
        parameters: inspection.parameters,
        bytesOnGpu: weights.bytesOnGpu,
        runtimeBytes,
        seconds: (performance.now() - started) / 1000,
        warnings: [...inspection.warnings, ...(tokenizer?.warnings ?? [])],
        tokenizer: tokenizer?.kind ?? 'none',
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

  private promptIds(loaded: LoadedModel, prompt: TraceParams['prompt']): number[] {
    let ids: number[];
    if ('ids' in prompt) ids = prompt.ids;
    else if (loaded.tokenizer) ids = loaded.tokenizer.encode(prompt.text);
    else throw new Error('This model has no tokenizer: give token ids (e.g. "5, 17, 3") instead of text.');
    if (ids.length === 0) throw new Error('The prompt is empty.');
    return ids;
  }

  /** Prefills the prompt in a fresh session with a TraceRecorder on, and reads Δ and the summaries back. */
  private async trace(params: TraceParams): Promise<TraceResult> {
    const ctx = await this.context();
    const loaded = this.loaded;
    if (!loaded || loaded.modelId !== params.modelId) throw new Error('Load the model onto the GPU first.');
    const model = loaded.model;
    if (!(model instanceof Mamba1)) throw new Error('Tracing Mamba-2 models in the app is not supported yet (the CLI `trace` command is).');
    if (this.generating) throw new Error('A generation is running; stop it before tracing.');
    const ids = this.promptIds(loaded, params.prompt);
    const recorder = new TraceRecorder(ctx, model, { ...(params.layers ? { layers: params.layers } : {}), capacity: ids.length, extra: ['x'] });
    const session = new Session(ctx, model);
    try {
      const aLogs = new Map<number, Float32Array>();
      for (const layer of recorder.layers) {
        const name = `backbone.layers.${layer}.mixer.A_log`;
        const buffer = loaded.weights.buffers.get(name);
        if (!buffer) throw new Error(`trace: the weights have no ${name}`);
        const count = (loaded.weights.shapes.get(name) ?? []).reduce((a, b) => a * b, 1);
        aLogs.set(layer, await readF32(ctx.device, buffer, count));
      }
      session.trace(recorder);
      session.prefill(ids);
      const window = await recorder.read();
      const summary = await recorder.summary((layer) => aLogs.get(layer) as Float32Array, window);
      return {
        ids,
        tokens: ids.map((id) => readableToken(loaded.tokenizer, id)),
        layers: [...recorder.layers],
        dInner: model.config.dInner,
        delta: window.delta,
        deltaNorm: summary.deltaNorm,
        writeGate: summary.writeGate,
        dState: model.config.dState,
        B: window.B,
        C: window.C,
        A: recorder.layers.map((layer) => Float32Array.from(aLogs.get(layer) as Float32Array, (v) => -Math.exp(v))),
        stateNorm: summary.stateNorm ?? [],
      };
    } finally {
      session.destroy();
      recorder.destroy();
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
