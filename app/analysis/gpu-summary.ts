/**
 * Per-token selection summaries computed on the GPU (issue 18): for every traced layer ‖Δ_t‖, the
 * mean write gate 1 − exp(Δ·A), ‖state_t‖ (the layer's recurrent state replayed from the traced Δ,
 * x and B in a GPU buffer carried from call to call) and, with focus columns, the mean Δ over them.
 * The same numbers as SelectionReplay / mamba2StateNorms (recorder.ts, float64 on the CPU, kept as
 * the reference), in fp32, without reading the trace back: 16 bytes per token and layer.
 *
 * Use: `reserve(rows)` before encoding rows (its copy is its own submit, like
 * TraceRecorder.reserve), then `encode(encoder, recorder.tapBuffers(), srcRow, rows)` after the
 * forward pass that filled those rows (same encoder or a later one), and `read()` once submitted.
 * Kernel: app/kernels/trace-summary.ts (shaders/trace_summary.wgsl).
 */
import { readBuffer, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { formatBytes, GpuError } from '../gpu/errors.js';
import { TraceSummaryKernel, type TraceSummaryLayerBuffers, type TraceSummaryLayerShape, type TraceSummaryTuning } from '../kernels/trace-summary.js';
import type { MambaConfig } from '../model/config.js';
import type { TraceLayout } from '../model/mixer.js';
import type { SelectionSummary } from './recorder.js';

const OP = 'GpuSelectionSummary';
/** Bytes per summary row and layer: deltaNorm, writeGate, stateNorm, focusScore (fp32). */
const ROW_BYTES = 16;

/** Per traced layer, as TraceRecorder.tapBuffers() gives them. */
export interface SummaryInputs {
  /** Δ rows [*, deltaWidth]. */
  delta: GPUBuffer[];
  /** The dbc tap's rows [*, rowWidth], B (and Mamba-2's x) at the TraceLayout offsets. */
  dbc: GPUBuffer[];
  /** Mamba-1's x tap [*, dInner]: with it the state is replayed (stateNorm); Mamba-2 reads x from dbc. */
  x?: GPUBuffer[];
}

export interface GpuSelectionSummaryOptions {
  /** Summary rows to allocate at first (grows with reserve). */
  capacity: number;
  /** The most rows one encode() summarises. */
  maxRows: number;
  /** Δ columns (Mamba-1 channels, Mamba-2 heads) whose mean Δ is kept per token (focusScore); none when absent or empty. */
  focusChannels?: number[];
  /** For tests: the kernel's workgroups per layer and partials budget (app/kernels/trace-summary.ts). */
  tuning?: TraceSummaryTuning;
}

export type GpuSummaryRows = SelectionSummary & { focusScore?: Float32Array[] };

export class GpuSelectionSummary {
  /** Rows summarised so far. */
  length = 0;
  private kernel: TraceSummaryKernel | null = null;
  private capacity: number;
  private out: GPUBuffer;
  private readonly states: GPUBuffer[];
  private readonly aLogs: GPUBuffer[];
  private readonly focus: GPUBuffer;
  private readonly focusChannels: number[];
  private readonly maxRows: number;
  private readonly tuning: TraceSummaryTuning;
  /** Fixed by the first encode(): whether Mamba-1 layers replay their state (x given). */
  private replayMamba1: boolean | null = null;
  /** Whether rows came from decode steps' own summaries (appendStepRow): they carry ‖state‖. */
  private stepRows = false;
  private allocations: { capacity: number; bytes: number; outcome: Promise<GPUError | null> }[] = [];

  constructor(
    private readonly ctx: GpuContext,
    private readonly config: MambaConfig,
    private readonly layers: number[],
    private readonly layouts: TraceLayout[],
    aLogs: GPUBuffer[],
    options: GpuSelectionSummaryOptions,
  ) {
    const { device } = ctx;
    if (layers.length === 0) throw new RangeError(`${OP}: no layers to summarise`);
    if (layouts.length !== layers.length || aLogs.length !== layers.length) {
      throw new RangeError(`${OP}: ${layers.length} layers but ${layouts.length} layouts and ${aLogs.length} A_log buffers`);
    }
    if (!(Number.isInteger(options.maxRows) && options.maxRows >= 1)) throw new RangeError(`${OP}: maxRows must be a positive integer, got ${options.maxRows}`);
    if (!(Number.isInteger(options.capacity) && options.capacity >= 0)) throw new RangeError(`${OP}: capacity must be an integer ≥ 0, got ${options.capacity}`);
    layouts.forEach((layout, i) => {
      this.shape(i, false); // checks the layout against the config
      const need = layout.deltaWidth * layout.aStates * 4;
      const aLog = aLogs[i] as GPUBuffer;
      if (aLog.size < need) throw new RangeError(`${OP}: layer ${layers[i]}'s A_log (${aLog.label}) holds ${aLog.size} bytes, needs ${need} ([${layout.deltaWidth}, ${layout.aStates}] fp32)`);
    });
    const width = Math.min(...layouts.map((l) => l.deltaWidth));
    const focus = options.focusChannels ?? [];
    const seen = new Set<number>();
    for (const c of focus) {
      if (!Number.isInteger(c) || c < 0 || c >= width) {
        throw new RangeError(`${OP}: focus ${layouts[0]?.deltaUnit ?? 'channel'} ${c} is not one of 0..${width - 1}`);
      }
      if (seen.has(c)) throw new RangeError(`${OP}: focus ${layouts[0]?.deltaUnit ?? 'channel'} ${c} is listed twice`);
      seen.add(c);
    }
    this.focusChannels = [...focus];
    this.maxRows = options.maxRows;
    this.tuning = options.tuning ?? {};
    this.aLogs = [...aLogs];

    const weights = new Float32Array(Math.max(...layouts.map((l) => l.deltaWidth)));
    for (const c of focus) weights[c] = 1 / focus.length;
    this.focus = storageBuffer(device, `${OP}.focus`, weights.byteLength);
    device.queue.writeBuffer(this.focus, 0, weights);
    this.capacity = Math.max(1, options.capacity);
    device.pushErrorScope('out-of-memory');
    // New buffers are zeroed: every layer's state starts at zero.
    this.states = layers.map((l) => storageBuffer(device, `${OP}.L${l}.state`, config.dInner * config.dState * 4));
    this.out = storageBuffer(device, `${OP}.rows`, this.capacity * layers.length * ROW_BYTES);
    this.allocations.push({ capacity: this.capacity, bytes: this.bytes, outcome: device.popErrorScope() });
  }

  /** The op, once the first encode() made it: its grids, batches and dispatches per encode. */
  get op(): TraceSummaryKernel | null {
    return this.kernel;
  }

  /** Traced layer i's shape for the kernel. */
  private shape(i: number, replayMamba1: boolean): TraceSummaryLayerShape {
    const layout = this.layouts[i] as TraceLayout;
    const { dInner, dState } = this.config;
    const U = layout.deltaWidth;
    if (dInner % U !== 0) throw new RangeError(`${OP}: layer ${this.layers[i]}: d_inner ${dInner} does not split into ${U} Δ columns`);
    if (layout.bcWidth !== layout.nGroups * dState) throw new RangeError(`${OP}: layer ${this.layers[i]}: B holds ${layout.bcWidth} floats, not nGroups·N = ${layout.nGroups * dState}`);
    const inDbc = layout.xOffset !== undefined;
    return {
      columns: U,
      perColumn: dInner / U,
      dState,
      aStates: layout.aStates,
      groups: layout.nGroups,
      rowWidth: layout.rowWidth,
      bOffset: layout.bOffset,
      xStride: inDbc ? layout.rowWidth : dInner,
      xOffset: layout.xOffset ?? 0,
      hasX: inDbc || replayMamba1,
    };
  }

  /** Room for `rows` more summary rows after the current ones; grows (copying on the GPU, its own submit) when needed. */
  reserve(rows: number): void {
    const needed = this.length + rows;
    if (needed <= this.capacity) return;
    let capacity = this.capacity;
    while (capacity < needed) capacity *= 2;
    const { device } = this.ctx;
    device.pushErrorScope('out-of-memory');
    const next = storageBuffer(device, `${OP}.rows`, capacity * this.layers.length * ROW_BYTES);
    if (this.length > 0) {
      const encoder = device.createCommandEncoder({ label: `${OP}.grow` });
      encoder.copyBufferToBuffer(this.out, 0, next, 0, this.length * this.layers.length * ROW_BYTES);
      device.queue.submit([encoder.finish()]);
    }
    this.out.destroy();
    this.out = next;
    this.capacity = capacity;
    this.allocations.push({ capacity, bytes: this.bytes, outcome: device.popErrorScope() });
  }

  /**
   * Encodes the summaries of input rows [srcRow, srcRow + rows) (rows ≤ maxRows) as summary rows
   * [length, length + rows); carries each layer's replayed state to the next call. The rows must
   * fit (reserve first). Mamba-1 replays its state only with `inputs.x`, decided by the first call.
   * The call's positions go in a uniform slot written now (queue.writeBuffer): up to CALL_SLOTS
   * (64) calls may be encoded before their encoder is submitted. Costs one compute pass of
   * layers + batches dispatches (`op.dispatches`; layers + 1 for the models the studio runs).
   */
  encode(encoder: GPUCommandEncoder, inputs: SummaryInputs, srcRow: number, rows: number): void {
    const L = this.layers.length;
    if (!(Number.isInteger(rows) && rows >= 0 && rows <= this.maxRows)) throw new RangeError(`${OP}: rows must be an integer in 0..${this.maxRows}, got ${rows}`);
    if (!(Number.isInteger(srcRow) && srcRow >= 0)) throw new RangeError(`${OP}: srcRow must be an integer ≥ 0, got ${srcRow}`);
    if (inputs.delta.length !== L || inputs.dbc.length !== L || (inputs.x && inputs.x.length !== L)) {
      throw new RangeError(`${OP}: the inputs must give each of the ${L} layers' buffers (delta ${inputs.delta.length}, dbc ${inputs.dbc.length}${inputs.x ? `, x ${inputs.x.length}` : ''})`);
    }
    if (this.length + rows > this.capacity) throw new RangeError(`${OP}: rows ${this.length}..${this.length + rows} pass the capacity ${this.capacity}: reserve(${rows}) first`);
    const replay = inputs.x !== undefined;
    if (this.replayMamba1 === null) {
      this.replayMamba1 = replay;
      this.kernel = new TraceSummaryKernel(this.ctx, this.layers.map((_, i) => this.shape(i, replay)), this.maxRows, OP, this.tuning);
    } else if (this.replayMamba1 !== replay && this.layouts.some((l) => l.xOffset === undefined)) {
      throw new RangeError(`${OP}: the first call ${this.replayMamba1 ? 'gave' : 'did not give'} x (the state replay); every call must do the same`);
    }
    if (rows === 0) return;
    const buffers: TraceSummaryLayerBuffers[] = this.layers.map((_, i) => {
      const dbc = inputs.dbc[i] as GPUBuffer;
      const inDbc = (this.layouts[i] as TraceLayout).xOffset !== undefined;
      return {
        delta: inputs.delta[i] as GPUBuffer,
        dbc,
        x: inDbc ? dbc : (inputs.x?.[i] ?? dbc),
        aLog: this.aLogs[i] as GPUBuffer,
        focus: this.focus,
        state: this.states[i] as GPUBuffer,
      };
    });
    (this.kernel as TraceSummaryKernel).encode(encoder, buffers, this.out, srcRow, this.length, rows);
    this.length += rows;
  }

  /** The focus weights [max Δ columns]: 1/|F| on the focus columns, else 0 (a step summary's reduce reads them). */
  get focusWeights(): GPUBuffer {
    return this.focus;
  }

  /**
   * Takes the next summary row (reserve(1) first) for a decode step that computes its own
   * (app/kernels/step-summary.ts, the same four numbers per layer); returns where its row goes,
   * valid until the next reserve.
   */
  appendStepRow(): { buffer: GPUBuffer; offset: number } {
    if (this.length + 1 > this.capacity) throw new RangeError(`${OP}: row ${this.length} passes the capacity ${this.capacity}: reserve(1) first`);
    this.stepRows = true;
    const row = this.length++;
    return { buffer: this.out, offset: row * this.layers.length * ROW_BYTES };
  }

  /**
   * Appends copies of each traced layer's SSM state (`states[i]` for layer i, [dInner, dState]
   * floats as the replay holds it) over the replayed states: after rows that decode steps
   * summarised themselves, the replay of later rows goes on from the sequence's own state.
   */
  adoptStates(encoder: GPUCommandEncoder, states: readonly GPUBuffer[]): void {
    if (states.length !== this.states.length) throw new RangeError(`${OP}: ${states.length} states for ${this.states.length} layers`);
    states.forEach((from, i) => {
      const to = this.states[i] as GPUBuffer;
      if (from.size !== to.size) throw new RangeError(`${OP}: layer ${this.layers[i]}'s state ${from.label} holds ${from.size} bytes, the replay's ${to.size}`);
      encoder.copyBufferToBuffer(from, 0, to, 0, to.size);
    });
  }

  /** Throws a GpuError('out-of-memory') if allocating or growing the summary rows ran out of GPU memory. */
  async checkMemory(): Promise<void> {
    const pending = this.allocations;
    this.allocations = [];
    for (const a of pending) {
      const oom = await a.outcome;
      if (oom) throw new GpuError(`the GPU selection summaries of ${this.layers.length} layer(s) for ${a.capacity} tokens: out of GPU memory allocating ${formatBytes(a.bytes)} (${oom.message})`, 'out-of-memory');
    }
  }

  /** Summary rows [from, to) of every layer (submit the encoders first). */
  async read(from = 0, to = this.length): Promise<GpuSummaryRows> {
    await this.checkMemory();
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= this.length)) {
      throw new RangeError(`${OP}: rows ${from}..${to} are outside the ${this.length} summarised`);
    }
    const L = this.layers.length;
    const T = to - from;
    const data = T === 0 ? new Float32Array(0) : new Float32Array(await readBuffer(this.ctx.device, this.out, T * L * ROW_BYTES, from * L * ROW_BYTES));
    const column = (i: number, k: number) => Float32Array.from({ length: T }, (_, t) => data[(t * L + i) * 4 + k] as number);
    const result: GpuSummaryRows = {
      deltaNorm: this.layers.map((_, i) => column(i, 0)),
      writeGate: this.layers.map((_, i) => column(i, 1)),
    };
    const replays = this.layouts.every((l) => l.xOffset !== undefined) || this.replayMamba1 === true || (this.replayMamba1 === null && this.stepRows);
    if (replays) result.stateNorm = this.layers.map((_, i) => column(i, 2));
    if (this.focusChannels.length > 0) result.focusScore = this.layers.map((_, i) => column(i, 3));
    return result;
  }

  /** GPU bytes held: summary rows, states, focus weights and the kernel's buffers. */
  get bytes(): number {
    return this.out.size + this.focus.size + this.states.reduce((s, b) => s + b.size, 0) + (this.kernel?.bytes ?? 0);
  }

  destroy(): void {
    this.kernel?.destroy();
    for (const b of [this.out, this.focus, ...this.states]) b.destroy();
  }
}
