/**
 * The one trace path, for the app's engine and the CLI:
 *
 * - `tracePrompt`: a prompt's prefill in a fresh session with a TraceRecorder on, chunk by chunk
 *   (the model's maxTokens per chunk; `onProgress` after each, `signal` checked between them),
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
import type { LanguageModel } from '../model/model.js';
import type { LoadedWeights } from '../model/loader.js';
import { Session } from '../model/session.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { SelectionReplay, TraceRecorder, type ExtraTap } from './recorder.js';
import { encodeTrace } from './export.js';
import { traceLayout } from '../arch/registry.js';
import { TOP_NEXT } from './distributions.js';
import { throwIfCancelled } from './cancel.js';
import { appendTraceRows, traceRowsOf, type TraceOwner } from './trace-rows.js';
import type { StoredTrace, TraceResult, TraceRows } from './types.js';

/** How often a generation with a live trace streams its new rows (ms). */
export const LIVE_TRACE_MS = 200;
/** The most GPU memory a live trace may take (it is allocated up front for prompt + max tokens). */
export const LIVE_TRACE_MAX_BYTES = 2 ** 30;

/** A model on the GPU to trace: the graph, its weights (A_log is read from them) and its tokenizer (for readable tokens). */
export interface TraceTarget {
  model: LanguageModel;
  weights: LoadedWeights;
  tokenizer: Tokenizer | null;
}

/** Names a trace: the id it is kept under and the model it is of. */
export interface TraceName {
  traceId: string;
  modelId: string;
}

/**
 * The taps beyond Δ, B and C a trace needs for its state norms: the scan's input x. Where the
 * layout has x in the rows it keeps anyway (Mamba-2's conv rows), none; else the x tap (Mamba-1).
 */
function extraTaps(config: LanguageModel['config']): ExtraTap[] {
  const layout = traceLayout(config);
  return layout.xOffset === undefined && layout.extraTaps ? ['x'] : [];
}

/** Each layer's A_log as loaded (Mamba-1 [Di, N], Mamba-2 [H]), read back from the weights. */
export async function readALogs(ctx: GpuContext, target: TraceTarget, layers: readonly number[]): Promise<Map<number, Float32Array>> {
  const out = new Map<number, Float32Array>();
  for (const layer of layers) {
    const layout = target.model.traceLayout(layer);
    if (!layout) throw new Error(`layer ${layer} has no selection to trace`);
    const name = `${target.model.prefixOf(layer)}mixer.${layout.aLogName}`;
    const buffer = target.weights.buffers.get(name);
    if (!buffer) throw new Error(`the weights have no ${name}`);
    const count = (target.weights.shapes.get(name) ?? []).reduce((a, b) => a * b, 1);
    out.set(layer, await readF32(ctx.device, buffer, count));
  }
  return out;
}

/** A = −exp(A_log) per layer, in the order of `layers`. */
const aOf = (layers: readonly number[], aLogs: Map<number, Float32Array>) => layers.map((layer) => Float32Array.from(aLogs.get(layer) as Float32Array, (v) => -Math.exp(v)));

export interface PromptTraceOptions extends TraceName {
  /** Layers to trace (default: all). */
  layers?: number[];
  /** Also read back every position's logits, [T, V] float32 (the CLI's trace file has them). */
  keepLogits?: boolean;
  /** After each chunk: tokens prefilled so far, of `total`. */
  onProgress?: (done: number, total: number) => void;
  /** Checked between chunks: once aborted, the trace stops with CancelledError (everything freed). */
  signal?: AbortSignal;
}

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
  const chunk = model.maxTokens;
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
  /** After each token: streams the new rows when LIVE_TRACE_MS have passed since the last time. */
  flushSoon(): void;
  /** Streams the last rows; the whole trace, or null when no row was traced. */
  finish(): Promise<StoredTrace | null>;
  /** Waits for the rows being streamed, stops tracing the session and frees the recorder (always call it). */
  stop(): Promise<void>;
}

/**
 * Traces every layer of `session` from its first token (capacity for `capacity` tokens, so the
 * buffers never grow — and are never replaced — while rows are read), and streams the rows to
 * `onRows`. The summaries continue from window to window (SelectionReplay). The top next tokens
 * are kept where the session has the logits (after a prefill's last token, after every step).
 */
export async function startLiveTrace(
  ctx: GpuContext,
  target: TraceTarget,
  session: Session,
  capacity: number,
  options: TraceName & { onRows: (rows: TraceRows) => void },
): Promise<LiveTrace> {
  const model = target.model;
  const config = model.config;
  const extra = extraTaps(config);
  const topNext = Math.min(TOP_NEXT, config.vocabSize);
  const bytes = TraceRecorder.bytesPerToken(config, config.nLayer, extra, topNext) * capacity;
  if (bytes > LIVE_TRACE_MAX_BYTES) {
    throw new Error(
      `A live trace of ${capacity} tokens would take ${(bytes / 2 ** 30).toFixed(1)} GB of GPU memory (over ${LIVE_TRACE_MAX_BYTES / 2 ** 30} GB): lower Max tokens or turn the live trace off.`,
    );
  }
  const recorder = new TraceRecorder(ctx, model, { capacity, extra, topNext });
  let aLogs: Map<number, Float32Array>;
  try {
    aLogs = await readALogs(ctx, target, recorder.layers);
  } catch (error) {
    recorder.destroy();
    throw error;
  }
  const replay = new SelectionReplay(config, recorder.layers, (layer) => aLogs.get(layer) as Float32Array);
  const A = aOf(recorder.layers, aLogs);
  const owner: TraceOwner = { traceId: options.traceId, modelId: options.modelId, config, tokenizer: target.tokenizer };
  session.trace(recorder);
  let trace: TraceResult | null = null;
  let read = 0;
  let lastFlush = performance.now();
  let chain: Promise<void> = Promise.resolve();
  let failed: unknown = null;
  const flush = () => {
    chain = chain
      .then(async () => {
        const to = recorder.length;
        if (to <= read || failed) return;
        const from = read;
        const window = await recorder.read(from, to);
        const summary = replay.append(window);
        read = to;
        const ids = session.tokens.slice(from, to);
        const rows: TraceRows = {
          from,
          ...traceRowsOf(owner, ids, recorder.layers, window, summary, window.topNext ?? { k: 0, ids: new Int32Array(0), probs: new Float32Array(0) }),
          ...(from === 0 ? { A } : {}),
        };
        trace = appendTraceRows(trace, rows);
        options.onRows(rows);
      })
      .catch((error: unknown) => {
        failed = error;
      });
  };
  return {
    flushSoon: () => {
      if (performance.now() - lastFlush < LIVE_TRACE_MS) return;
      lastFlush = performance.now();
      flush();
    },
    finish: async () => {
      flush();
      await chain;
      if (failed) throw failed;
      return trace ? { result: trace, aLogs } : null;
    },
    stop: async () => {
      await chain;
      session.trace(null);
      recorder.destroy();
    },
  };
}
