/**
 * Long traces (issue 18): a trace keeps every token's Δ, B and C only while that is small; past
 * FULL_TRACE_MAX_BYTES it keeps the per-token summaries (computed on the GPU in the forward pass)
 * and the recurrent state every `checkpointEvery` tokens, and windows of one layer are recomputed
 * on demand from the nearest checkpoint (`traceWindow`).
 */
import { readBuffer, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { traceLayout } from '../arch/registry.js';
import { submitDispatches } from '../kernels/dispatch.js';
import { topK, unpackTopK } from '../kernels/top-k.js';
import { configBlocks } from '../model/config.js';
import type { ModelTaps, TraceLayout } from '../model/mixer.js';
import type { LanguageModel } from '../model/model.js';
import { Session, type TraceSink } from '../model/session.js';
import { throwIfCancelled } from './cancel.js';
import { checkpointInterval, recomputeWindow, StateCheckpoints } from './checkpoints.js';
import { TOP_NEXT } from './distributions.js';
import { GpuSelectionSummary } from './gpu-summary.js';
import { hiddenAttentionRowLong } from './hidden-attention-long.js';
import { PARTIALS_MAX_BYTES } from '../kernels/trace-summary.js';
import { StepSummary } from '../kernels/step-summary.js';
import { TraceRecorder, type ExtraTap, type TraceWindow } from './recorder.js';
import { aLogBuffers, readALogs, type PromptTraceOptions, type TraceTarget } from './trace-target.js';
import { traceRowsOf, type TraceOwner } from './trace-rows.js';
import { trailBytes, trailPiece } from './trace-trail.js';
import type { StoredTrace, TraceResult } from './types.js';
import { checkWindow } from './trace-window.js';

export { checkWindow, FULL_TRACE_MAX_BYTES, TRACE_WINDOW_MAX, traceWindowOf } from './trace-window.js';

/** The most rows of the long trace's tap ring (all layers' taps of these many tokens are on the GPU at once). */
export const RING_MAX_ROWS = 512;
/** The most GPU memory of the tap ring: a large model's ring has fewer rows (mamba-2.8b: 64). */
export const RING_MAX_BYTES = 256 * 2 ** 20;

/**
 * Rows the long trace's tap ring holds: the traced prefill's chunks (the summaries are computed a
 * ring at a time). The model's chunk, or RING_MAX_ROWS where that divides it: a checkpoint (at a
 * multiple of the model's chunk) then falls on a ring's start, and a recompute's chunks start
 * where the traced ones did (Mamba-2's scan chunks too, for chunk sizes dividing the ring). Halved
 * (still dividing the chunk) while rows of `rowBytes` would take more than RING_MAX_BYTES; a
 * recompute then runs in longer chunks than the traced prefill did, equal to rounding.
 */
export function ringRowsOf(maxTokens: number, rowBytes = 0): number {
  let rows = maxTokens > RING_MAX_ROWS && maxTokens % RING_MAX_ROWS === 0 ? RING_MAX_ROWS : maxTokens;
  while (rows * rowBytes > RING_MAX_BYTES && rows % 2 === 0) rows /= 2;
  return rows;
}

/** Bytes of one ring row: every traceable layer's taps of one token. */
function ringRowBytes(config: LanguageModel['config'], layers: number): number {
  const layout = traceLayout(config);
  const extra: ExtraTap[] = layout.xOffset === undefined && layout.extraTaps ? ['x'] : [];
  return TraceRecorder.bytesPerToken(config, layers, extra);
}
const ringRows = (model: LanguageModel) => ringRowsOf(model.analysisTokens, ringRowBytes(model.config, model.traceableLayers.length));

/** The GPU memory checkpoints of a long trace may take by default. */
export const CHECKPOINT_BUDGET_BYTES = 512 * 2 ** 20;

export interface LongTraceOptions {
  /** Rows the trace will hold (it grows past it, by doubling, if needed). */
  capacity: number;
  /** Layers to trace (default: all). */
  layers?: number[];
  /** Top next tokens kept per row where the session has the logits (0: none). */
  topNext?: number;
  /** Columns whose mean Δ the summaries keep (TraceResult.focusScore). */
  focusChannels?: number[];
  /** Tokens between checkpoints (default: checkpointInterval of the capacity and CHECKPOINT_BUDGET_BYTES). */
  every?: number;
  /**
   * One-token steps summarised by the fused decode itself (TraceSink.stepSummary) where the model
   * can (Model.canSummarizeSteps), instead of taps and the replay. Default: on a GPU, not on a CPU
   * implementation of WebGPU (there the fused decode is the slow path: Session.decodePlan).
   */
  stepSummaries?: boolean;
  /** Step summaries: steps whose logits wait for one top-k dispatch (default: a trail's piece, trace-trail.ts trailPiece). */
  stepLogitsRows?: number;
}

/**
 * The TraceSink of a long trace. Δ, B, C (and Mamba-1's x) go to a ring of one prefill chunk of
 * rows; whenever the ring is full (and when `flush` is called) the GPU summaries of its rows are
 * encoded and the ring starts over; whenever the session has run a multiple of `every` tokens
 * the whole recurrent state is checkpointed. Both happen in `reserve`, which the Session calls
 * before every chunk and every step, so the order on the GPU queue is the tokens' order. The top
 * next tokens (where the session has logits) go to a buffer of every row.
 */
export class LongTraceSink implements TraceSink {
  readonly recorder: TraceRecorder;
  readonly summary: GpuSelectionSummary;
  readonly checkpoints: StateCheckpoints;
  readonly topNextK: number;
  readonly layers: number[];
  private top: GPUBuffer | null = null;
  private topRows = 0;
  /** The absolute row of the ring's row 0. */
  private base = 0;
  private captured = 0;
  /** Step summaries (stepSummary): whether the sink takes them, their slots once the first step came, its taps. */
  readonly stepSummaries: boolean;
  private readonly stepLogitsRows: number;
  private steps: { summary: StepSummary; taps: ModelTaps } | null = null;
  /** Rows summarised by steps since the ring's last rows: the replay then goes on from the session's state. */
  private stepsSinceRing = false;
  /** Where the step being encoded copies its summary row (stepSummary sets it, the step's plan reads it). */
  private stepRow: { buffer: GPUBuffer; offset: number } | null = null;
  /**
   * Step summaries' top next tokens: each step copies its logits into a row of `logits` (stepLogitsRows of them), and the
   * pending rows (absolute rows first .. first + pending) get their top-k in one dispatch of that
   * many workgroups when the buffer is full or at flush. (A top-k of one row per step is one
   * workgroup scanning the vocabulary: measured on the H200, it cost ~0.8 ms a step.)
   */
  private stepTop: { logits: GPUBuffer; words: GPUBuffer; first: number; pending: number } | null = null;

  private readonly model: LanguageModel;

  constructor(
    private readonly ctx: GpuContext,
    target: TraceTarget,
    private readonly session: Session,
    options: LongTraceOptions,
  ) {
    const { model } = target;
    this.model = model;
    const layout = traceLayout(model.config);
    const extra: ExtraTap[] = layout.xOffset === undefined && layout.extraTaps ? ['x'] : [];
    this.topNextK = options.topNext ?? 0;
    const capacity = Math.max(1, options.capacity);
    this.recorder = new TraceRecorder(ctx, model, { ...(options.layers ? { layers: options.layers } : {}), capacity: ringRows(model), extra });
    this.layers = this.recorder.layers;
    let summary: GpuSelectionSummary | null = null;
    try {
      const aLogs = aLogBuffers(target, this.layers);
      const layouts = this.layers.map((layer) => model.traceLayout(layer) as TraceLayout);
      summary = new GpuSelectionSummary(ctx, model.config, this.layers, layouts, aLogs, {
        capacity,
        maxRows: ringRows(model),
        ...(options.focusChannels?.length ? { focusChannels: options.focusChannels } : {}),
      });
      this.summary = summary;
      this.checkpoints = new StateCheckpoints(ctx, model, options.every ?? checkpointInterval(model, capacity, CHECKPOINT_BUDGET_BYTES));
      this.stepSummaries = (options.stepSummaries ?? !ctx.adapter.software) && model.canSummarizeSteps(this.layers);
      // As many rows as a trail's piece (what longTraceMemory plans for the live trace's logits).
      this.stepLogitsRows = options.stepLogitsRows ?? trailPiece(model.analysisTokens, Infinity, model.config.vocabSize, ringRows(model));
      if (!(Number.isInteger(this.stepLogitsRows) && this.stepLogitsRows >= 1)) throw new RangeError(`LongTraceSink: stepLogitsRows must be a positive integer, got ${this.stepLogitsRows}`);
      if (this.topNextK > 0) this.growTop(capacity);
    } catch (error) {
      this.recorder.destroy();
      summary?.destroy();
      throw error;
    }
  }

  /** A traced prefill's chunks (Session.prefill): one ring. */
  get maxRows(): number {
    return ringRows(this.model);
  }

  /** Tokens between two checkpoints. */
  get every(): number {
    return this.checkpoints.every;
  }

  /** Rows in the ring (the Session's row counter). */
  get length(): number {
    return this.recorder.length;
  }
  set length(rows: number) {
    this.recorder.length = rows;
  }
  get generation(): number {
    return this.recorder.generation;
  }
  /** Rows traced so far. */
  get rows(): number {
    return this.base + this.recorder.length;
  }

  private growTop(rows: number): void {
    const k = this.topNextK;
    const next = storageBuffer(this.ctx.device, 'LongTrace.topNext', rows * 2 * k * 4);
    this.ctx.device.queue.writeBuffer(next, 0, new Uint32Array(rows * 2 * k).fill(0xffffffff));
    if (this.top) {
      const encoder = this.ctx.device.createCommandEncoder({ label: 'LongTrace.topNext.grow' });
      encoder.copyBufferToBuffer(this.top, 0, next, 0, this.topRows * 2 * k * 4);
      this.ctx.device.queue.submit([encoder.finish()]);
      this.top.destroy();
    }
    this.top = next;
    this.topRows = rows;
  }

  reserve(rows: number): void {
    const ring = ringRows(this.model);
    if (rows > ring) throw new RangeError(`LongTraceSink: ${rows} rows at once (at most one chunk, ${ring})`);
    if (this.recorder.length + rows > ring) this.flush();
    this.flushTopNext();
    if (this.stepsSinceRing) {
      // Steps summarised themselves since the ring's last rows: the replay of the next ones starts
      // from the sequence's own state (each traced layer's SSM state, its last state buffer).
      const encoder = this.ctx.device.createCommandEncoder({ label: 'LongTrace.adoptStates' });
      this.summary.adoptStates(encoder, this.layers.map((l) => this.session.layerState(l).at(-1) as GPUBuffer));
      this.ctx.device.queue.submit([encoder.finish()]);
      this.stepsSinceRing = false;
    }
    this.makeRoom(rows);
  }

  /** Checkpoints the state where due, and makes room for `rows` more summary and top-next rows. */
  private makeRoom(rows: number): void {
    const done = this.rows;
    if (done > this.captured && done % this.every === 0) {
      this.checkpoints.capture(this.session);
      this.captured = done;
    }
    this.summary.reserve(done + rows - this.summary.length);
    if (this.top && done + rows > this.topRows) {
      let next = this.topRows;
      while (next < done + rows) next *= 2;
      this.growTop(next);
    }
  }

  /**
   * A one-token step as a row the fused decode summarises itself (app/kernels/step-summary.ts):
   * the ring's rows are summarised first (queue order), the state checkpointed where due, the row
   * taken. Null when this sink traces steps with taps (stepSummaries off).
   */
  stepSummary(): { taps: ModelTaps; logitsTo: { buffer: GPUBuffer; offset: number } | null } | null {
    if (!this.stepSummaries) return null;
    this.flushRing();
    this.makeRoom(1);
    let logitsTo: { buffer: GPUBuffer; offset: number } | null = null;
    if (this.top) {
      const V = this.model.config.vocabSize;
      if (!this.stepTop) {
        const rows = this.stepLogitsRows;
        const { device } = this.ctx;
        this.stepTop = { logits: storageBuffer(device, 'LongTrace.stepLogits', rows * V * 4), words: storageBuffer(device, 'LongTrace.stepTopK', rows * 2 * this.topNextK * 4), first: 0, pending: 0 };
      }
      const top = this.stepTop;
      if (top.pending === this.stepLogitsRows) this.flushTopNext();
      if (top.pending === 0) top.first = this.rows;
      logitsTo = { buffer: top.logits, offset: top.pending++ * V * 4 };
    }
    if (!this.steps) {
      const config = this.model.config;
      const index: (number | undefined)[] = [];
      this.layers.forEach((l, i) => (index[l] = i));
      const layers = this.layers.map((l) => {
        const layout = this.model.traceLayout(l) as TraceLayout;
        return { columns: layout.deltaWidth, aStates: layout.aStates, squares: config.dInner };
      });
      const summary = new StepSummary(this.ctx, layers, this.summary.focusWeights, 'LongTrace.stepSummary');
      this.steps = { summary, taps: { row0: 0, stepSummary: { summary, index, target: () => this.stepRow as { buffer: GPUBuffer; offset: number } } } };
    }
    this.stepRow = this.summary.appendStepRow();
    this.base += 1;
    this.stepsSinceRing = true;
    return { taps: this.steps.taps, logitsTo };
  }

  /** Encodes the top next tokens of the steps' pending logits rows into their rows of the top buffer (its own submit). */
  private flushTopNext(): void {
    const top = this.stepTop;
    if (!top || top.pending === 0 || !this.top) return;
    const { device } = this.ctx;
    const k = this.topNextK;
    const select = topK(this.ctx, { rows: top.pending, vocab: this.model.config.vocabSize, k }, { logits: top.logits, out: top.words }, 'LongTrace.stepTopK');
    const encoder = device.createCommandEncoder({ label: 'LongTrace.stepTopK' });
    const pass = encoder.beginComputePass({ label: 'LongTrace.stepTopK.pass' });
    select.encode(pass);
    pass.end();
    encoder.copyBufferToBuffer(top.words, 0, this.top, top.first * 2 * k * 4, top.pending * 2 * k * 4);
    device.queue.submit([encoder.finish()]);
    select.destroy();
    top.pending = 0;
  }

  taps(rowOf?: () => number): ModelTaps {
    return this.recorder.taps(rowOf);
  }

  topNextSlot(row: number): { buffer: GPUBuffer; offset: number } | null {
    return this.top ? { buffer: this.top, offset: (this.base + row) * 2 * this.topNextK * 4 } : null;
  }

  /** Encodes the summaries of the ring's rows and empties it, and the top next tokens of the steps' pending logits. */
  flush(): void {
    this.flushTopNext();
    this.flushRing();
  }

  /** Encodes the summaries of the ring's rows and empties it. */
  private flushRing(): void {
    const rows = this.recorder.length;
    if (rows === 0) return;
    const encoder = this.ctx.device.createCommandEncoder({ label: 'LongTrace.summary' });
    const taps = this.recorder.taps();
    const of = (list: (GPUBuffer | undefined)[] | undefined) => this.layers.map((l) => list?.[l] as GPUBuffer);
    this.summary.encode(encoder, { delta: of(taps.delta), dbc: of(taps.dbc), ...(taps.x ? { x: of(taps.x) } : {}) }, 0, rows);
    this.ctx.device.queue.submit([encoder.finish()]);
    this.base += rows;
    this.recorder.length = 0;
  }

  /** The top next tokens of rows [from, to). */
  async readTopNext(from: number, to: number): Promise<TraceResult['topNext']> {
    const k = this.topNextK;
    if (!this.top || k === 0 || to <= from) return { k, ids: new Int32Array(0), probs: new Float32Array(0) };
    const words = new Uint32Array(await readBuffer(this.ctx.device, this.top, (to - from) * 2 * k * 4, from * 2 * k * 4));
    return { k, ...unpackTopK(words, to - from, k) };
  }

  /** GPU bytes held: the ring, the summaries, the checkpoints, the top next tokens, the step summaries' slots. */
  get bytes(): number {
    const stepTop = this.stepTop ? this.stepTop.logits.size + this.stepTop.words.size : 0;
    return this.recorder.bytes + this.summary.bytes + this.checkpoints.bytes + (this.top?.size ?? 0) + (this.steps?.summary.bytes ?? 0) + stepTop;
  }

  /** Frees what only tracing needs (the ring, the summaries' buffers, the top next tokens); the checkpoints stay. */
  destroyTracing(): void {
    this.recorder.destroy();
    this.summary.destroy();
    this.steps?.summary.destroy();
    this.steps = null;
    this.stepTop?.logits.destroy();
    this.stepTop?.words.destroy();
    this.stepTop = null;
    this.top?.destroy();
    this.top = null;
  }
}

const emptyWindow = (layers: readonly number[], from: number, to: number): TraceWindow => ({
  from,
  to,
  delta: layers.map(() => new Float32Array(0)),
  B: layers.map(() => new Float32Array(0)),
  C: layers.map(() => new Float32Array(0)),
});

/** What a 'windows' trace keeps beside its result: the checkpoints, and how to recompute and free them. */
export function windowsTrace(
  ctx: GpuContext,
  target: TraceTarget,
  result: TraceResult,
  aLogs: Map<number, Float32Array>,
  checkpoints: StateCheckpoints,
): StoredTrace {
  return {
    result,
    aLogs,
    gpuBytes: checkpoints.bytes,
    recompute: (window, signal) => {
      checkWindow({ result, aLogs }, window);
      return recomputeWindow(ctx, target, result.ids, checkpoints, result.traceId, window.layer, window.from, window.to, signal);
    },
    attentionRow: (options, work) => hiddenAttentionRowLong(ctx, target, result.ids, checkpoints, options, { ...work, traceId: result.traceId }),
    restore: async (token) => {
      const at = checkpoints.before(token);
      return { session: await checkpoints.restore(at), at };
    },
    release: () => checkpoints.destroy(),
  };
}

/**
 * A prompt's trace with detail 'windows': the prefill chunk by chunk in a fresh session with a
 * LongTraceSink (GPU summaries, checkpoints), every position's top next tokens (as tracePrompt),
 * nothing of Δ, B, C read back. The result's summaries cover every token.
 */
export async function traceLongPrompt(
  ctx: GpuContext,
  target: TraceTarget,
  ids: readonly number[],
  options: PromptTraceOptions & { focusChannels?: number[]; every?: number; onSink?: (sink: LongTraceSink) => void },
): Promise<StoredTrace> {
  if (ids.length === 0) throw new Error('The prompt is empty.');
  throwIfCancelled(options.signal);
  const { model } = target;
  const config = model.config;
  const V = config.vocabSize;
  const K = Math.min(TOP_NEXT, V);
  const T = ids.length;
  const session = new Session(ctx, model);
  let sink: LongTraceSink | null = null;
  let kept = false;
  // A ring at a time: the logits of one ring's rows, not of a whole chunk, are on the GPU.
  const chunk = ringRows(model);
  const rows = Math.min(chunk, T);
  const logitsBuffer = storageBuffer(ctx.device, 'LongTrace.logits', rows * V * 4);
  const topWords = storageBuffer(ctx.device, 'LongTrace.topK', rows * 2 * K * 4);
  try {
    sink = new LongTraceSink(ctx, target, session, {
      capacity: T,
      ...(options.layers ? { layers: options.layers } : {}),
      ...(options.focusChannels ? { focusChannels: options.focusChannels } : {}),
      ...(options.every ? { every: options.every } : {}),
    });
    options.onSink?.(sink);
    const aLogs = await readALogs(ctx, target, sink.layers);
    session.trace(sink);
    const topIds = new Int32Array(T * K);
    const topProbs = new Float32Array(T * K);
    const select = topK(ctx, { rows, vocab: V, k: K }, { logits: logitsBuffer, out: topWords });
    try {
      for (let start = 0; start < T; start += chunk) {
        const part = ids.slice(start, start + chunk);
        session.prefill(part, { allLogits: logitsBuffer });
        // The top-k dispatch is built for full chunks; a last, shorter one selects among its rows only.
        const partSelect = part.length === rows ? select : topK(ctx, { rows: part.length, vocab: V, k: K }, { logits: logitsBuffer, out: topWords });
        try {
          submitDispatches(ctx.device, 'LongTrace.topK', [partSelect]);
          const top = unpackTopK(new Uint32Array(await readBuffer(ctx.device, topWords, part.length * 2 * K * 4)), part.length, K);
          topIds.set(top.ids, start * K);
          topProbs.set(top.probs, start * K);
        } finally {
          if (partSelect !== select) partSelect.destroy();
        }
        throwIfCancelled(options.signal);
        options.onProgress?.(start + part.length, T);
      }
    } finally {
      select.destroy();
    }
    sink.flush();
    const summary = await sink.summary.read(0, T);
    const owner: TraceOwner = { traceId: options.traceId, modelId: options.modelId, config, tokenizer: target.tokenizer };
    const result: TraceResult = {
      ...traceRowsOf(owner, [...ids], sink.layers, emptyWindow(sink.layers, 0, T), summary, { k: K, ids: topIds, probs: topProbs }),
      A: sink.layers.map((layer) => Float32Array.from(aLogs.get(layer) as Float32Array, (v) => -Math.exp(v))),
      detail: 'windows',
      checkpointEvery: sink.every,
      ...(options.focusChannels?.length ? { focusChannels: [...options.focusChannels] } : {}),
    };
    const stored = windowsTrace(ctx, target, result, aLogs, sink.checkpoints);
    kept = true;
    return stored;
  } finally {
    logitsBuffer.destroy();
    topWords.destroy();
    session.destroy();
    sink?.destroyTracing();
    if (!kept) sink?.checkpoints.destroy();
  }
}

/** Bytes of a full trace's Δ, B, C (and taps) of `layers` layers over `tokens` tokens (what 'all' keeps on the GPU and reads back). */
export function fullTraceBytes(config: LanguageModel['config'], layers: number, tokens: number): number {
  const layout = traceLayout(config);
  const extra: ExtraTap[] = layout.xOffset === undefined && layout.extraTaps ? ['x'] : [];
  return TraceRecorder.bytesPerToken(config, layers, extra) * tokens;
}

/** Focus columns must be distinct whole numbers below the Δ width. */
export function checkFocusChannels(columns: readonly number[], width: number): void {
  for (const c of columns) if (!(Number.isInteger(c) && c >= 0 && c < width)) throw new RangeError(`Focus channel ${c} is not a Δ column (0..${width - 1}).`);
  if (new Set(columns).size !== columns.length) throw new RangeError('Focus channels repeat.');
}

/** The mean of `columns` of each row of a [T, width] matrix, [T] (the CPU form of the GPU focus score). */
export function meanOverColumns(matrix: Float32Array, width: number, columns: readonly number[]): Float32Array {
  const T = matrix.length / width;
  const out = new Float32Array(T);
  if (columns.length === 0) return out;
  for (let t = 0; t < T; t++) {
    let sum = 0;
    for (const c of columns) sum += matrix[t * width + c] as number;
    out[t] = sum / columns.length;
  }
  return out;
}

/** What a long trace takes (bytes): planned from the shapes, before anything is allocated. */
export interface LongTraceMemory {
  tokens: number;
  /** The tap ring (Δ, x_proj rows, Mamba-1's x) of every traced layer. */
  ring: number;
  /** The GPU summaries' rows, replayed states and focus weights, and at most their kernel's partials and parameters. */
  summaries: number;
  /** The state checkpoints, one every `every` tokens (kept with the trace). */
  checkpoints: number;
  every: number;
  /** A prompt trace's logits and top-k words of one ring (a live trace's top next tokens of every row, and its trail's session and piece logits, instead). */
  logits: number;
  /** Everything at once, while tracing; and what stays on the GPU with the kept trace. */
  gpuPeak: number;
  gpuKept: number;
  /** The kept trace's typed arrays in the JS heap (storedTraceBytes): summaries, top next tokens, A, A_log. */
  heap: number;
}

/**
 * The memory of a prompt's long trace of `tokens` tokens (traceLongPrompt), or with `live` of a
 * generation's (startLiveTrace, detail 'windows'), for a model of `config` built with prefill
 * chunks of `chunk` tokens (the model's analysisTokens) and a state of `stateBytes`. An upper bound where the summaries' kernel
 * sizes its partials on the device (at most PARTIALS_MAX_BYTES); exact elsewhere.
 */
export function longTraceMemory(
  config: LanguageModel['config'],
  options: { tokens: number; chunk: number; stateBytes: number; layers?: number; focus?: boolean; live?: boolean; budget?: number; every?: number },
): LongTraceMemory {
  const T = Math.max(1, Math.floor(options.tokens));
  const L = options.layers ?? configBlocks(config).filter((b) => b.kind === 'ssm').length;
  const layout = traceLayout(config);
  const extra: ExtraTap[] = layout.xOffset === undefined && layout.extraTaps ? ['x'] : [];
  const R = ringRowsOf(options.chunk, ringRowBytes(config, L));
  const K = Math.min(TOP_NEXT, config.vocabSize);
  const ring = TraceRecorder.bytesPerToken(config, L, extra) * R;
  const words = (bytes: number) => Math.max(4, Math.ceil(bytes / 4) * 4);
  const summaries = T * L * 16 + L * words(config.dInner * config.dState * 4) + words(layout.deltaWidth * 4) + PARTIALS_MAX_BYTES + L * 256 + 4096;
  const every = options.every ?? checkpointInterval({ analysisTokens: options.chunk, stateBytes: options.stateBytes }, T, options.budget ?? CHECKPOINT_BUDGET_BYTES);
  const checkpoints = (Math.ceil(T / every) - 1) * options.stateBytes;
  // Live: every row's top next tokens, and the trail (trace-trail.ts): its session's state and
  // logits, one piece's logits and top-k words. (With step summaries instead: as many rows of the
  // steps' logits and top-k words, and the layers' slots, smaller than a session's state.)
  const logits = options.live
    ? words(T * 2 * K * 4) + options.stateBytes + words(config.vocabSize * 4) + trailBytes(config.vocabSize, trailPiece(options.chunk, T, config.vocabSize, R), K)
    : words(Math.min(R, T) * config.vocabSize * 4) + words(Math.min(R, T) * 2 * K * 4);
  const perToken = L * (3 + (options.focus ? 1 : 0)) * 4 + K * 8;
  const heap = T * perToken + 2 * L * layout.deltaWidth * layout.aStates * 4;
  return { tokens: T, ring, summaries, checkpoints, every, logits, gpuPeak: ring + summaries + checkpoints + logits, gpuKept: checkpoints, heap };
}
