/**
 * The engine as seen from its host (the renderer's worker, or Node): routes typed requests and
 * owns the GPU context and the model lifecycle (init, load / cancel / unload, generate, stop).
 * Tracing, hidden attention and knockout are app/analysis's; the engine keeps the recent traces
 * by id (TraceStore) so that those requests name the trace they read, reports their progress
 * ('work-progress') and cancels them (`cancel`: their AbortSignal, checked between GPU submits). Nothing here knows about
 * Electron, React or the DOM.
 */
import { describeAdapter } from '../gpu/adapter.js';
import { deviceLoss, openGpu, type GpuContext } from '../gpu/context.js';
import { GpuError } from '../gpu/errors.js';
import { webGpuAdvice } from '../gpu/advice.js';
import { chatTemplateSource, inspectModel, tokenizerSource } from '../arch/inspect.js';
import { allocateModel } from '../arch/build.js';
import { blobModelFiles, urlModelFiles, type ModelFiles } from '../formats/model-files.js';
import type { FetchLike } from '../formats/source.js';
import { runResidualRmsNormCheck } from '../kernels/self-test.js';
import { validateTokenIds } from '../kernels/embedding.js';
import { generate } from '../model/generate.js';
import { loadWeights, type LoadedWeights } from '../model/loader.js';
import { describeWeightFormats, type WeightChoice } from '../model/memory.js';
import type { PrefillMatmul } from '../model/int8-plan.js';
import { usablePrefillMatmul } from '../model/int8-prefill.js';
import { ANALYSIS_CHUNK, checkMemoryPlan, chunksOf, modelChunks, planMemory, type MemoryPlan } from '../model/memory-plan.js';
import { withContextTokens, type ModelInspection } from '../model/inspection.js';
import { PLANNED_TRACE_TOKENS, traceMemory } from '../analysis/trace-memory.js';
import type { LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import { lazyTokenizer } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { hiddenAttention } from '../analysis/hidden-attention.js';
import { attentionPattern } from '../analysis/attention-pattern.js';
import { hybridMemory } from '../model/memory.js';
import { knockout } from '../analysis/knockout.js';
import { logitLens } from '../analysis/logit-lens.js';
import { tokenAttribution } from '../analysis/attribution.js';
import { activationPatching } from '../analysis/patching.js';
import { stateSteering } from '../analysis/steering.js';
import { startLiveTrace, tracePrompt, type LiveTrace } from '../analysis/trace.js';
import { traceLayout } from '../arch/registry.js';
import { checkFocusChannels, FULL_TRACE_MAX_BYTES, fullTraceBytes, meanOverColumns, traceLongPrompt, traceWindowOf } from '../analysis/long-trace.js';
import { TraceStore } from '../analysis/trace-store.js';
import { CancelledError, type WorkProgress } from '../analysis/cancel.js';
import type {
  CancellableKind,
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

interface LoadedModel {
  modelId: string;
  weights: LoadedWeights;
  model: LanguageModel;
  /** Built at the first read (app/tokenizer lazyTokenizer): prompts of token ids need none. */
  readonly tokenizer: Tokenizer | null;
  /** The model's end-of-sequence ids (ModelInspection.eosTokenIds). */
  eosIds: ReadonlySet<number>;
}

/** A request as its handler sees it: its id (for progress events) and the signal a `cancel` aborts. */
interface RequestWork {
  id: number;
  signal: AbortSignal;
}

type Handler<K extends EngineRequestKind> = (
  params: EngineRequests[K]['params'],
  work: RequestWork,
) => Promise<EngineRequests[K]['result']>;

const CANCELLABLE: readonly EngineRequestKind[] = ['trace', 'hiddenAttention', 'attentionPattern', 'knockout', 'logitLens', 'attribution', 'patching', 'steering'] satisfies CancellableKind[];

/** What LoadedModelInfo says of a model's blocks and of its state's bytes (SSM state, KV caches). */
function blocksInfo(model: LanguageModel): Pick<LoadedModelInfo, 'blocks' | 'attentionHeads' | 'kvCache' | 'ssmStateBytes'> {
  const blocks = model.blocks.map((b) => ({ kind: b.kind, layer: b.layer }));
  const a = model.config.hybrid?.attention ?? null;
  const attention = blocks.filter((b) => b.kind === 'attention').length;
  const kv = hybridMemory(model.config);
  // Per token and attention block: a key and a value of every KV head, and the u32 knockout mask word.
  const bytesPerToken = a ? attention * 4 * (2 * a.nKvHeads * a.headDim + 1) : 0;
  return {
    blocks,
    attentionHeads: a && attention > 0 ? a.nHeads : 0,
    kvCache: a && attention > 0 ? { capacity: kv.kvTokens, bytesPerToken, fixedBytes: kv.kvCache - kv.kvTokens * bytesPerToken } : null,
    ssmStateBytes: model.stateBytes - kv.kvCache,
  };
}

export class Engine {
  private gpu: GpuContext | null = null;
  private status: GpuStatus | null = null;
  private readonly handlers: { [K in EngineRequestKind]: Handler<K> };
  private loaded: LoadedModel | null = null;
  private readonly loading = new Map<string, AbortController>();
  private generating: AbortController | null = null;
  /** The running cancellable requests (trace, hidden attention, knockout) by request id. */
  private readonly running = new Map<number, { kind: CancellableKind; controller: AbortController }>();
  /** The recent traces of the loaded model, by id (dropped with the model or the device). */
  private readonly traces = new TraceStore();

  constructor(
    private readonly navigatorGpu: GPU | undefined,
    private readonly emit: (event: EngineEvent) => void,
    private readonly userAgent = '',
    private readonly fetchFn?: FetchLike,
    /** Bytes of GPU memory a model may use in all (LoadOptions.gpuMemoryBudget); default no cap. */
    private readonly gpuMemoryBudget?: number,
  ) {
    this.handlers = {
      init: (params) => this.init(params.powerPreference),
      selfTest: async (params) => runResidualRmsNormCheck(await this.context(), params.rows, params.cols),
      loadModel: (params) => this.loadModel(params.modelId, params.source, params.weights ?? 'auto', params.contextTokens, params.prefill ?? 'fp32'),
      planModel: async ({ source, weights, contextTokens, prefill }) => {
        const files = this.files(source);
        return this.plan(files.name, withContextTokens(await inspectModel(files), contextTokens), weights ?? 'auto', true, usablePrefillMatmul(this.gpu, prefill ?? 'fp32').matmul);
      },
      cancelLoad: async ({ modelId }) => {
        const controller = this.loading.get(modelId);
        controller?.abort();
        return { cancelled: controller !== undefined };
      },
      unloadModel: async () => ({ unloaded: this.unload() }),
      generate: (params) => this.generate(params),
      trace: (params, work) => this.trace(params, work),
      traceWindow: async (params, { signal }) => {
        await this.context();
        this.ready(params.modelId, 'reading a trace window');
        const kept = this.traces.get(params.traceId);
        if (kept.result.detail !== 'windows') return traceWindowOf(kept, params);
        if (!kept.recompute) throw new Error(`Trace ${params.traceId} keeps no checkpoints to recompute windows from.`);
        return kept.recompute(params, signal);
      },
      hiddenAttention: async (params, { id, signal }) => {
        const ctx = await this.context();
        this.ready(params.modelId, 'computing hidden attention');
        const onProgress = this.progress(id, 'hiddenAttention', params.modelId, 'rows');
        const kept = this.traces.get(params.traceId);
        if (kept.result.detail === 'windows') {
          // A long trace: one row over the whole context (no T×T matrix), its Δ, B, C recomputed.
          if (params.row === undefined || !kept.attentionRow) {
            throw new Error(`Trace ${params.traceId} keeps windows (${kept.result.ids.length} tokens): ask for one row of hidden attention, not the whole matrix.`);
          }
          if (!kept.result.layers.includes(params.layer)) throw new RangeError(`Trace ${params.traceId} has no layer ${params.layer} (it has ${kept.result.layers.join(', ')}).`);
          return kept.attentionRow({ layer: params.layer, unit: params.unit, row: params.row }, { signal, onProgress });
        }
        return hiddenAttention(ctx, kept, params, { signal, onProgress });
      },
      attentionPattern: async (params, { id, signal }) => {
        const ctx = await this.context();
        const loaded = this.ready(params.modelId, 'computing an attention pattern');
        const onProgress = this.progress(id, 'attentionPattern', params.modelId, 'rows');
        const ids = this.traces.get(params.traceId).result.ids;
        return attentionPattern(ctx, loaded.model, ids, { layer: params.layer, head: params.head }, { signal, onProgress });
      },
      knockout: async (params, { id, signal }) => {
        const ctx = await this.context();
        const loaded = this.ready(params.modelId, 'a knockout');
        const onProgress = this.progress(id, 'knockout', params.modelId, 'positions');
        const kept = this.traces.get(params.traceId);
        return knockout(ctx, loaded, kept.result.ids, params, { signal, onProgress }, kept.restore);
      },
      logitLens: async (params, { id, signal }) => {
        const ctx = await this.context();
        const loaded = this.ready(params.modelId, 'the logit lens');
        const onProgress = this.progress(id, 'logitLens', params.modelId, 'cells');
        return logitLens(ctx, loaded, this.traces.get(params.traceId).result.ids, params, { signal, onProgress });
      },
      attribution: async (params, { id, signal }) => {
        const ctx = await this.context();
        const loaded = this.ready(params.modelId, 'token attribution');
        const onProgress = this.progress(id, 'attribution', params.modelId, 'positions');
        return tokenAttribution(ctx, loaded, this.traces.get(params.traceId).result.ids, params, { signal, onProgress });
      },
      patching: async (params, { id, signal }) => {
        const ctx = await this.context();
        const loaded = this.ready(params.modelId, 'patching');
        const corrupt = this.promptIds(loaded, params.corrupt);
        const onProgress = this.progress(id, 'patching', params.modelId, 'positions');
        const { modelId: _model, traceId, corrupt: _corrupt, ...options } = params;
        return activationPatching(ctx, loaded, this.traces.get(traceId).result.ids, corrupt, options, { signal, onProgress });
      },
      steering: async (params, { id, signal }) => {
        const ctx = await this.context();
        const loaded = this.ready(params.modelId, 'steering');
        const onProgress = this.progress(id, 'steering', params.modelId, 'tokens');
        const { modelId: _model, traceId, a, b, ...options } = params;
        return stateSteering(ctx, loaded, this.traces.get(traceId).result.ids, { ...options, a: this.promptIds(loaded, a), b: this.promptIds(loaded, b) }, { signal, onProgress });
      },
      cancel: async (params) => {
        let cancelled = 0;
        for (const [id, { kind, controller }] of this.running) {
          if ('requestId' in params ? id !== params.requestId : kind !== params.kind) continue;
          controller.abort();
          cancelled++;
        }
        return { cancelled };
      },
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
    this.traces.clear();
    return id;
  }

  private files(source: ModelSource): ModelFiles {
    if (source.kind === 'files') return blobModelFiles(source.folder, source.files);
    if (!this.fetchFn) throw new Error('this engine was started without fetch, so it cannot read models from URLs');
    return urlModelFiles(source.baseUrl, source.files, this.fetchFn);
  }

  /**
   * A model's memory plan on this engine's GPU (its adapter once opened; else no limits and memory
   * unknown, unless a budget); `withTrace`: with a trace of PLANNED_TRACE_TOKENS tokens of every
   * layer (what planModel shows: no trace is chosen when a model loads, so loading checks the plan
   * without one, and a trace that does not fit later fails alone, its buffers under an
   * out-of-memory scope).
   */
  private plan(name: string, inspection: ModelInspection, weights: WeightChoice, withTrace: boolean, prefillMatmul: PrefillMatmul): MemoryPlan {
    const bare = planMemory(inspection, { weights });
    const trace = withTrace ? traceMemory(inspection.config, { tokens: PLANNED_TRACE_TOKENS, chunk: ANALYSIS_CHUNK, sessionBytes: bare.state }) : null;
    const options = {
      weights,
      prefillMatmul,
      model: name,
      trace,
      adapter: this.gpu?.adapter ?? null,
      ...(this.gpuMemoryBudget !== undefined ? { budget: this.gpuMemoryBudget } : {}),
    };
    // The plain prefill's chunk as loading will choose it (modelChunks): the larger where it fits.
    return planMemory(inspection, { ...options, maxTokens: modelChunks(inspection, { ...options, trace: null }).maxTokens });
  }

  private async loadModel(modelId: string, source: ModelSource, weightChoice: WeightChoice, contextTokens: number | undefined, prefillAsked: PrefillMatmul): Promise<LoadedModelInfo> {
    const ctx = await this.context();
    const prefill = usablePrefillMatmul(ctx, prefillAsked);
    if (this.loading.size > 0) throw new Error('Another model is being loaded; cancel it first.');
    const controller = new AbortController();
    this.loading.set(modelId, controller);
    const started = performance.now();
    try {
      const files = this.files(source);
      const inspection = withContextTokens(await inspectModel(files), contextTokens);
      // The text is read now; it is parsed, checked and built at the first prompt or token that needs text.
      const tokenizer = lazyTokenizer(inspection.config.vocabSize, inspection.tokenizer === 'none' ? null : await tokenizerSource(files, inspection));
      const chat = await chatTemplateSource(files, inspection);
      // Refused here, before the model on the GPU is unloaded, when it cannot fit (loadWeights checks the same plan).
      const planned = this.plan(files.name, inspection, weightChoice, false, prefill.matmul);
      checkMemoryPlan(planned);
      this.unload(); // one model on the GPU at a time: free the previous one before allocating
      const weightFormat = weightChoice;
      const chunks = chunksOf(planned.maxTokens);
      const weights = await loadWeights(ctx, files, inspection, {
        weightFormat,
        maxTokens: chunks.maxTokens,
        name: files.name,
        signal: controller.signal,
        onProgress: (progress) => this.emit({ kind: 'load-progress', modelId, progress }),
        ...(this.gpuMemoryBudget !== undefined ? { gpuMemoryBudget: this.gpuMemoryBudget } : {}),
      });
      let model: LanguageModel;
      try {
        model = await allocateModel(ctx, inspection, weights, { ...chunks, weightFormat, prefillMatmul: prefill.matmul, what: files.name });
      } catch (error) {
        weights.destroy();
        throw error;
      }
      this.loaded = {
        modelId,
        weights,
        model,
        get tokenizer() {
          return tokenizer.get();
        },
        eosIds: new Set(inspection.eosTokenIds ?? []),
      };
      const runtimeBytes = model.activationBytes + model.stateBytes;
      return {
        modelId,
        architecture: inspection.architecture,
        parameters: inspection.parameters,
        bytesOnGpu: weights.bytesOnGpu,
        runtimeBytes,
        seconds: (performance.now() - started) / 1000,
        warnings: [...inspection.warnings, ...(chat.error ? [chat.error] : []), ...(prefill.warning ? [prefill.warning] : [])],
        tokenizer: tokenizer.kind,
        eosTokenIds: inspection.eosTokenIds ?? [],
        deltaWidth: traceLayout(inspection.config).deltaWidth,
        ...blocksInfo(model),
        weightFormat: describeWeightFormats(weights.formats ?? new Map(), inspection),
        prefillMatmul: model.prefillMatmul,
        ...(chat.template ? { chatTemplate: chat.template } : {}),
        ...(chat.error ? { chatTemplateError: chat.error } : {}),
      };
    } finally {
      this.loading.delete(modelId);
    }
  }

  /** Emits a long request's progress as 'work-progress' events. */
  private progress(requestId: number, work: CancellableKind, modelId: string, unit: 'tokens' | 'rows' | 'positions' | 'cells'): WorkProgress {
    return (done, total) => this.emit({ kind: 'work-progress', requestId, work, modelId, done, total, unit });
  }

  async handle(request: EngineRequest): Promise<EngineResponse> {
    const gpu = this.gpu;
    const controller = new AbortController();
    const cancellable = CANCELLABLE.includes(request.kind);
    if (cancellable) this.running.set(request.id, { kind: request.kind as CancellableKind, controller });
    try {
      const handler = this.handlers[request.kind] as Handler<typeof request.kind>;
      const result = await handler(request.params as never, { id: request.id, signal: controller.signal });
      return { id: request.id, kind: request.kind, ok: true, result } as EngineResponse;
    } catch (thrown) {
      const error = gpu && !(thrown instanceof CancelledError) ? await this.explainLoss(gpu, request.kind, thrown) : thrown;
      return { id: request.id, kind: request.kind, ok: false, error: error instanceof Error ? error.message : String(error) };
    } finally {
      if (cancellable) this.running.delete(request.id);
    }
  }

  /**
   * What a request that failed on `gpu` failed of: when its device was lost meanwhile (a driver
   * reset, the GPU removed, destroy()), the work on it was cut with an error that says nothing
   * (mapAsync's AbortError has no message); say that the device was lost, and what to do.
   */
  private async explainLoss(gpu: GpuContext, kind: EngineRequestKind, error: unknown): Promise<unknown> {
    // The loss may be told just after the work on the device is cut: wait for it only when the
    // error is of the kind lost work gives, so that other errors come back at once.
    const cut = error instanceof GpuError || (typeof error === 'object' && error !== null && ['AbortError', 'OperationError'].includes((error as { name?: unknown }).name as string));
    const loss = this.gpu !== gpu || cut ? await deviceLoss(gpu, cut ? 250 : 0) : null;
    if (!loss) return error;
    const what = kind === 'generate' ? 'the generation' : kind === 'loadModel' ? 'loading the model' : `the ${kind} request`;
    return new GpuError(`The GPU device was lost during ${what} (${loss.reason}: ${loss.message}). Open the GPU again and reload the model.`, 'device-lost');
  }

  /** Generates; with `trace`, a live trace streams as 'trace-rows' events and is kept under the summary's traceId. */
  private async generate(params: GenerateParams): Promise<GenerateSummary> {
    const ctx = await this.context();
    const loaded = this.loaded;
    if (!loaded || loaded.modelId !== params.modelId) throw new Error('Load the model onto the GPU first.');
    if (this.generating) throw new Error('A generation is already running; stop it first.');
    const promptIds = this.promptIds(loaded, params.prompt);
    // The tokens stream as text: this builds the tokenizer for a prompt of ids (and throws its
    // ModelFileError here, before anything is allocated, when it cannot be built).
    const decoder = loaded.tokenizer?.decoder();
    const controller = new AbortController();
    this.generating = controller;
    // Generating only: the prompt's plain prefill takes the model's largest chunk (a live trace's
    // traced prefill keeps the analyses' chunk: Session.tracedPrefill).
    const session = new Session(ctx, loaded.model, undefined, { prefillChunk: loaded.model.maxTokens });
    const { modelId } = params;
    const traceId = params.trace ? this.traces.newId() : null;
    let live: LiveTrace | null = null;
    try {
      if (traceId) {
        if (params.traceFocusChannels) checkFocusChannels(params.traceFocusChannels, traceLayout(loaded.model.config).deltaWidth);
        live = await startLiveTrace(ctx, loaded, session, promptIds.length + params.maxTokens, {
          traceId,
          modelId,
          ...(params.traceFocusChannels ? { focusChannels: params.traceFocusChannels } : {}),
          ...(params.traceDetail ? { detail: params.traceDetail } : {}),
          onRows: (rows) => this.emit({ kind: 'trace-rows', modelId, rows }),
        });
      }
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
          ...(params.ignoreEos ? {} : { eosIds: loaded.eosIds }),
          signal: controller.signal,
        },
        (token) => {
          this.emit({ kind: 'token', modelId, id: token.id, text: decoder ? token.text : `${token.id} `, index: token.index, tokensPerSecond: token.tokensPerSecond });
          live?.flushSoon();
        },
        decoder,
        (tail) => this.emit({ kind: 'token', modelId, id: -1, text: tail, index: -1, tokensPerSecond: 0 }),
      );
      const finished = await live?.finish();
      // Kept only while its model still is (an unload during the generation dropped the others).
      if (finished && this.loaded === loaded) this.traces.keep(finished);
      return { promptIds, ...result, ...(traceId ? { traceId } : {}) };
    } finally {
      await live?.stop();
      session.destroy();
      this.generating = null;
    }
  }

  private promptIds(loaded: LoadedModel, prompt: TraceParams['prompt']): number[] {
    let ids: number[];
    if ('ids' in prompt) ids = prompt.ids;
    else if (loaded.tokenizer) ids = loaded.tokenizer.encode(prompt.text, { addSpecialTokens: prompt.addSpecialTokens ?? true });
    else throw new Error('This model has no tokenizer: give token ids (e.g. "5, 17, 3") instead of text.');
    if (ids.length === 0) throw new Error('The prompt is empty.');
    validateTokenIds(ids, loaded.model.config.vocabSize); // before any buffer is made for the request
    return ids;
  }

  /** The loaded model, checked against the request's model id, with no generation running. */
  private ready(modelId: string, what: string): LoadedModel {
    const loaded = this.loaded;
    if (!loaded || loaded.modelId !== modelId) throw new Error('Load the model onto the GPU first.');
    if (this.generating) throw new Error(`A generation is running; stop it before ${what}.`);
    return loaded;
  }

  /** Traces a prompt (progress as 'work-progress' events) and keeps the trace under its id. */
  private async trace(params: TraceParams, { id, signal }: RequestWork): Promise<TraceResult> {
    const ctx = await this.context();
    const loaded = this.ready(params.modelId, 'tracing');
    const ids = this.promptIds(loaded, params.prompt);
    const { modelId } = params;
    const options = {
      traceId: this.traces.newId(),
      modelId,
      ...(params.layers ? { layers: params.layers } : {}),
      onProgress: this.progress(id, 'trace', modelId, 'tokens'),
      signal,
    };
    if (params.focusChannels) checkFocusChannels(params.focusChannels, traceLayout(loaded.model.config).deltaWidth);
    const layers = params.layers?.length ?? loaded.model.traceableLayers.length;
    const detail = params.detail === 'all' || params.detail === 'windows' ? params.detail : fullTraceBytes(loaded.model.config, layers, ids.length) > FULL_TRACE_MAX_BYTES ? 'windows' : 'all';
    if (detail === 'windows') {
      const stored = await traceLongPrompt(ctx, loaded, ids, { ...options, ...(params.focusChannels ? { focusChannels: params.focusChannels } : {}) });
      this.traces.keep(stored);
      return stored.result;
    }
    const { result, aLogs } = await tracePrompt(ctx, loaded, ids, options);
    const focused = params.focusChannels?.length ? { focusChannels: [...params.focusChannels], focusScore: result.delta.map((d) => meanOverColumns(d, result.deltaWidth, params.focusChannels as number[])) } : {};
    const full = { ...result, ...focused, detail: 'all' as const };
    this.traces.keep({ result: full, aLogs });
    return full;
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
          this.traces.clear();
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
