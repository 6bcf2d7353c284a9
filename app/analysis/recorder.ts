/**
 * Traces that grow as tokens stream: for the chosen layers, Δ (after softplus) [t, Di] and the
 * x_proj rows (dt_r | B | C) [t, R+2N] — and, when asked, x, z and y — kept on the GPU and filled by the forward's taps during
 * prefill and every decode step. Capacity doubles when needed (the old rows are copied over on
 * the GPU). Reads come back as a window of rows, or as per-token selection summaries.
 *
 * Memory: 4·(Di + R + 2N) bytes per traced layer and token (fp32); mamba-130m, all 24 layers,
 * 4,096 tokens: 4·(1536 + 48 + 32)·24·4096 ≈ 635 MB.
 */
import { readBuffer, readF32, storageBuffer } from '../gpu/buffers.js';
import { formatBytes, GpuError } from '../gpu/errors.js';
import { TOP_K_MAX, unpackTopK } from '../kernels/top-k.js';
import type { GpuContext } from '../gpu/context.js';
import { traceLayout } from '../arch/registry.js';
import type { MambaConfig } from '../model/config.js';
import type { ModelTaps, TraceLayout } from '../model/mixer.js';
import type { LanguageModel } from '../model/model.js';
import type { TraceSink } from '../model/session.js';

/** An empty top-next slot: id 0xffffffff (−1 as i32), probability bits 0xffffffff (NaN). */
const NO_TOKEN = 0xffffffff;

/** Taps beyond Δ, B and C, chosen when the recorder is made (each costs memory and a copy). */
export type ExtraTap = 'x' | 'z' | 'y';

export interface TraceWindow {
  from: number;
  to: number;
  /** Per traced layer (in `layers` order): Δ [to−from, Di], B and C [to−from, N]. */
  delta: Float32Array[];
  B: Float32Array[];
  C: Float32Array[];
  /**
   * With the extra taps: x (conv output), z (gate) and y (gated scan output), [to−from, Di] each.
   * Mamba-2 always has x: it is part of the conv rows (x | B | C) the trace keeps anyway.
   */
  x?: Float32Array[];
  z?: Float32Array[];
  y?: Float32Array[];
  /** With the recorder's topNext: [to−from, k] ids (−1: none) and probabilities (NaN: none). */
  topNext?: { k: number; ids: Int32Array; probs: Float32Array };
}

export interface SelectionSummary {
  /** Per traced layer: ‖Δ_t‖₂ over the channels, [tokens]. */
  deltaNorm: Float32Array[];
  /** Per traced layer: mean over (d, n) of the write gate 1 − exp(Δ_t[d]·A[d, n]), [tokens]. */
  writeGate: Float32Array[];
  /**
   * Per traced layer, with the x tap: ‖state_t‖ (Frobenius, over d and n) after each token,
   * replayed on the CPU from the traced Δ, B and x (the recurrence is exact given them).
   */
  stateNorm?: Float32Array[];
  /** Mamba-2, per traced layer: ‖state_t‖ of each head (Frobenius over P×N), [tokens, H]. */
  stateNormByHead?: Float32Array[];
}

export class TraceRecorder implements TraceSink {
  readonly layers: number[];
  /** Per traced layer (in `layers` order), where its Δ, B and C are. */
  private readonly layouts: TraceLayout[];
  private capacity: number;
  private delta: GPUBuffer[] = [];
  private dbc: GPUBuffer[] = [];
  private extra: Record<ExtraTap, GPUBuffer[]> = { x: [], z: [], y: [] };
  readonly extraTaps: ExtraTap[];
  /**
   * With topNext k > 0: per row, the k most likely next tokens after that token ([rows, 2k] u32:
   * ids, then probability bits, as kernels/top-k.ts writes them), filled by the Session wherever
   * it has that position's logits (every decode step, the last token of a prefill); other rows
   * read as id −1, probability NaN.
   */
  readonly topNextK: number;
  private top: GPUBuffer | null = null;
  /** Allocations whose out-of-memory scope checkMemory has not looked at yet. */
  private allocations: { capacity: number; bytes: number; outcome: Promise<GPUError | null> }[] = [];
  /** Rows written so far (tokens traced). */
  length = 0;
  /** Bumped whenever the buffers are replaced (plans bound to the old ones must be rebuilt). */
  generation = 0;

