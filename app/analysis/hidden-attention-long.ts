/**
 * One row of hidden attention over a long context (issue 18, item 4), without the T × T matrix
 * and without keeping every token's Δ, B and C: row i of layer l, α[i, j] for j ≤ i, from windows
 * of ≤ TRACE_WINDOW_MAX tokens recomputed from the state checkpoints (checkpoints.ts).
 *
 * α[i, j] = Σ_n C_i[n] · exp(A[d, n] · (S_i[d] − S_j[d])) · Δ_j[d] · B_j[n], and
 * S_i − S_j = Σ_{k=j+1..i} Δ_k: the windows go backwards from the one that ends at i, carrying
 * Σ_{k=w1..i} Δ_k (float64) for a window [w0, w1) before i. Each window is handed to the GPU row
 * op of hidden-attention.ts as a made-up trace of its rows plus one last row: Δ = that carry,
 * C = C_i — so the op's S_last − S_j is exactly S_i − S_j. The mean over channels (heads) is
 * linear in α's entries, so the windows' rows assemble into the whole row.
 */
import type { GpuContext } from '../gpu/context.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';
import { recomputeWindow, type StateCheckpoints } from './checkpoints.js';
import { hiddenAttention } from './hidden-attention.js';
import { TRACE_WINDOW_MAX } from './trace-window.js';
import { readALogs, type TraceTarget } from './trace-target.js';
import type { HiddenAttentionResult, StoredTrace } from './types.js';

export interface LongRowOptions {
  layer: number;
  unit: number | 'mean';
  /** The row i (which earlier tokens token i reads). */
  row: number;
}

/**
 * α[i, ·] of one layer of the sequence `ids` (all the trace's tokens), as [T] (zeros for j > i),
 * from windows recomputed from `checkpoints`. `windowTokens`: tokens per window (default and at
 * most TRACE_WINDOW_MAX). `onProgress(done, i + 1)` after each window; `signal` checked between.
 */
export async function hiddenAttentionRowLong(
  ctx: GpuContext,
  target: TraceTarget,
  ids: readonly number[],
  checkpoints: StateCheckpoints,
  params: LongRowOptions,
  work: { signal?: AbortSignal; onProgress?: WorkProgress; windowTokens?: number; traceId?: string } = {},
): Promise<HiddenAttentionResult> {
  const { layer, unit, row: i } = params;
  const T = ids.length;
  const model = target.model;
  const layout = Number.isInteger(layer) && layer >= 0 && layer < model.config.nLayer ? model.traceLayout(layer) : null;
  if (!layout) throw new RangeError(`Layer ${layer} has no selection to trace (the model's traceable layers: ${model.traceableLayers.join(', ')}).`);
  const W = layout.deltaWidth;
  if (unit !== 'mean' && !(Number.isInteger(unit) && unit >= 0 && unit < W)) throw new RangeError(`There is no ${layout.deltaUnit} ${unit} (the layer has ${W}).`);
  if (!(Number.isInteger(i) && i >= 0 && i < T)) throw new RangeError(`There is no token ${i} (the trace has ${T}).`);
  const size = work.windowTokens ?? TRACE_WINDOW_MAX;
  if (!(Number.isInteger(size) && size >= 1 && size <= TRACE_WINDOW_MAX)) throw new RangeError(`windowTokens must be a whole number in 1..${TRACE_WINDOW_MAX}, got ${size}`);
  const traceId = work.traceId ?? 'long-row';
  const aLog = (await readALogs(ctx, target, [layer])).get(layer) as Float32Array;
  const G = layout.bcWidth;
  const N = layout.bcWidth / layout.nGroups;
  const alpha = new Float32Array(T);
  // Σ_{k=w1..i} Δ_k per column, for the window [w0, w1) being done (float64).
  const carry = new Float64Array(W);
  let cRow: Float32Array | null = null;
  let done = 0;
  for (let w1 = i + 1; w1 > 0; ) {
    throwIfCancelled(work.signal);
    const w0 = Math.max(0, w1 - size);
    const win = await recomputeWindow(ctx, target, ids, checkpoints, traceId, layer, w0, w1, work.signal);
    const rows = w1 - w0;
    const first = cRow === null;
    cRow ??= win.C.slice((rows - 1) * G, rows * G); // the first window ends at i
    // The window's rows, plus (after the first window) the made-up row i: Δ = carry, C = C_i.
    const tokens = first ? rows : rows + 1;
    const delta = new Float32Array(tokens * W);
    const B = new Float32Array(tokens * G);
    const C = new Float32Array(tokens * G);
    delta.set(win.delta);
    B.set(win.B);
    C.set(win.C);
    if (!first) {
      delta.set(Float32Array.from(carry), rows * W);
      C.set(cRow, rows * G);
    }
    const trace: StoredTrace = {
      result: {
        traceId,
        modelId: '',
        architecture: '',
        ids: new Array<number>(tokens).fill(0),
        tokens: [],
        layers: [layer],
        deltaWidth: W,
        deltaUnit: layout.deltaUnit,
        delta: [delta],
        deltaNorm: [],
        writeGate: [],
        dState: N,
        nGroups: layout.nGroups,
        B: [B],
        C: [C],
        A: [],
        aStates: layout.aStates,
        stateNorm: [],
        topNext: { k: 0, ids: new Int32Array(0), probs: new Float32Array(0) },
      },
      aLogs: new Map([[layer, aLog]]),
    };
    const part = await hiddenAttention(ctx, trace, { layer, unit, row: tokens - 1 }, work.signal ? { signal: work.signal } : {});
    alpha.set(part.alpha.subarray(0, rows), w0);
    for (let t = 0; t < rows; t++) for (let d = 0; d < W; d++) carry[d] = (carry[d] as number) + (win.delta[t * W + d] as number);
    done += rows;
    work.onProgress?.(done, i + 1);
    w1 = w0;
  }
  return { layer, unit, tokens: T, row: i, alpha };
}
