/**
 * The engine as seen from its host (the renderer's worker, or Node): handles typed requests.
 * It owns the GPU context; nothing here knows about Electron, React or the DOM.
 */
import { describeAdapter } from '../gpu/adapter.js';
import { openGpu, type GpuContext } from '../gpu/context.js';
import { GpuError } from '../gpu/errors.js';
import { webGpuAdvice } from '../gpu/advice.js';
import { inspectModel, tokenizerSource } from '../formats/inspect.js';
import { blobModelFiles, urlModelFiles, type ModelFiles } from '../formats/model-files.js';
import type { FetchLike } from '../formats/source.js';
import { runResidualRmsNormCheck } from '../kernels/self-test.js';
import { readBuffer, readF32, storageBuffer } from '../gpu/buffers.js';
import { submitDispatches } from '../kernels/dispatch.js';
import { validateTokenIds } from '../kernels/embedding.js';
import { topK, unpackTopK } from '../kernels/top-k.js';
import { hiddenAttention as hiddenAttentionOp, hiddenAttentionRow } from '../kernels/hidden-attention.js';
import { generate } from '../model/generate.js';
import { loadWeights, type LoadedWeights } from '../model/loader.js';
import type { MambaModel } from '../model/base.js';
import { Mamba1 } from '../model/mamba1.js';
import { klDivergence, softmax, topIndices, TOP_NEXT, totalVariation } from '../analysis/distributions.js';
import { Mamba2 } from '../model/mamba2.js';
import { Session } from '../model/session.js';
import { tokenizerFor } from '../tokenizer/index.js';
import { hexByte, READABLE_CONTROLS, readableByte } from '../tokenizer/readable.js';
import { SelectionReplay, TraceRecorder, type SelectionSummary, type TraceWindow } from '../trace/recorder.js';
import { appendTraceRows } from './trace-rows.js';
import { traceLayout } from '../trace/trace.js';
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
  HiddenAttentionParams,
  HiddenAttentionResult,
  KnockoutParams,
  KnockoutResult,
  LoadedModelInfo,
  NextTokenDistribution,
  TraceRows,
  ModelSource,
  TraceParams,
  TraceResult,
} from './protocol.js';

/** How often a generation with a live trace streams its new rows (ms). */
const LIVE_TRACE_MS = 200;
/** The most GPU memory a live trace may take (it is allocated up front for prompt + max tokens). */
const LIVE_TRACE_MAX_BYTES = 2 ** 30;

/** Text of one token for display: bytes readably for byte models, control characters as symbols. */
function readableToken(tokenizer: Tokenizer | null, id: number): string {
  if (!tokenizer) return String(id);
  if (tokenizer.kind === 'bytes') return readableByte(id);
  const text = tokenizer.decode([id]);
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\n\t\r]/g, (c) => READABLE_CONTROLS[c] ?? c).replace(/[\u0000-\u001f\u007f]/g, (c) => hexByte(c.charCodeAt(0)));
}

