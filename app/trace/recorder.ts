/**
 * Traces that grow as tokens stream: for the chosen layers, Δ (after softplus) [t, Di] and the
 * x_proj rows (dt_r | B | C) [t, R+2N], kept on the GPU and filled by the forward's taps during
 * prefill and every decode step. Capacity doubles when needed (the old rows are copied over on
 * the GPU). Reads come back as a window of rows, or as per-token selection summaries.
 *
 * Memory: 4·(Di + R + 2N) bytes per traced layer and token (fp32); mamba-130m, all 24 layers,
 * 4,096 tokens: 4·(1536 + 48 + 32)·24·4096 ≈ 635 MB.
 */
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Mamba1, Mamba1Taps } from '../model/mamba1.js';

export interface TraceWindow {
  from: number;
  to: number;
  /** Per traced layer (in `layers` order): Δ [to−from, Di], B and C [to−from, N]. */
  delta: Float32Array[];
  B: Float32Array[];
  C: Float32Array[];
}

export interface SelectionSummary {
  /** Per traced layer: ‖Δ_t‖₂ over the channels, [tokens]. */
  deltaNorm: Float32Array[];
  /** Per traced layer: mean over (d, n) of the write gate 1 − exp(Δ_t[d]·A[d, n]), [tokens]. */
  writeGate: Float32Array[];
}

export class TraceRecorder {
  readonly layers: number[];
  private capacity: number;
  private delta: GPUBuffer[] = [];
  private dbc: GPUBuffer[] = [];
  /** Rows written so far (tokens traced). */
  length = 0;
  /** Bumped whenever the buffers are replaced (plans bound to the old ones must be rebuilt). */
  generation = 0;

  constructor(
    private readonly ctx: GpuContext,
    private readonly model: Mamba1,
    options: { layers?: number[]; capacity?: number } = {},
  ) {
    const L = model.config.nLayer;
    this.layers = [...new Set(options.layers ?? Array.from({ length: L }, (_, l) => l))].sort((a, b) => a - b);
    for (const l of this.layers) if (!Number.isInteger(l) || l < 0 || l >= L) throw new RangeError(`TraceRecorder: no layer ${l} (the model has ${L})`);
    this.capacity = Math.max(1, options.capacity ?? 256);
    this.allocate(this.capacity);
  }

  private get rowBytes() {
    const { dInner: Di, dState: N, dtRank: R } = this.model.config;
    return { delta: Di * 4, dbc: (R + 2 * N) * 4 };
  }

  private allocate(capacity: number): void {
    const { delta, dbc } = this.rowBytes;
    const oldDelta = this.delta;
    const oldDbc = this.dbc;
    this.delta = this.layers.map((l) => storageBuffer(this.ctx.device, `Trace.L${l}.delta`, capacity * delta));
    this.dbc = this.layers.map((l) => storageBuffer(this.ctx.device, `Trace.L${l}.dbc`, capacity * dbc));
    if (oldDelta.length > 0 && this.length > 0) {
      const encoder = this.ctx.device.createCommandEncoder({ label: 'Trace.grow' });
      oldDelta.forEach((b, i) => encoder.copyBufferToBuffer(b, 0, this.delta[i] as GPUBuffer, 0, this.length * delta));
      oldDbc.forEach((b, i) => encoder.copyBufferToBuffer(b, 0, this.dbc[i] as GPUBuffer, 0, this.length * dbc));
      this.ctx.device.queue.submit([encoder.finish()]);
    }
    for (const b of [...oldDelta, ...oldDbc]) b.destroy();
    this.capacity = capacity;
    this.generation++;
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
  taps(rowOf?: () => number): Mamba1Taps {
    const byLayer = <T>(list: T[]) => {
      const out: (T | undefined)[] = new Array(this.model.config.nLayer).fill(undefined);
      this.layers.forEach((l, i) => (out[l] = list[i]));
      return out;
    };
    return { delta: byLayer(this.delta), dbc: byLayer(this.dbc), row0: this.length, ...(rowOf ? { rowOf } : {}) };
  }

  get bytes(): number {
    return [...this.delta, ...this.dbc].reduce((s, b) => s + b.size, 0);
  }

  /** Reads rows [from, to) of every traced layer. */
  async read(from = 0, to = this.length): Promise<TraceWindow> {
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= this.length)) {
      throw new RangeError(`TraceRecorder: rows ${from}..${to} are outside the ${this.length} traced`);
    }
    const { dInner: Di, dState: N, dtRank: R } = this.model.config;
    const rows = to - from;
    const window: TraceWindow = { from, to, delta: [], B: [], C: [] };
    for (let i = 0; i < this.layers.length; i++) {
      const all = await readF32(this.ctx.device, this.delta[i] as GPUBuffer, to * Di);
      window.delta.push(all.slice(from * Di, to * Di));
      const dbc = await readF32(this.ctx.device, this.dbc[i] as GPUBuffer, to * (R + 2 * N));
      const B = new Float32Array(rows * N);
      const C = new Float32Array(rows * N);
      for (let t = 0; t < rows; t++) {
        const row = (from + t) * (R + 2 * N);
        B.set(dbc.subarray(row + R, row + R + N), t * N);
        C.set(dbc.subarray(row + R + N, row + R + 2 * N), t * N);
      }
      window.B.push(B);
      window.C.push(C);
    }
    return window;
  }

  /**
   * Per-token selection scores of every traced layer: ‖Δ_t‖ (the DeciMamba rule) and the mean
   * write gate 1 − exp(Δ·A). `aLog(layer)` gives that layer's A_log [Di, N] (A = −exp(A_log)).
   */
  async summary(aLog: (layer: number) => Float32Array): Promise<SelectionSummary> {
    const { dInner: Di, dState: N } = this.model.config;
    const window = await this.read();
    const T = this.length;
    const deltaNorm: Float32Array[] = [];
    const writeGate: Float32Array[] = [];
    this.layers.forEach((layer, i) => {
      const delta = window.delta[i] as Float32Array;
      const A = Float64Array.from(aLog(layer), (x) => -Math.exp(x));
      const norms = new Float32Array(T);
      const gates = new Float32Array(T);
      for (let t = 0; t < T; t++) {
        let sq = 0;
        let gate = 0;
        for (let d = 0; d < Di; d++) {
          const dt = delta[t * Di + d] as number;
          sq += dt * dt;
          for (let n = 0; n < N; n++) gate -= Math.expm1(dt * (A[d * N + n] as number));
        }
        norms[t] = Math.sqrt(sq);
        gates[t] = gate / (Di * N);
      }
      deltaNorm.push(norms);
      writeGate.push(gates);
    });
    return { deltaNorm, writeGate };
  }

  destroy(): void {
    for (const b of [...this.delta, ...this.dbc]) b.destroy();
  }
}