  constructor(
    private readonly ctx: GpuContext,
    private readonly model: LanguageModel,
    options: { layers?: number[]; capacity?: number; extra?: ExtraTap[]; topNext?: number } = {},
  ) {
    this.extraTaps = [...new Set(options.extra ?? [])];
    this.topNextK = options.topNext ?? 0;
    if (!(Number.isInteger(this.topNextK) && this.topNextK >= 0 && this.topNextK <= TOP_K_MAX)) {
      throw new RangeError(`TraceRecorder: topNext must be an integer in 0..${TOP_K_MAX}, got ${options.topNext}`);
    }
    const L = model.config.nLayer;
    this.layers = [...new Set(options.layers ?? model.traceableLayers)].sort((a, b) => a - b);
    for (const l of this.layers) if (!Number.isInteger(l) || l < 0 || l >= L) throw new RangeError(`TraceRecorder: no layer ${l} (the model has ${L})`);
    this.layouts = this.layers.map((l) => {
      const layout = model.traceLayout(l);
      if (!layout) throw new RangeError(`TraceRecorder: layer ${l}'s mixer has no Δ, B or C to trace`);
      if (this.extraTaps.length > 0 && !layout.extraTaps) throw new RangeError(`TraceRecorder: the x, z and y taps exist for Mamba-1 only (layer ${l}'s mixer has none)`);
      return layout;
    });
    if (this.layers.length === 0) throw new RangeError('TraceRecorder: this model has no layer with a selection to trace');
    this.capacity = Math.max(1, options.capacity ?? 256);
    this.allocate(this.capacity);
  }

  /** GPU bytes per traced token of a recorder of `layers` layers of this config's architecture, with these extra taps. */
  static bytesPerToken(config: MambaConfig, layers: number, extra: readonly ExtraTap[] = [], topNext = 0): number {
    const layout = traceLayout(config);
    const extraFloats = extra.reduce((sum, tap) => sum + (tap === 'z' ? 2 * config.dInner : config.dInner), 0);
    return 4 * (layout.deltaWidth + layout.rowWidth + extraFloats) * layers + 8 * topNext;
  }

  /** Bytes per row of each kind of buffer, for traced layer `i`. */
  private rowBytes(i: number) {
    const layout = this.layouts[i] as TraceLayout;
    const Di = this.model.config.dInner;
    return { delta: layout.deltaWidth * 4, dbc: layout.rowWidth * 4, x: Di * 4, z: 2 * Di * 4, y: Di * 4 };
  }

  private allocate(capacity: number): void {
    type Kind = 'delta' | 'dbc' | ExtraTap;
    const kinds: { get: () => GPUBuffer[]; set: (b: GPUBuffer[]) => void; kind: Kind }[] = [
      { get: () => this.delta, set: (b) => (this.delta = b), kind: 'delta' },
      { get: () => this.dbc, set: (b) => (this.dbc = b), kind: 'dbc' },
      ...this.extraTaps.map((tap) => ({ get: () => this.extra[tap], set: (b: GPUBuffer[]) => (this.extra[tap] = b), kind: tap })),
    ];
    // Out of memory is told asynchronously: the scope is popped right after (nothing awaited in
    // between) and its outcome checked by checkMemory(), before any read.
    this.ctx.device.pushErrorScope('out-of-memory');
    const encoder = this.ctx.device.createCommandEncoder({ label: 'Trace.grow' });
    const old: GPUBuffer[] = [];
    for (const kind of kinds) {
      const previous = kind.get();
      const next = this.layers.map((l, i) => storageBuffer(this.ctx.device, `Trace.L${l}.${kind.kind}`, capacity * this.rowBytes(i)[kind.kind]));
      if (this.length > 0) previous.forEach((b, i) => encoder.copyBufferToBuffer(b, 0, next[i] as GPUBuffer, 0, this.length * this.rowBytes(i)[kind.kind]));
      old.push(...previous);
      kind.set(next);
    }
    if (this.topNextK > 0) {
      const words = capacity * 2 * this.topNextK;
      const next = storageBuffer(this.ctx.device, 'Trace.topNext', words * 4);
      this.ctx.device.queue.writeBuffer(next, 0, new Uint32Array(words).fill(NO_TOKEN)); // before the copy below: queue order
      if (this.top && this.length > 0) encoder.copyBufferToBuffer(this.top, 0, next, 0, this.length * 2 * this.topNextK * 4);
      if (this.top) old.push(this.top);
      this.top = next;
    }
    this.ctx.device.queue.submit([encoder.finish()]);
    for (const b of old) b.destroy();
    this.allocations.push({ capacity, bytes: this.bytes, outcome: this.ctx.device.popErrorScope() });
    this.capacity = capacity;
    this.generation++;
  }

