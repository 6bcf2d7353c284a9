/**
 * The one trace path, for the app's engine and the CLI:
 *
 * - `tracePrompt`: a prompt's prefill in a fresh session with a TraceRecorder on, chunk by chunk
 *   (the model's analysisTokens per chunk; `onProgress` after each, `signal` checked between them),
 *   keeping each chunk's logits just long enough to take the top next tokens per position on the GPU (kernels/top-k.ts: [rows, 2k]
 *   words come back instead of [rows, V] logits) — and, with `keepLogits`, reading them back too
 *   ([T, V] float32, the CLI's trace file has them); then Δ, B, C and the selection summaries.
 * - `startLiveTrace`: every layer of a generating session traced from its first token, the new
 *   rows streamed (`onRows`) at most every LIVE_TRACE_MS while tokens come, then once at the end.
 *
 * Both give the trace as a StoredTrace (the result, and the traced layers' A_log for hidden
 * attention); the engine keeps it in its TraceStore.
 */
import { readBuffer, readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { submitDispatches } from '../kernels/dispatch.js';
import { topK, unpackTopK } from '../kernels/top-k.js';
import { Session } from '../model/session.js';
import { SelectionReplay, TraceRecorder, type TraceWindow } from './recorder.js';
import { GpuSelectionSummary } from './gpu-summary.js';
import { FULL_TRACE_MAX_BYTES, LongTraceSink, longTraceMemory, meanOverColumns, windowsTrace } from './long-trace.js';
import type { TraceLayout } from '../model/mixer.js';
import type { TraceSink } from '../model/session.js';
import { encodeTrace } from './export.js';
import { TOP_NEXT } from './distributions.js';
import { throwIfCancelled } from './cancel.js';
import { aLogBuffers, aOf, extraTaps, readALogs, type PromptTraceOptions, type TraceName, type TraceTarget } from './trace-target.js';
export { aLogBuffers, readALogs, type PromptTraceOptions, type TraceName, type TraceTarget } from './trace-target.js';
import { traceRowsOf, TraceRowsBuilder, type TraceOwner } from './trace-rows.js';
import { TraceTrail } from './trace-trail.js';
import type { StoredTrace, TraceResult, TraceRows } from './types.js';

/** How often a generation with a live trace streams its new rows (ms). */
export const LIVE_TRACE_MS = 200;
/** The most GPU memory a live trace may take (planned up front for prompt + max tokens). */
export const LIVE_TRACE_MAX_BYTES = 2 ** 30;
/** A live trace with windows starts with room for this many rows of summaries and grows as needed. */
const LIVE_TRACE_INITIAL_ROWS = 65536;







export interface PromptTrace extends StoredTrace {
  /** With `keepLogits`: the logits after each token, [T, V] row-major. */
  logits?: Float32Array;
}

/** Traces a prompt's prefill in a fresh session (see the file's comment). */
export async function tracePrompt(ctx: GpuContext, target: TraceTarget, ids: readonly number[], options: PromptTraceOptions): Promise<PromptTrace> {
  if (ids.length === 0) throw new Error('The prompt is empty.');
  throwIfCancelled(options.signal);
  const { model } = target;
  const config = model.config;
  const V = config.vocabSize;
  const K = Math.min(TOP_NEXT, V);
  const T = ids.length;
  const recorder = new TraceRecorder(ctx, model, { ...(options.layers ? { layers: options.layers } : {}), capacity: T, extra: extraTaps(config) });
  const session = new Session(ctx, model);
  const chunk = model.analysisTokens;
  const rows = Math.min(chunk, T);
  const logitsBuffer = storageBuffer(ctx.device, 'Trace.logits', rows * V * 4);
  const topWords = storageBuffer(ctx.device, 'Trace.topK', rows * 2 * K * 4);
  try {
    const aLogs = await readALogs(ctx, target, recorder.layers);
    session.trace(recorder);
    const topIds = new Int32Array(T * K);
    const topProbs = new Float32Array(T * K);
    const logits = options.keepLogits ? new Float32Array(T * V) : undefined;
    for (let start = 0; start < T; start += chunk) {
      const part = ids.slice(start, start + chunk);
      session.prefill(part, { allLogits: logitsBuffer });
      const select = topK(ctx, { rows: part.length, vocab: V, k: K }, { logits: logitsBuffer, out: topWords });
      try {
        submitDispatches(ctx.device, 'Trace.topK', [select]);
        const top = unpackTopK(new Uint32Array(await readBuffer(ctx.device, topWords, part.length * 2 * K * 4)), part.length, K);
        topIds.set(top.ids, start * K);
        topProbs.set(top.probs, start * K);
        if (logits) logits.set(await readF32(ctx.device, logitsBuffer, part.length * V), start * V);
      } finally {
        select.destroy();
      }
      throwIfCancelled(options.signal);
      options.onProgress?.(start + part.length, T);
    }
    const window = await recorder.read();
    const summary = await recorder.summary((layer) => aLogs.get(layer) as Float32Array, window);
    const owner: TraceOwner = { traceId: options.traceId, modelId: options.modelId, config, tokenizer: target.tokenizer };
    const result: TraceResult = {
      ...traceRowsOf(owner, [...ids], recorder.layers, window, summary, { k: K, ids: topIds, probs: topProbs }),
      A: aOf(recorder.layers, aLogs),
    };
    return { result, aLogs, ...(logits ? { logits } : {}) };
  } finally {
    logitsBuffer.destroy();
    topWords.destroy();
    session.destroy();
    recorder.destroy();
  }
}

/**
 * The trace file (app/analysis/export.ts) of a prompt trace, with its logits [T, V] when it kept
 * them (the CLI's `trace`). `prompt`: the text traced, or the ids.
 */
export function promptTraceFile(trace: PromptTrace, prompt: { text: string } | { ids: readonly number[] }): Uint8Array {
  const { result, logits } = trace;
  return encodeTrace({ ...result, ...(logits ? { logits: { vocab: logits.length / result.ids.length, data: logits } } : {}) }, prompt);
}

export interface LiveTrace {
  /**
   * How the rows are made: the session's steps summarised in the fused decode ('step-summaries'),
   * a trail session's traced prefill pieces ('trail'), or the session's steps traced with taps ('taps').
   */
  readonly mode: 'step-summaries' | 'trail' | 'taps';
  /** After each token: streams the new rows when LIVE_TRACE_MS have passed since the last time. */
  flushSoon(): void;
  /** Streams the last rows; the whole trace, or null when no row was traced. */
  finish(): Promise<StoredTrace | null>;
  /** Waits for the rows being streamed, frees the trail and the recorder (always call it). */
  stop(): Promise<void>;
}

/**
 * Traces every layer of `session` from its first token and streams the rows to `onRows`.
 * Detail 'all' (while TraceRecorder.bytesPerToken · capacity ≤ FULL_TRACE_MAX_BYTES): Δ, B, C of
 * every row are read back too (capacity for `capacity` tokens up front, so the buffers never grow
 * while rows are read). Detail 'windows' (longer): a LongTraceSink — summaries, state checkpoints
 * and the top next tokens only; the kept trace recomputes windows on demand.
 * Where the work goes:
 * - 'windows' on a GPU, where the model's fused decode can (Model.canSummarizeSteps): the session
 *   is traced in place, and each step computes its own summary row in the fused decode
 *   (app/kernels/step-summary.ts: one dispatch and one copy per step, no taps) and its top next
 *   tokens from its logits; the prompt is traced as a prefill.
 * - else on a GPU: the session runs untraced, and a trail (app/analysis/trace-trail.ts) follows it
 *   through the same tokens in traced prefill pieces at each streaming; the top next tokens of
 *   every row come from the trail's logits.
 * - on a CPU implementation of WebGPU the session's own steps are traced with taps (`trail`).
 * The taps' summaries are computed on the GPU (app/analysis/gpu-summary.ts) as the rows are
 * streamed, not replayed on the CPU.
 */
export async function startLiveTrace(
  ctx: GpuContext,
  target: TraceTarget,
  session: Session,
  capacity: number,
  options: TraceName & {
    onRows: (rows: TraceRows) => void;
    focusChannels?: number[];
    detail?: 'all' | 'windows' | 'auto';
    /** The least time between two streamings of rows (default LIVE_TRACE_MS). */
    intervalMs?: number;
    /** Detail 'all': summaries on the GPU (default, but not on a CPU implementation of WebGPU) or the CPU replay. */
    gpuSummaries?: boolean;
    /** Trace in a trail session (default, but not on a CPU implementation of WebGPU) or in `session`'s own steps. */
    trail?: boolean;
    /** Tokens per trail piece instead of trace-trail.ts trailPiece's (still at most the model's chunk, the sink's rows and the capacity): the bench's --trail-piece. */
    trailPiece?: number;
    /**
     * Detail 'windows': the generating session's steps compute their summaries in the fused decode
     * (LongTraceOptions.stepSummaries; default on a GPU where the model can), and no trail follows.
     */
    stepSummaries?: boolean;
  },
): Promise<LiveTrace> {
  const model = target.model;
  const config = model.config;
  const extra = extraTaps(config);
  const topNext = Math.min(TOP_NEXT, config.vocabSize);
  const fullBytes = TraceRecorder.bytesPerToken(config, model.traceableLayers.length, extra, topNext) * capacity;
  const detail = options.detail === 'all' || options.detail === 'windows' ? options.detail : fullBytes > FULL_TRACE_MAX_BYTES ? 'windows' : 'all';
  if (detail === 'all' && fullBytes > LIVE_TRACE_MAX_BYTES) {
    throw new Error(
      `A live trace of ${capacity} tokens with every row kept would take ${(fullBytes / 2 ** 30).toFixed(1)} GB of GPU memory (over ${LIVE_TRACE_MAX_BYTES / 2 ** 30} GB): keep windows, lower Max tokens or turn the live trace off.`,
    );
  }
  const owner: TraceOwner = { traceId: options.traceId, modelId: options.modelId, config, tokenizer: target.tokenizer };
  const focus = options.focusChannels?.length ? { focusChannels: options.focusChannels } : {};
  // On a GPU the trace follows `session` in a session of its own (app/analysis/trace-trail.ts):
  // the generation runs untraced, at full speed. On a CPU implementation of WebGPU the GPU work is
  // the cost, and the trail would do the forward twice: there `session` itself is traced.
  // Detail 'windows' where the fused decode can summarise its own steps: the session is traced in
  // place, each step one dispatch and one copy more (app/kernels/step-summary.ts), no trail.
  const stepSummaries = detail === 'windows' && options.trail !== true && (options.stepSummaries ?? !ctx.adapter.software) && model.canSummarizeSteps(model.traceableLayers);
  const trailing = (options.trail ?? (!ctx.adapter.software && !stepSummaries)) ? new Session(ctx, model) : null;
  const traced = trailing ?? session;
  // What differs between the two details: where rows go, how the summaries are fed, what is read back.
  let sink: TraceSink;
  let layers: number[];
  let summary: GpuSelectionSummary | null = null;
  let readRows: (from: number, to: number) => Promise<{ window: TraceWindow; topNext: TraceResult['topNext'] }>;
  let rowsSoFar: () => number;
  let summarize: () => void;
  let long: LongTraceSink | null = null;
  let recorder: TraceRecorder | null = null;
  if (detail === 'windows') {
    const plan = longTraceMemory(config, { tokens: capacity, chunk: model.analysisTokens, stateBytes: model.stateBytes, live: true, focus: options.focusChannels !== undefined && options.focusChannels.length > 0 });
    if (plan.gpuPeak > LIVE_TRACE_MAX_BYTES) {
      trailing?.destroy();
      throw new Error(
        `A live trace of ${capacity} tokens would take ${(plan.gpuPeak / 2 ** 30).toFixed(1)} GB of GPU memory (summaries ${(plan.summaries / 2 ** 30).toFixed(2)} GB, checkpoints ${(plan.checkpoints / 2 ** 30).toFixed(2)} GB; over ${LIVE_TRACE_MAX_BYTES / 2 ** 30} GB): lower Max tokens or turn the live trace off.`,
      );
    }
    // Room for the first rows; the sink grows (doubling) if the generation runs long.
    long = new LongTraceSink(ctx, target, traced, { capacity: Math.min(capacity, LIVE_TRACE_INITIAL_ROWS), every: plan.every, topNext, stepSummaries, ...focus });
    const l = long;
    sink = l;
    layers = l.layers;
    summary = l.summary;
    rowsSoFar = () => l.rows;
    summarize = () => l.flush();
    readRows = async (from, to) => ({
      window: { from, to, delta: layers.map(() => new Float32Array(0)), B: layers.map(() => new Float32Array(0)), C: layers.map(() => new Float32Array(0)) },
      topNext: await l.readTopNext(from, to),
    });
  } else {
    const r = new TraceRecorder(ctx, model, { capacity, extra, topNext });
    recorder = r;
    sink = r;
    layers = r.layers;
    // On a CPU implementation of WebGPU (SwiftShader) the summaries' kernels cost more than the
    // CPU replay of the rows that are read back anyway (measured: ~350 ms per call of one row at
    // shakespeare-byte, the live trace at 1.4 tokens/s against ~5): there the replay stays.
    const onGpu = options.gpuSummaries ?? !ctx.adapter.software;
    try {
      if (onGpu) {
        summary = new GpuSelectionSummary(ctx, config, layers, layers.map((l) => model.traceLayout(l) as TraceLayout), aLogBuffers(target, layers), {
          capacity,
          maxRows: model.analysisTokens,
          ...focus,
        });
      }
    } catch (error) {
      r.destroy();
      trailing?.destroy();
      throw error;
    }
    rowsSoFar = () => r.length;
    summarize = () => {
      const gpu = summary;
      if (!gpu) return;
      const taps = r.taps();
      const of = (list: (GPUBuffer | undefined)[] | undefined) => layers.map((l) => list?.[l] as GPUBuffer);
      const inputs = { delta: of(taps.delta), dbc: of(taps.dbc), ...(taps.x ? { x: of(taps.x) } : {}) };
      const encoder = ctx.device.createCommandEncoder({ label: 'LiveTrace.summary' });
      for (let row = gpu.length; row < r.length; ) {
        const rows = Math.min(model.analysisTokens, r.length - row);
        gpu.encode(encoder, inputs, row, rows);
        row += rows;
      }
      ctx.device.queue.submit([encoder.finish()]);
    };
    readRows = async (from, to) => {
      const window = await r.read(from, to);
      return { window, topNext: window.topNext ?? { k: 0, ids: new Int32Array(0), probs: new Float32Array(0) } };
    };
  }
  let trail: TraceTrail | null = null;
  const destroyAll = () => {
    if (trail) trail.destroy();
    else if (trailing) trailing.destroy();
    else session.trace(null);
    if (long) {
      long.destroyTracing();
    } else {
      recorder?.destroy();
      summary?.destroy();
    }
  };
  let aLogs: Map<number, Float32Array>;
  try {
    aLogs = await readALogs(ctx, target, layers);
  } catch (error) {
    destroyAll();
    long?.checkpoints.destroy();
    throw error;
  }
  const A = aOf(layers, aLogs);
  // Without GPU summaries ('all' on a CPU implementation): the CPU replay of the rows read back.
  const replay = summary ? null : new SelectionReplay(config, layers, (layer) => aLogs.get(layer) as Float32Array);
  const summariesOf = async (from: number, to: number, window: TraceWindow) => {
    if (summary) return summary.read(from, to);
    const sums = (replay as SelectionReplay).append(window);
    return options.focusChannels?.length ? { ...sums, focusScore: window.delta.map((d, i) => meanOverColumns(d, (model.traceLayout(layers[i] as number) as TraceLayout).deltaWidth, options.focusChannels as number[])) } : sums;
  };
  try {
    if (trailing) trail = new TraceTrail(ctx, trailing, sink, capacity, options.trailPiece);
    else session.trace(sink);
  } catch (error) {
    destroyAll();
    long?.checkpoints.destroy();
    throw error;
  }
  const follower = trail;
  const trace = new TraceRowsBuilder();
  let read = 0;
  let summarized = 0;
  let lastFlush = performance.now();
  let chain: Promise<void> = Promise.resolve();
  let failed: unknown = null;
  let kept = false;
  /**
   * The trail catches up with the tokens known (whole pieces; with `all`, every one), then the new
   * rows stream. Traced in place, rows of steps fed from the GPU run ahead of the ids known
   * (pipelined decode): they are summarized now and streamed with their ids at a later flush.
   */
  const flush = (all: boolean) => {
    if (failed) return;
    try {
      follower?.catchUp(session.tokens, all);
    } catch (error) {
      failed = error;
      return;
    }
    // The summaries' dispatches are encoded now, in the tokens' order on the queue; the reads wait.
    const to = Math.min(rowsSoFar(), traced.tokens.length);
    if (rowsSoFar() > summarized) {
      summarize();
      summarized = rowsSoFar();
    }
    chain = chain
      .then(async () => {
        if (to <= read || failed) return;
        const from = read;
        const { window, topNext: top } = await readRows(from, to);
        const sums = await summariesOf(from, to, window);
        read = to;
        const ids = traced.tokens.slice(from, to);
        const rows: TraceRows = {
          from,
          ...traceRowsOf(owner, ids, layers, window, sums, top),
          ...(from === 0 ? { A, ...(detail === 'windows' ? { detail, checkpointEvery: (long as LongTraceSink).every } : {}), ...(options.focusChannels?.length ? { focusChannels: [...options.focusChannels] } : {}) } : {}),
        };
        trace.append(rows);
        options.onRows(rows);
      })
      .catch((error: unknown) => {
        failed = error;
      });
  };
  return {
    mode: trailing ? 'trail' : stepSummaries ? 'step-summaries' : 'taps',
    flushSoon: () => {
      if (performance.now() - lastFlush < (options.intervalMs ?? LIVE_TRACE_MS)) return;
      lastFlush = performance.now();
      flush(false);
    },
    finish: async () => {
      flush(true);
      await chain;
      if (failed) throw failed;
      const result = trace.result();
      if (!result) return null;
      if (long) {
        kept = true;
        return windowsTrace(ctx, target, result, aLogs, long.checkpoints);
      }
      return { result, aLogs };
    },
    stop: async () => {
      await chain;
      destroyAll();
      if (long && !kept) long.checkpoints.destroy();
    },
  };
}

