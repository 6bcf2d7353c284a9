/**
 * Logit lens: the model's own head — final RMSNorm (norm_f) and LM head — applied to the residual
 * stream after each block, so every layer's running guess at the next token can be read: per
 * (layer, position) the top k tokens and the rank and probability of a target token (one id for
 * every position, or per position the model's final prediction, `target: 'final'`). Layer l's row
 * is the residual stream after block l (HF hidden_states[l + 1]); the last layer's is exactly the
 * model's logits.
 *
 * The tokens before `from` run once, untapped (Session.prefill, chunked); positions [from, to)
 * then run with the model's `hidden` taps ([to − from, D] per layer). The head runs on the GPU
 * per layer in bands of rows (logits of a band ≤ LENS_BAND_BYTES), each band read back: softmax,
 * top k and rank on the CPU in float64 (O(V) per cell). `onProgress` counts cells (layer ×
 * position); `signal` is checked between bands.
 */
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from '../kernels/dispatch.js';
import type { LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';
import { topIndices } from './distributions.js';
import { readableToken } from './token-text.js';

/** At most this many positions per request. */
export const LENS_MAX_POSITIONS = 256;
/** Logits of one band of rows on the GPU (and read back at once). */
const LENS_BAND_BYTES = 32 * 2 ** 20;

export interface LogitLensOptions {
  /** Positions [from, to) of the prompt (default: its last min(T, 32)). */
  from?: number;
  to?: number;
  /** The token id whose rank is reported everywhere, or 'final' (default): per position, the last layer's top token. */
  target?: number | 'final';
  /** Top tokens per cell (default 5, at most 20). */
  k?: number;
}

export interface LogitLensResult {
  /** The model's layers, 0 … L − 1: row l is the residual stream after block l. */
  layers: number[];
  from: number;
  to: number;
  k: number;
  /** Top ids and probabilities per cell, [L, to − from, k] row-major. */
  topIds: Int32Array;
  topProbs: Float32Array;
  /** The target id per position, [to − from] (one id repeated, or the last layer's top token). */
  targetIds: Int32Array;
  target: number | 'final';
  /** Rank of the target per cell (0: the most likely; ties counted in its favour), [L, to − from]. */
  targetRank: Int32Array;
  /** Probability of the target per cell, [L, to − from]. */
  targetProb: Float32Array;
  /** Readable text of every id the result names. */
  texts: Record<number, string>;
}

/** The cells' progress total. */
export const lensWork = (layers: number, positions: number) => layers * positions;

/**
 * Runs positions [from, to) with the hidden taps and hands each band of each layer's lens logits
 * ([rows, V], rows from position `from + row0`) to `onBand`, layer by layer in the order of
 * `layers` (default 0 … L − 1). Exported for tests.
 */
export async function lensLogits(
  ctx: GpuContext,
  model: LanguageModel,
  ids: readonly number[],
  from: number,
  to: number,
  onBand: (layer: number, row0: number, rows: number, logits: Float32Array) => void,
  work: { signal?: AbortSignal; onProgress?: WorkProgress } = {},
  layers: readonly number[] = Array.from({ length: model.config.nLayer }, (_, l) => l),
): Promise<void> {
  const { nLayer: L, dModel: D, vocabSize: V } = model.config;
  const n = to - from;
  const band = Math.max(1, Math.min(n, Math.floor(LENS_BAND_BYTES / (V * 4))));
  const session = new Session(ctx, model);
  const hidden: GPUBuffer[] = [];
  const made: GPUBuffer[] = [];
  const dispatches = new Map<number, Dispatch[]>();
  try {
    for (let l = 0; l < L; l++) hidden.push(storageBuffer(ctx.device, `LogitLens.hidden${l}`, n * D * 4));
    const input = storageBuffer(ctx.device, 'LogitLens.input', band * D * 4);
    const copy = storageBuffer(ctx.device, 'LogitLens.copy', band * D * 4);
    const normed = storageBuffer(ctx.device, 'LogitLens.normed', band * D * 4);
    const logits = storageBuffer(ctx.device, 'LogitLens.logits', band * V * 4);
    made.push(input, copy, normed, logits);
    if (from > 0) session.prefill(ids.slice(0, from));
    session.prefill(ids.slice(from, to), { taps: { hidden, row0: 0 } });
    await ctx.device.queue.onSubmittedWorkDone();
    throwIfCancelled(work.signal);
    let done = 0;
    for (const l of layers) {
      for (let r0 = 0; r0 < n; r0 += band) {
        const rows = Math.min(band, n - r0);
        let steps = dispatches.get(rows);
        if (!steps) {
          steps = model.headDispatches(rows, input, { copy, normed, logits });
          dispatches.set(rows, steps);
        }
        const encoder = ctx.device.createCommandEncoder({ label: 'LogitLens' });
        encoder.copyBufferToBuffer(hidden[l] as GPUBuffer, r0 * D * 4, input, 0, rows * D * 4);
        const pass = encoder.beginComputePass({ label: 'LogitLens.pass' });
        for (const d of steps) d.encode(pass);
        pass.end();
        ctx.device.queue.submit([encoder.finish()]);
        const values = await readF32(ctx.device, logits, rows * V);
        throwIfCancelled(work.signal);
        onBand(l, r0, rows, values);
        done += rows;
        work.onProgress?.(done, lensWork(layers.length, n));
      }
    }
  } finally {
    for (const steps of dispatches.values()) for (const d of steps) d.destroy();
    for (const b of [...hidden, ...made]) b.destroy();
    session.destroy();
  }
}

/** The rank of `id` in a row of logits: how many ids have a larger logit (ties count in its favour). */
function rankOf(row: Float32Array, id: number): number {
  const x = row[id] as number;
  let rank = 0;
  for (let i = 0; i < row.length; i++) if ((row[i] as number) > x) rank++;
  return rank;
}

export async function logitLens(
  ctx: GpuContext,
  target: { model: LanguageModel; tokenizer: Tokenizer | null },
  ids: readonly number[],
  options: LogitLensOptions = {},
  work: { signal?: AbortSignal; onProgress?: WorkProgress } = {},
): Promise<LogitLensResult> {
  const { model } = target;
  const { nLayer: L, vocabSize: V } = model.config;
  const T = ids.length;
  const to = options.to ?? T;
  const from = options.from ?? Math.max(0, to - 32);
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= T)) throw new RangeError(`Positions ${from} … ${to - 1} are not inside the prompt (it has ${T} tokens).`);
  if (to - from > LENS_MAX_POSITIONS) throw new RangeError(`The logit lens shows at most ${LENS_MAX_POSITIONS} positions at once (asked for ${to - from}).`);
  const k = Math.max(1, Math.min(options.k ?? 5, 20, V));
  const want = options.target ?? 'final';
  if (want !== 'final' && !(Number.isInteger(want) && want >= 0 && want < V)) throw new RangeError(`There is no token id ${want} (the vocabulary has ${V}).`);
  const n = to - from;
  const topIds = new Int32Array(L * n * k);
  const topProbs = new Float32Array(L * n * k);
  const targetRank = new Int32Array(L * n);
  const targetProb = new Float32Array(L * n);
  const targetIds = new Int32Array(n).fill(want === 'final' ? -1 : want);
  // With 'final' the last layer runs first: its top tokens are the other layers' targets.
  const order = want === 'final' ? [L - 1, ...Array.from({ length: L - 1 }, (_, l) => l)] : Array.from({ length: L }, (_, l) => l);
  await lensLogits(
    ctx,
    model,
    ids,
    from,
    to,
    (layer, row0, rows, logits) => {
      for (let r = 0; r < rows; r++) {
        const row = logits.subarray(r * V, (r + 1) * V);
        const cellIndex = layer * n + row0 + r;
        let max = -Infinity;
        for (let i = 0; i < V; i++) max = Math.max(max, row[i] as number);
        let sum = 0;
        for (let i = 0; i < V; i++) sum += Math.exp((row[i] as number) - max);
        const top = topIndices(row, k);
        top.forEach((id, j) => {
          topIds[cellIndex * k + j] = id;
          topProbs[cellIndex * k + j] = Math.exp((row[id] as number) - max) / sum;
        });
        if (want === 'final' && layer === L - 1) targetIds[row0 + r] = top[0] as number;
        const id = targetIds[row0 + r] as number;
        targetRank[cellIndex] = rankOf(row, id);
        targetProb[cellIndex] = Math.exp((row[id] as number) - max) / sum;
      }
    },
    work,
    order,
  );
  const texts: Record<number, string> = {};
  for (const id of [...topIds, ...targetIds]) if (!(id in texts)) texts[id] = readableToken(target.tokenizer, id);
  return { layers: Array.from({ length: L }, (_, l) => l), from, to, k, topIds, topProbs, targetIds, target: want, targetRank, targetProb, texts };
}