  /** Where row `row`'s top next tokens go (bytes 2k·4), for the Session's copy; null without topNext. */
  topNextSlot(row: number): { buffer: GPUBuffer; offset: number } | null {
    return this.top ? { buffer: this.top, offset: row * 2 * this.topNextK * 4 } : null;
  }

  /** Makes room for `rows` more tokens after the current ones. */
  reserve(rows: number): void {
    const needed = this.length + rows;
    if (needed <= this.capacity) return;
    let capacity = this.capacity;
    while (capacity < needed) capacity *= 2;
    this.allocate(capacity);
  }

  /** Taps for the forward pass, indexed by layer (untraced layers left out). */
  taps(rowOf?: () => number): ModelTaps {
    const byLayer = <T>(list: T[]) => {
      const out: (T | undefined)[] = new Array(this.model.config.nLayer).fill(undefined);
      this.layers.forEach((l, i) => (out[l] = list[i]));
      return out;
    };
    return {
      delta: byLayer(this.delta),
      dbc: byLayer(this.dbc),
      ...(this.extraTaps.includes('x') ? { x: byLayer(this.extra.x) } : {}),
      ...(this.extraTaps.includes('z') ? { xz: byLayer(this.extra.z) } : {}),
      ...(this.extraTaps.includes('y') ? { y: byLayer(this.extra.y) } : {}),
      row0: this.length,
      ...(rowOf ? { rowOf } : {}),
    };
  }

  /**
   * The tap buffers, per traced layer (in `layers` order): Δ, dbc and, with the x tap, x — what
   * GpuSelectionSummary.encode reads. Valid until the next growth (`generation` changes).
   */
  tapBuffers(): { delta: GPUBuffer[]; dbc: GPUBuffer[]; x?: GPUBuffer[] } {
    return { delta: [...this.delta], dbc: [...this.dbc], ...(this.extraTaps.includes('x') ? { x: [...this.extra.x] } : {}) };
  }

  /** Where Δ, B and C are in each traced layer's taps (in `layers` order). */
  get traceLayouts(): readonly TraceLayout[] {
    return this.layouts;
  }

  get bytes(): number {
    return [...this.delta, ...this.dbc, ...this.extra.x, ...this.extra.z, ...this.extra.y, ...(this.top ? [this.top] : [])].reduce((s, b) => s + b.size, 0);
  }

  /**
   * Throws a GpuError('out-of-memory') if growing the trace's buffers ran out of GPU memory (the
   * buffers are then invalid: the trace cannot go on). read() calls it first.
   */
  async checkMemory(): Promise<void> {
    const pending = this.allocations;
    this.allocations = [];
    for (const a of pending) {
      const oom = await a.outcome;
      if (oom) {
        throw new GpuError(
          `the trace of ${this.layers.length} layer(s) for ${a.capacity} tokens: out of GPU memory allocating ${formatBytes(a.bytes)} (${oom.message})`,
          'out-of-memory',
        );
      }
    }
  }

