/**
 * Hidden attention (Ali et al. 2024) of one layer of a kept trace, on the GPU
 * (kernels/hidden-attention.ts), from the trace's Δ, B, C and the layer's A_log.
 *
 * Per-channel Δ (Mamba-1, deltaUnit 'channel'): one run over every channel (or the chosen one).
 * Per-head Δ (Mamba-2, deltaUnit 'head'): the same kernel per B/C group with the group's heads as
 * "channels": for head h, α[i, j] = (C_i·B_j)·exp(A_h·(S_i − S_j))·Δ_j[h], with A_log[h] repeated
 * over the N states; the mean over heads is the mean of the groups' means (every group has H/G
 * heads); one head runs only its group.
 *
 * The full matrix runs in bands of rows of about equal work (row i costs i + 1 cells), one submit
 * each: `onProgress` after each band (rows done of T per run), `signal` checked between them.
 */
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { hiddenAttention as hiddenAttentionOp, hiddenAttentionRow, type HiddenAttentionDispatch } from '../kernels/hidden-attention.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';
import type { HiddenAttentionOptions, HiddenAttentionResult, StoredTrace } from './types.js';

/** About how many multiply-exp-adds (cells × channels × states) one band of the full matrix takes. */
const BAND_WORK = 2 ** 22;
/** At most this many bands per matrix (each band is a GPU round trip). */
const MAX_BANDS = 64;

/**
 * Row bands [first, end) of a T × T causal matrix, of about equal work (rows 0..e cost e(e+1)/2
 * cells), as many as `work` (the whole matrix's) asks for, 1 … MAX_BANDS, each a multiple of 8
 * rows (the kernel's tile) but the last.
 */
export function rowBands(T: number, work: number): [number, number][] {
  const count = Math.max(1, Math.min(MAX_BANDS, Math.ceil(work / BAND_WORK), Math.ceil(T / 8)));
  const bands: [number, number][] = [];
  let first = 0;
  for (let k = 1; k <= count && first < T; k++) {
    const end = k === count ? T : Math.min(T, Math.max(first + 8, Math.ceil((T * Math.sqrt(k / count)) / 8) * 8));
    bands.push([first, end]);
    first = end;
  }
  return bands;
}

/** One kernel run: dense Δ [T, width], B and C [T, N], A_log [width, N], and its weight in the sum. */
interface Run {
  delta: Float32Array;
  b: Float32Array;
  c: Float32Array;
  aLog: Float32Array;
  width: number;
  unit: number | 'mean';
  weight: number;
}

/** The kernel runs for a layer's Δ, B, C and A_log: one for per-channel Δ, one per group (that holds the unit) for per-head Δ. */
function runsOf(trace: StoredTrace, index: number, layer: number, unit: number | 'mean'): Run[] {
  const r = trace.result;
  const T = r.ids.length;
  const W = r.deltaWidth;
  const N = r.dState;
  const delta = r.delta[index] as Float32Array;
  const B = r.B[index] as Float32Array;
  const C = r.C[index] as Float32Array;
  const aLog = trace.aLogs.get(layer);
  if (!aLog) throw new Error(`The trace has no A_log of layer ${layer}.`);
  if (r.deltaUnit === 'channel') return [{ delta, b: B, c: C, aLog, width: W, unit, weight: 1 }];
  const G = r.nGroups;
  const perGroup = W / G;
  const runs: Run[] = [];
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
  return runs;
}

/** α of one layer of `trace`: the full causal matrix [T, T], or one row [T]. */
export async function hiddenAttention(
  ctx: GpuContext,
  trace: StoredTrace,
  params: HiddenAttentionOptions,
  work: { signal?: AbortSignal; onProgress?: WorkProgress } = {},
): Promise<HiddenAttentionResult> {
  const r = trace.result;
  const index = r.layers.indexOf(params.layer);
  if (index < 0) throw new Error(`Layer ${params.layer} is not in trace ${r.traceId} (traced: ${r.layers.join(', ')}).`);
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
  const alpha = new Float32Array(outElements);
  const runs = runsOf(trace, index, params.layer, unit);
  const total = runs.length * T;
  let done = 0;
  throwIfCancelled(work.signal);
  for (const run of runs) {
    const upload = (label: string, data: Float32Array) => {
      const buffer = storageBuffer(ctx.device, `HiddenAttention.${label}`, data.byteLength);
      ctx.device.queue.writeBuffer(buffer, 0, data);
      return buffer;
    };
    const buffers = {
      delta: upload('delta', run.delta),
      b: upload('b', run.b),
      c: upload('c', run.c),
      aLog: upload('aLog', run.aLog),
      alpha: storageBuffer(ctx.device, 'HiddenAttention.alpha', outElements * 4),
    };
    const shape = { tokens: T, dInner: run.width, dState: N, channel: run.unit };
    let dispatch: HiddenAttentionDispatch | null = null;
    try {
      const submit = (encode: (pass: GPUComputePassEncoder) => void) => {
        const encoder = ctx.device.createCommandEncoder({ label: 'HiddenAttention' });
        const pass = encoder.beginComputePass({ label: 'HiddenAttention.pass' });
        encode(pass);
        pass.end();
        ctx.device.queue.submit([encoder.finish()]);
      };
      if (row === undefined) {
        const matrix = hiddenAttentionOp(ctx, shape, buffers);
        dispatch = matrix;
        const channels = run.unit === 'mean' ? run.width : 1;
        for (const [first, end] of rowBands(T, ((T * (T + 1)) / 2) * channels * N)) {
          submit((pass) => matrix.encodeRows(pass, first, end, first === 0));
          await ctx.device.queue.onSubmittedWorkDone();
          throwIfCancelled(work.signal);
          done += end - first;
          work.onProgress?.(done, total);
        }
      } else {
        const one = hiddenAttentionRow(ctx, { ...shape, row }, buffers);
        dispatch = one;
        submit((pass) => one.encode(pass));
      }
      const out = await readF32(ctx.device, buffers.alpha, outElements);
      for (let i = 0; i < outElements; i++) alpha[i] = (alpha[i] as number) + run.weight * (out[i] as number);
      throwIfCancelled(work.signal);
    } finally {
      dispatch?.destroy();
      for (const b of Object.values(buffers)) b.destroy();
    }
  }
  return { layer: params.layer, unit, tokens: T, ...(row !== undefined ? { row } : {}), alpha };
}
