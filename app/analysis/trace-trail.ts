/**
 * The live trace's trail (issue 18, "live trace at full speed"). The generating session runs
 * untraced: the pipelined fused decode, no taps. A second session with the trace sink on follows
 * it through the same tokens in traced prefill pieces of `piece` tokens whenever the live trace
 * streams rows, and its logits of every piece's rows give each row's top next tokens.
 *
 * Why: the decode is bound by the CPU's encoding of each step (measured on the H200 through Dawn:
 * ~0.8 ms a step at mamba-130m, ~2.8 ms at mamba-2.8b, the GPU idle part of it), and a traced step
 * adds a copy per tap kind per layer to every step (the traced step took 1.6 and 4.8 ms). A
 * piece's traced prefill costs about one traced step's encoding for `piece` tokens, and its GPU
 * work is a prefill's. The trace's rows are the prefill's Δ, B, C, equal to the decode's within
 * fp32 rounding (test/gpu/long-trace.test.ts) — the same values a prompt trace of those tokens shows.
 */
import { storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from '../kernels/dispatch.js';
import { topK } from '../kernels/top-k.js';
import type { Session, TraceSink } from '../model/session.js';

/**
 * Tokens per traced prefill piece of the trail: fewer where the model's chunk, the sink's ring, the
 * trace or TRAIL_LOGITS_BYTES are smaller. A piece reads every weight once (a large model's piece
 * costs about as much GPU time as a few decode steps), so longer pieces cost less per token; the
 * trace's rows lag the generation by up to a piece (mamba-2.8b on the H200: ~0.8 s).
 */
export const TRAIL_PIECE = 256;
/** The most GPU memory of a piece's logits. */
export const TRAIL_LOGITS_BYTES = 64 * 2 ** 20;

/**
 * The most tokens one piece of a trail over `capacity` tokens takes (its logits buffer holds that
 * many rows); `wanted` replaces TRAIL_PIECE and the logits' cap.
 */
export function trailPiece(maxTokens: number, capacity: number, vocab: number, sinkRows = Infinity, wanted?: number): number {
  const cap = wanted ?? Math.min(TRAIL_PIECE, Math.floor(TRAIL_LOGITS_BYTES / (vocab * 4)));
  return Math.max(1, Math.min(cap, maxTokens, sinkRows, capacity));
}

/** GPU bytes of a trail's own buffers beside its session: the logits of one piece and their top-k words. */
export function trailBytes(vocab: number, piece: number, topNext: number): number {
  const words = (bytes: number) => Math.max(4, Math.ceil(bytes / 4) * 4);
  return words(piece * vocab * 4) + (topNext > 0 ? words(piece * 2 * topNext * 4) : 0);
}

export class TraceTrail {
  /** Tokens per piece. */
  readonly piece: number;
  private readonly logits: GPUBuffer;
  private readonly words: GPUBuffer | null;
  /** Word 0 of the model's ids buffer while the trail's pieces use it. */
  private readonly savedId: GPUBuffer;
  /** The top-k dispatch per piece length (the full one, and a shorter last piece's). */
  private readonly selects = new Map<number, Dispatch>();

  /** `session` (empty, untraced) becomes the trail: it is traced into `sink` from now on. */
  constructor(
    private readonly ctx: GpuContext,
    readonly session: Session,
    private readonly sink: TraceSink,
    capacity: number,
    piece?: number,
  ) {
    if (session.position !== 0) throw new Error('TraceTrail: the trail starts from an empty session');
    const model = session.model;
    const V = model.config.vocabSize;
    this.piece = trailPiece(model.analysisTokens, capacity, V, sink.maxRows, piece);
    this.logits = storageBuffer(ctx.device, 'TraceTrail.logits', this.piece * V * 4);
    this.words = sink.topNextK > 0 ? storageBuffer(ctx.device, 'TraceTrail.topK', this.piece * 2 * sink.topNextK * 4) : null;
    this.savedId = storageBuffer(ctx.device, 'TraceTrail.savedId', 4);
    session.trace(sink);
    // The whole pieces' plan and top-k, built now rather than at the first streaming.
    session.prepareTracedPrefill(this.piece, { allLogits: this.logits });
    if (this.words) this.select(this.piece, this.words);
  }

  /** The top-k dispatch over the first `rows` rows of the piece's logits. */
  private select(rows: number, words: GPUBuffer): Dispatch {
    let select = this.selects.get(rows);
    if (!select) {
      select = topK(this.ctx, { rows, vocab: this.session.model.config.vocabSize, k: this.sink.topNextK }, { logits: this.logits, out: words }, 'TraceTrail.topK');
      this.selects.set(rows, select);
    }
    return select;
  }

  /** Tokens the trail has traced. */
  get length(): number {
    return this.session.tokens.length;
  }

  /**
   * Traces the tokens of `tokens` (the generating session's, from its first) that the trail has
   * not: whole pieces only, or with `all` the rest too. Only encodes and submits GPU work.
   */
  catchUp(tokens: readonly number[], all: boolean): void {
    const { device } = this.ctx;
    const K = this.sink.topNextK;
    const ids = this.session.model.idsBuffer;
    let saved = false;
    while (this.length < tokens.length) {
      const n = Math.min(this.piece, tokens.length - this.length);
      if (n < this.piece && !all) break;
      if (!saved) {
        // The model's ids buffer is shared: the generation's next step, already in flight, reads the
        // id its sampler left in word 0 there. Kept aside here, put back after the pieces (queue order).
        const encoder = device.createCommandEncoder({ label: 'TraceTrail.saveId' });
        encoder.copyBufferToBuffer(ids, 0, this.savedId, 0, 4);
        device.queue.submit([encoder.finish()]);
        saved = true;
      }
      this.session.prefill(tokens.slice(this.length, this.length + n), { allLogits: this.logits });
      const words = this.words;
      const slot = this.sink.topNextSlot(this.sink.length - n);
      if (!words || !slot) continue;
      const select = this.select(n, words);
      const encoder = device.createCommandEncoder({ label: 'TraceTrail.topNext' });
      const pass = encoder.beginComputePass({ label: 'TraceTrail.topNext.pass' });
      select.encode(pass);
      pass.end();
      // The piece's rows are contiguous in the sink (a piece never spans a ring's end: Session.prefill reserves it whole).
      encoder.copyBufferToBuffer(words, 0, slot.buffer, slot.offset, n * 2 * K * 4);
      device.queue.submit([encoder.finish()]);
    }
    if (saved) {
      const encoder = device.createCommandEncoder({ label: 'TraceTrail.restoreId' });
      encoder.copyBufferToBuffer(this.savedId, 0, ids, 0, 4);
      device.queue.submit([encoder.finish()]);
    }
  }

  /** Stops tracing the trail's session and frees the trail's buffers and session (the sink is the caller's). */
  destroy(): void {
    this.session.trace(null);
    for (const select of this.selects.values()) select.destroy();
    this.logits.destroy();
    this.words?.destroy();
    this.savedId.destroy();
    this.session.destroy();
  }
}