  /** Reads rows [from, to) of every traced layer. */
  async read(from = 0, to = this.length): Promise<TraceWindow> {
    await this.checkMemory();
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= this.length)) {
      throw new RangeError(`TraceRecorder: rows ${from}..${to} are outside the ${this.length} traced`);
    }
    const Di = this.model.config.dInner;
    const rows = to - from;
    const window: TraceWindow = { from, to, delta: [], B: [], C: [] };
    if (rows === 0) return { ...window, delta: this.layers.map(() => new Float32Array(0)), B: this.layers.map(() => new Float32Array(0)), C: this.layers.map(() => new Float32Array(0)) };
    const device = this.ctx.device;
    if (this.top) {
      const k = this.topNextK;
      const words = new Uint32Array(await readBuffer(device, this.top, rows * 2 * k * 4, from * 2 * k * 4));
      window.topNext = { k, ...unpackTopK(words, rows, k) };
    }
    for (let i = 0; i < this.layers.length; i++) {
      // Where Δ, B and C (and maybe x) are in this layer's taps: Mamba-1 Δ [T, Di], B and C [T, N]
      // inside x_proj's rows; Mamba-2 Δ [T, H], x, B and C [T, G·N] inside the conv's rows.
      const { deltaWidth, rowWidth, bOffset, cOffset, bcWidth, xOffset } = this.layouts[i] as TraceLayout;
      window.delta.push(await readF32(device, this.delta[i] as GPUBuffer, rows * deltaWidth, from * deltaWidth));
      const dbc = await readF32(device, this.dbc[i] as GPUBuffer, rows * rowWidth, from * rowWidth);
      const B = new Float32Array(rows * bcWidth);
      const C = new Float32Array(rows * bcWidth);
      for (let t = 0; t < rows; t++) {
        const row = t * rowWidth;
        B.set(dbc.subarray(row + bOffset, row + bOffset + bcWidth), t * bcWidth);
        C.set(dbc.subarray(row + cOffset, row + cOffset + bcWidth), t * bcWidth);
      }
      window.B.push(B);
      window.C.push(C);
      if (xOffset !== undefined) {
        const x = new Float32Array(rows * Di);
        for (let t = 0; t < rows; t++) x.set(dbc.subarray(t * rowWidth + xOffset, t * rowWidth + xOffset + Di), t * Di);
        (window.x ??= []).push(x);
      }
      for (const tap of this.extraTaps) {
        const width = tap === 'z' ? 2 * Di : Di;
        const all = await readF32(device, this.extra[tap][i] as GPUBuffer, rows * width, from * width);
        const rowsOf = new Float32Array(rows * Di);
        // z is the second half of in_proj's (x | z) rows.
        for (let t = 0; t < rows; t++) rowsOf.set(all.subarray(t * width + (tap === 'z' ? Di : 0), t * width + width), t * Di);
        (window[tap] ??= []).push(rowsOf);
      }
    }
    return window;
  }

  /**
   * Per-token selection scores of every traced layer: ‖Δ_t‖ (the DeciMamba rule) and the mean
   * write gate 1 − exp(Δ·A). `aLog(layer)` gives that layer's A_log (A = −exp(A_log)): Mamba-1
   * [Di, N] with Δ per channel; Mamba-2 [H] with Δ per head (the gate is the same for every p, n).
   * `all`: the full window, when the caller has read it already.
   */
  async summary(aLog: (layer: number) => Float32Array, all?: TraceWindow): Promise<SelectionSummary> {
    // A window of every row already read by the caller saves reading the traces twice.
    const window = all && all.from === 0 && all.to === this.length ? all : await this.read();
    return new SelectionReplay(this.model.config, this.layers, aLog, this.layouts).append(window);
  }


  destroy(): void {
    for (const b of [...this.delta, ...this.dbc, ...this.extra.x, ...this.extra.z, ...this.extra.y, ...(this.top ? [this.top] : [])]) b.destroy();
  }
}

/**
 * The per-token selection summaries of consecutive windows of a trace (rows 0.., then more as
 * tokens stream), carrying the replayed recurrent state from one window to the next: ‖Δ_t‖, the
 * mean write gate, and — when the window has x (Mamba-1's x tap; always for Mamba-2) — the state
 * norms, replayed on the CPU in float64 from the traced Δ, B and x (exact given them).
 */
export class SelectionReplay {
  private readonly A: Float64Array[];
  private readonly states: Float64Array[];
  private next = 0;
  /** Per layer, where its Δ, B and C are and what a Δ column is (a channel with N states, or a head). */
  private readonly layouts: readonly TraceLayout[];

  constructor(
    private readonly config: MambaConfig,
    private readonly layers: readonly number[],
    aLog: (layer: number) => Float32Array,
    /** Per layer; by default the architecture's layout (app/arch/registry.ts traceLayout). */
    layouts?: readonly TraceLayout[],
  ) {
    this.layouts = layouts ?? layers.map(() => traceLayout(config));
    this.A = layers.map((layer) => Float64Array.from(aLog(layer), (x) => -Math.exp(x)));
    const stateSize = config.dInner * config.dState; // Mamba-1 [Di, N]; Mamba-2 [H, P, N] with H·P = Di
    this.states = layers.map(() => new Float64Array(stateSize));
  }