/** What a trace result says of rows of a trace (all but A): the same for a prompt's trace and a live one. */
function traceRowsOf(
  modelId: string,
  config: MambaModel['config'],
  tokenizer: Tokenizer | null,
  ids: number[],
  layers: readonly number[],
  window: TraceWindow,
  summary: SelectionSummary,
  topNext: TraceResult['topNext'],
): Omit<TraceResult, 'A'> {
  const { deltaWidth, deltaUnit, nGroups, aStates } = traceLayout(config);
  return {
    modelId,
    architecture: config.architecture,
    ids,
    tokens: ids.map((id) => readableToken(tokenizer, id)),
    layers: [...layers],
    deltaWidth,
    deltaUnit,
    delta: window.delta,
    deltaNorm: summary.deltaNorm,
    writeGate: summary.writeGate,
    dState: config.dState,
    nGroups,
    B: window.B,
    C: window.C,
    aStates,
    stateNorm: summary.stateNorm ?? [],
    ...(summary.stateNormByHead ? { stateNormByHead: summary.stateNormByHead } : {}),
    topNext,
  };
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
  /** The last trace, for hidden attention on demand (CPU copies; freed with the next trace or model). */
  private lastTrace: { result: TraceResult; aLogs: Map<number, Float32Array> } | null = null;

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
      hiddenAttention: (params) => this.hiddenAttention(params),
      knockout: (params) => this.knockout(params),
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
    this.lastTrace = null;
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
        const { json, file } = await tokenizerSource(files, inspection); // tokenizer.json, or the GGUF's own
        tokenizer = tokenizerFor(inspection.config.vocabSize, json, file);
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
    const promptIds = this.promptIds(loaded, params.prompt);
    const controller = new AbortController();
    this.generating = controller;
    const session = new Session(ctx, loaded.model);
    let live: Awaited<ReturnType<Engine['liveTrace']>> | null = null;
    try {
      if (params.trace) live = await this.liveTrace(ctx, loaded, session, promptIds.length + params.maxTokens);
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
        (token) => {
          this.emit({ kind: 'token', modelId, id: token.id, text: decoder ? token.text : `${token.id} `, index: token.index, tokensPerSecond: token.tokensPerSecond });
          live?.flushSoon();
        },
        decoder,
        (tail) => this.emit({ kind: 'token', modelId, id: -1, text: tail, index: -1, tokensPerSecond: 0 }),
      );
      await live?.finish();
      return { promptIds, ...result };
    } finally {
      await live?.stop();
      session.destroy();
      this.generating = null;
    }
  }

  /**
   * Traces every layer of `session` from its first token (capacity for `capacity` tokens, so the
   * buffers never grow — and are never replaced — while rows are read), and streams the rows as
   * 'trace-rows' events at most every LIVE_TRACE_MS while tokens come, then once at the end.
   * The summaries continue from window to window (SelectionReplay). The finished trace becomes
   * the last trace.
   */
  private async liveTrace(ctx: GpuContext, loaded: LoadedModel, session: Session, capacity: number) {
    const model = loaded.model;
    const config = model.config;
    // Per-channel Δ (Mamba-1): the state replay needs the x tap; per-head Δ (Mamba-2) has x in the conv rows the trace keeps anyway.
    const extra = traceLayout(config).deltaUnit === 'channel' ? (['x'] as const) : [];
    const topNext = Math.min(TOP_NEXT, config.vocabSize);
    const bytes = TraceRecorder.bytesPerToken(config, config.nLayer, extra, topNext) * capacity;
    if (bytes > LIVE_TRACE_MAX_BYTES) {
      throw new Error(
        `A live trace of ${capacity} tokens would take ${(bytes / 2 ** 30).toFixed(1)} GB of GPU memory (over ${LIVE_TRACE_MAX_BYTES / 2 ** 30} GB): lower Max tokens or turn the live trace off.`,
      );
    }
    const recorder = new TraceRecorder(ctx, model, { capacity, extra: [...extra], topNext });
    const aLogs = new Map<number, Float32Array>();
    try {
      for (const layer of recorder.layers) aLogs.set(layer, await this.aLog(ctx, loaded, layer));
    } catch (error) {
      recorder.destroy();
      throw error;
    }
    const replay = new SelectionReplay(config, recorder.layers, (layer) => aLogs.get(layer) as Float32Array);
    const A = recorder.layers.map((layer) => Float32Array.from(aLogs.get(layer) as Float32Array, (v) => -Math.exp(v)));
    session.trace(recorder);
    this.lastTrace = null;
    let trace: TraceResult | null = null;
    let read = 0;
    let lastFlush = performance.now();
    let chain: Promise<void> = Promise.resolve();
    let failed: unknown = null;
    const flush = () => {
      chain = chain.then(async () => {
        const to = recorder.length;
        if (to <= read || failed) return;
        const from = read;
        const window = await recorder.read(from, to);
        const summary = replay.append(window);
        read = to;
        const ids = session.tokens.slice(from, to);
        const rows: TraceRows = {
          from,
          ...traceRowsOf(this.loaded?.modelId ?? '', config, loaded.tokenizer, ids, recorder.layers, window, summary, window.topNext ?? { k: 0, ids: new Int32Array(0), probs: new Float32Array(0) }),
          ...(from === 0 ? { A } : {}),
        };
        trace = appendTraceRows(trace, rows);
        this.emit({ kind: 'trace-rows', modelId: rows.modelId, rows });
      }).catch((error: unknown) => {
        failed = error;
      });
    };
    return {
      flushSoon: () => {
        if (performance.now() - lastFlush < LIVE_TRACE_MS) return;
        lastFlush = performance.now();
        flush();
      },
      /** Streams the last rows and keeps the whole trace as the last trace. */
      finish: async () => {
        flush();
        await chain;
        if (failed) throw failed;
        if (trace) this.lastTrace = { result: trace, aLogs };
      },
      stop: async () => {
        await chain;
        session.trace(null);
        recorder.destroy();
      },
    };
  }

  private promptIds(loaded: LoadedModel, prompt: TraceParams['prompt']): number[] {
    let ids: number[];
    if ('ids' in prompt) ids = prompt.ids;
    else if (loaded.tokenizer) ids = loaded.tokenizer.encode(prompt.text);
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

  /** A layer's A_log as loaded: Mamba-1 [Di, N], Mamba-2 [H]. */
  private async aLog(ctx: GpuContext, loaded: LoadedModel, layer: number): Promise<Float32Array> {
    const name = `${loaded.model.prefixOf(layer)}mixer.A_log`;
    const buffer = loaded.weights.buffers.get(name);
    if (!buffer) throw new Error(`the weights have no ${name}`);
    const count = (loaded.weights.shapes.get(name) ?? []).reduce((a, b) => a * b, 1);
    return readF32(ctx.device, buffer, count);
  }

  /**
   * Prefills the prompt in a fresh session with a TraceRecorder on, chunk by chunk (progress as
   * 'trace-progress' events), keeping each chunk's logits just long enough to take the top next
   * tokens per position; then reads Δ, B, C back with the selection summaries. The result stays
   * in the engine for `hiddenAttention` until the next trace or model.
   */
  private async trace(params: TraceParams): Promise<TraceResult> {
    const ctx = await this.context();
    const loaded = this.ready(params.modelId, 'tracing');
    const model = loaded.model;
    const config = model.config;
    const perChannel = traceLayout(config).deltaUnit === 'channel';
    const ids = this.promptIds(loaded, params.prompt);
    const V = config.vocabSize;
    const K = Math.min(TOP_NEXT, V);
    const recorder = new TraceRecorder(ctx, model, { ...(params.layers ? { layers: params.layers } : {}), capacity: ids.length, ...(perChannel ? { extra: ['x' as const] } : {}) });
    const session = new Session(ctx, model);
    const chunk = model.maxTokens;
    const logits = storageBuffer(ctx.device, 'Engine.trace.logits', Math.min(chunk, ids.length) * V * 4);
    const topWords = storageBuffer(ctx.device, 'Engine.trace.topK', Math.min(chunk, ids.length) * 2 * K * 4);
    this.lastTrace = null;
    try {
      const aLogs = new Map<number, Float32Array>();
      for (const layer of recorder.layers) aLogs.set(layer, await this.aLog(ctx, loaded, layer));
      session.trace(recorder);
      const topIds = new Int32Array(ids.length * K);
      const topProbs = new Float32Array(ids.length * K);
      for (let start = 0; start < ids.length; start += chunk) {
        const part = ids.slice(start, start + chunk);
        session.prefill(part, { allLogits: logits });
        // The top K of each row on the GPU: [rows, 2K] words come back instead of [rows, V] logits.
        const select = topK(ctx, { rows: part.length, vocab: V, k: K }, { logits, out: topWords });
        try {
          submitDispatches(ctx.device, 'Engine.trace.topK', [select]);
          const top = unpackTopK(new Uint32Array(await readBuffer(ctx.device, topWords, part.length * 2 * K * 4)), part.length, K);
          topIds.set(top.ids, start * K);
          topProbs.set(top.probs, start * K);
        } finally {
          select.destroy();
        }
        this.emit({ kind: 'trace-progress', modelId: params.modelId, done: start + part.length, total: ids.length });
      }
      const window = await recorder.read();
      const summary = await recorder.summary((layer) => aLogs.get(layer) as Float32Array, window);
      const result: TraceResult = {
        ...traceRowsOf(params.modelId, config, loaded.tokenizer, ids, recorder.layers, window, summary, { k: K, ids: topIds, probs: topProbs }),
        A: recorder.layers.map((layer) => Float32Array.from(aLogs.get(layer) as Float32Array, (v) => -Math.exp(v))),
      };
      this.lastTrace = { result, aLogs };
      return result;
    } finally {
      logits.destroy();
      topWords.destroy();
      session.destroy();
      recorder.destroy();
    }
  }

  /**
   * Hidden attention of one layer of the last trace, on the GPU (kernels/hidden-attention.ts).
   * Mamba-2 runs the same kernel per group with the heads as "channels": for head h,
   * α[i, j] = (C_i·B_j)·exp(A_h·(S_i − S_j))·Δ_j[h] with A_log[h] repeated over the N states;
   * the mean over heads is the mean of the groups' means (every group has H/G heads).
   */
  private async hiddenAttention(params: HiddenAttentionParams): Promise<HiddenAttentionResult> {
    const ctx = await this.context();
    this.ready(params.modelId, 'computing hidden attention');
    const last = this.lastTrace;
    if (!last || last.result.modelId !== params.modelId) throw new Error('Trace a prompt first: hidden attention is computed from the last trace.');
    const r = last.result;
    const index = r.layers.indexOf(params.layer);
    if (index < 0) throw new Error(`Layer ${params.layer} is not in the last trace (traced: ${r.layers.join(', ')}).`);
    const T = r.ids.length;
    const W = r.deltaWidth;
    const N = r.dState;
    const unit = params.unit;
    if (unit !== 'mean' && !(Number.isInteger(unit) && unit >= 0 && unit < W)) throw new Error(`There is no ${r.deltaUnit} ${unit} (the layer has ${W}).`);
    const row = params.row;
    if (row !== undefined && !(Number.isInteger(row) && row >= 0 && row < T)) throw new Error(`There is no token ${row} (the trace has ${T}).`);
    const outElements = row === undefined ? T * T : T;
    const limit = Math.min(ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize);
    if (outElements * 4 > limit) {
      throw new Error(`The full ${T} × ${T} matrix needs ${Math.ceil((outElements * 4) / 2 ** 20)} MB, over this GPU's ${Math.floor(limit / 2 ** 20)} MB per buffer: pick one row instead.`);
    }
    const delta = r.delta[index] as Float32Array;
    const B = r.B[index] as Float32Array;
    const C = r.C[index] as Float32Array;
    const aLog = last.aLogs.get(params.layer) as Float32Array;
    // Mamba-1: one run over every channel. Mamba-2: one run per group over its heads (or only the chosen head's group).
    const runs: { delta: Float32Array; b: Float32Array; c: Float32Array; aLog: Float32Array; width: number; unit: number | 'mean'; weight: number }[] = [];
    if (r.deltaUnit === 'channel') {
      runs.push({ delta, b: B, c: C, aLog, width: W, unit, weight: 1 });
    } else {
      const G = r.nGroups;
      const perGroup = W / G;
      for (let g = 0; g < G; g++) {
        if (unit !== 'mean' && Math.floor(unit / perGroup) !== g) continue;
        const heads = Array.from({ length: perGroup }, (_, i) => g * perGroup + i);
        const d = new Float32Array(T * perGroup);
        const b = new Float32Array(T * N);
        const c = new Float32Array(T * N);
        for (let t = 0; t < T; t++) {
          heads.forEach((h, i) => (d[t * perGroup + i] = delta[t * W + h] as number));
          b.set(B.subarray(t * G * N + g * N, t * G * N + (g + 1) * N), t * N);
          c.set(C.subarray(t * G * N + g * N, t * G * N + (g + 1) * N), t * N);
        }
        const a = new Float32Array(perGroup * N);
        heads.forEach((h, i) => a.fill(aLog[h] as number, i * N, (i + 1) * N));
        runs.push({ delta: d, b, c, aLog: a, width: perGroup, unit: unit === 'mean' ? 'mean' : unit - g * perGroup, weight: unit === 'mean' ? 1 / G : 1 });
      }
    }
    const alpha = new Float32Array(outElements);
    for (const run of runs) {
      const upload = (label: string, data: Float32Array) => {
        const buffer = storageBuffer(ctx.device, `Engine.hiddenAttention.${label}`, data.byteLength);
        ctx.device.queue.writeBuffer(buffer, 0, data);
        return buffer;
      };
      const buffers = {
        delta: upload('delta', run.delta),
        b: upload('b', run.b),
        c: upload('c', run.c),
        aLog: upload('aLog', run.aLog),
        alpha: storageBuffer(ctx.device, 'Engine.hiddenAttention.alpha', outElements * 4),
      };
      const shape = { tokens: T, dInner: run.width, dState: N, channel: run.unit };
      const dispatch = row === undefined ? hiddenAttentionOp(ctx, shape, buffers) : hiddenAttentionRow(ctx, { ...shape, row }, buffers);
      try {
        const encoder = ctx.device.createCommandEncoder({ label: 'Engine.hiddenAttention' });
        const pass = encoder.beginComputePass({ label: 'Engine.hiddenAttention.pass' });
        dispatch.encode(pass);
        pass.end();
        ctx.device.queue.submit([encoder.finish()]);
        const out = await readF32(ctx.device, buffers.alpha, outElements);
        for (let i = 0; i < outElements; i++) alpha[i] = (alpha[i] as number) + run.weight * (out[i] as number);
      } finally {
        dispatch.destroy();
        for (const b of Object.values(buffers)) b.destroy();
      }
    }
    return { layer: params.layer, unit, tokens: T, ...(row !== undefined ? { row } : {}), alpha };
  }

  /** Runs the prompt twice in fresh state — as is, and with Δ of one token := 0 in the chosen layers — and compares the next-token distributions. */
  private async knockout(params: KnockoutParams): Promise<KnockoutResult> {
    const ctx = await this.context();
    const loaded = this.ready(params.modelId, 'a knockout');
    const ids = this.promptIds(loaded, params.prompt);
    const L = loaded.model.config.nLayer;
    const layers = params.layers ? [...new Set(params.layers)].sort((a, b) => a - b) : null;
    for (const l of layers ?? []) if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new Error(`There is no layer ${l} (the model has ${L}).`);
    if (layers && layers.length === 0) throw new Error('Choose at least one layer to knock the token out of.');
    if (!(Number.isInteger(params.token) && params.token >= 0 && params.token < ids.length)) throw new Error(`There is no token ${params.token} in the prompt (it has ${ids.length}).`);
    const k = Math.max(1, Math.min(params.k ?? 10, loaded.model.config.vocabSize));
    const session = new Session(ctx, loaded.model);
    try {
      session.prefill(ids);
      const p = softmax(await session.readLogits());
      session.reset();
      session.prefill(ids, { knockout: { token: params.token, layers } });
      const q = softmax(await session.readLogits());
      const top = (probs: Float64Array): NextTokenDistribution => {
        const order = topIndices(probs, k);
        return { ids: order, texts: order.map((id) => readableToken(loaded.tokenizer, id)), probs: order.map((id) => probs[id] as number) };
      };
      const baseline = top(p);
      return {
        token: params.token,
        layers: layers ?? Array.from({ length: L }, (_, l) => l),
        baseline,
        knocked: top(q),
        kl: klDivergence(p, q),
        totalVariation: totalVariation(p, q),
        baselineTopProbAfter: q[baseline.ids[0] as number] as number,
      };
    } finally {
      session.destroy();
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