  /** Summaries of the window's rows, which must start where the previous window ended. */
  append(window: TraceWindow): SelectionSummary {
    if (window.from !== this.next) throw new RangeError(`SelectionReplay: rows from ${window.from} follow row ${this.next}`);
    this.next = window.to;
    const c = this.config;
    const T = window.to - window.from;
    const deltaNorm: Float32Array[] = [];
    const writeGate: Float32Array[] = [];
    const stateNorm: Float32Array[] = [];
    const stateNormByHead: Float32Array[] = [];
    this.layers.forEach((_, i) => {
      // A is [Di, N] with one Δ per column: Mamba-1 channels with N states each; Mamba-2 heads
      // with one scalar A each (N = 1 for the gate), whose state replay is per head.
      const layout = this.layouts[i] as TraceLayout;
      const Di = layout.deltaWidth;
      const N = layout.aStates;
      const perHead = layout.deltaUnit === 'head';
      const delta = window.delta[i] as Float32Array;
      const A = this.A[i] as Float64Array;
      const norms = new Float32Array(T);
      const gates = new Float32Array(T);
      const x = window.x?.[i];
      const state = this.states[i] as Float64Array;
      // Mamba-1 with x: one exponential exp(Δ·A) per (t, d, n) serves both the write gate
      // 1 − exp(Δ·A) and the state update (the costly part: T·Di·N of them).
      const replayState = x !== undefined && !perHead;
      const B = window.B[i] as Float32Array;
      const out = replayState ? new Float32Array(T) : null;
      for (let t = 0; t < T; t++) {
        let sq = 0;
        let gate = 0;
        let stateSq = 0;
        for (let d = 0; d < Di; d++) {
          const dt = delta[t * Di + d] as number;
          sq += dt * dt;
          if (replayState) {
            const dx = dt * (x[t * Di + d] as number);
            for (let n = 0; n < N; n++) {
              const e = Math.exp(dt * (A[d * N + n] as number));
              gate += 1 - e;
              const v = e * (state[d * N + n] as number) + dx * (B[t * N + n] as number);
              state[d * N + n] = v;
              stateSq += v * v;
            }
          } else {
            for (let n = 0; n < N; n++) gate -= Math.expm1(dt * (A[d * N + n] as number));
          }
        }
        norms[t] = Math.sqrt(sq);
        gates[t] = gate / (Di * N);
        if (out) out[t] = Math.sqrt(stateSq);
      }
      deltaNorm.push(norms);
      writeGate.push(gates);
      if (out) stateNorm.push(out);
      if (x && perHead) {
        const { norms: byHead, total } = mamba2StateNorms(c, delta, A, B, x, T, state);
        stateNorm.push(total);
        stateNormByHead.push(byHead);
      }
    });
    return { deltaNorm, writeGate, ...(stateNorm.length ? { stateNorm } : {}), ...(stateNormByHead.length ? { stateNormByHead } : {}) };
  }
}

/**
 * Mamba-2's state norms replayed on the CPU from the traced Δ [T, H], B [T, G·N] and x [T, H·P]:
 * state[h, p, n] ← exp(Δ[t, h]·A[h])·state[h, p, n] + Δ[t, h]·x[t, h, p]·B[t, g(h), n]; returns
 * ‖state_t[h]‖ [T, H] and the whole layer's ‖state_t‖ [T]. One exponential per (t, h); T·H·P·N
 * multiply-adds (mamba2-130m: 0.2 G per layer per 1,000 tokens).
 */
export function mamba2StateNorms(
  config: { nHeads: number; headDim: number; nGroups: number; dState: number },
  delta: Float32Array,
  A: Float64Array,
  B: Float32Array,
  x: Float32Array,
  T: number,
  /** [H, P, N], carried in and out (zeros for a fresh sequence). */
  state: Float64Array = new Float64Array(config.nHeads * config.headDim * config.dState),
): { norms: Float32Array; total: Float32Array } {
  const { nHeads: H, headDim: P, nGroups: G, dState: N } = config;
  const norms = new Float32Array(T * H);
  const total = new Float32Array(T);
  const headsPerGroup = H / G;
  for (let t = 0; t < T; t++) {
    let all = 0;
    for (let h = 0; h < H; h++) {
      const dt = delta[t * H + h] as number;
      const decay = Math.exp(dt * (A[h] as number));
      const b0 = t * G * N + Math.floor(h / headsPerGroup) * N;
      let sq = 0;
      for (let p = 0; p < P; p++) {
        const dx = dt * (x[t * H * P + h * P + p] as number);
        const base = (h * P + p) * N;
        for (let n = 0; n < N; n++) {
          const v = decay * (state[base + n] as number) + dx * (B[b0 + n] as number);
          state[base + n] = v;
          sq += v * v;
        }
      }
      norms[t * H + h] = Math.sqrt(sq);
      all += sq;
    }
    total[t] = Math.sqrt(all);
  }
  return { norms, total };
}
