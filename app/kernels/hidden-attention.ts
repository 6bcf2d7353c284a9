/**
 * Op: Mamba-1's hidden attention of one layer (Ali et al. 2024), the implicit attention matrix
 *
 *   α[i, j] = Σ_n C[i, n] · exp(A[d, n] · (S[i, d] − S[j, d])) · Δ[j, d] · B[j, n]   (j ≤ i; 0 above the diagonal)
 *
 * with S[t, d] = Σ_{s ≤ t} Δ[s, d] and A = −exp(A_log), for one channel d or averaged over all
 * channels. Shader: shaders/hidden_attention.wgsl. Reference: hidden-attention.ref.ts.
 *
 * - `hiddenAttention`: the full matrix α [T, T], computed on demand for one layer; `encodeRows`
 *   runs it in bands of rows (one submit each), so that long work can report and stop between them.
 * - `hiddenAttentionRow`: one row α[i, :] as [T] (zeros for j > i), cheap: T·Di·N exponentials in
 *   the mean mode, T·N for one channel. `setRow` moves it to another row without allocating.
 *
 * Both run two dispatches in one pass: `prefix_sums` computes S [T, Di] and A [Di, N] on the GPU
 * into a scratch buffer the op owns (2·T·Di + Di·N floats: S as hi + lo, then A), then `full_matrix` or `single_row`.
 * `setChannel` switches between one channel and the mean (a uniform write; same pipeline).
 *
 * Inputs are dense buffers as the trace records them: Δ [T, Di] (after softplus, so ≥ 0),
 * B and C [T, N], A_log [Di, N]. Glossary: T tokens, Di d_inner, N d_state.
 */
import code from '../../shaders/hidden_attention.wgsl?raw';
import { storageBuffer, uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkCount, checkWrittenNotAliased, foldWorkgroups } from './op-helpers.js';

const OP = 'HiddenAttention';
/** full_matrix: TILE × TILE threads per workgroup. */
const TILE = 8;
/** prefix_sums and single_row: threads per workgroup. */
const WORKGROUP_SIZE = 64;
const PARAMS_BYTES = 48;

/** One channel d (0 ≤ d < Di), or the mean over all channels. */
export type HiddenAttentionChannel = number | 'mean';

export interface HiddenAttentionShape {
  tokens: number; // T
  dInner: number; // Di
  dState: number; // N
  channel: HiddenAttentionChannel;
}

export interface HiddenAttentionBuffers {
  delta: GPUBuffer; // [T, Di] Δ (after softplus)
  b: GPUBuffer; // [T, N]
  c: GPUBuffer; // [T, N]
  aLog: GPUBuffer; // [Di, N] A_log as in the checkpoint
  alpha: GPUBuffer; // output: [T, T] for hiddenAttention, [T] for hiddenAttentionRow
}

export interface HiddenAttentionDispatch extends Dispatch {
  /** Selects one channel or the mean for later encodes (writes the uniform; allocates nothing). */
  setChannel(channel: HiddenAttentionChannel): void;
}

export interface HiddenAttentionMatrixDispatch extends HiddenAttentionDispatch {
  /**
   * Encodes rows first … end − 1 of α only (writes the uniform now, so one band per submit), after
   * the prefix sums when `prefix` (the first band of a matrix needs them; later bands reuse them).
   */
  encodeRows(pass: GPUComputePassEncoder, first: number, end: number, prefix: boolean): void;
}

export interface HiddenAttentionRowDispatch extends HiddenAttentionDispatch {
  /** Selects the row i (0 ≤ i < T) for later encodes (writes the uniform; allocates nothing). */
  setRow(row: number): void;
}


function build(ctx: GpuContext, shape: HiddenAttentionShape, buffers: HiddenAttentionBuffers, label: string, row: number | null): HiddenAttentionRowDispatch & HiddenAttentionMatrixDispatch {
  const { tokens: T, dInner: Di, dState: N } = shape;
  const maxDim = ctx.adapter.limits.maxComputeWorkgroupsPerDimension;
  checkCount(OP, 'tokens', T, 1, 65535);
  checkCount(OP, 'dInner', Di, 1);
  checkCount(OP, 'dState', N, 1);
  const tiles = Math.ceil(T / TILE);
  if (row === null && tiles > maxDim) throw new RangeError(`${OP}: tokens=${T} needs ${tiles} tiles per dimension, over the workgroup limit ${maxDim}`);
  const bindings = {
    delta: bindElements(ctx, OP, 'delta', buffers.delta, T * Di),
    b: bindElements(ctx, OP, 'b', buffers.b, T * N),
    c: bindElements(ctx, OP, 'c', buffers.c, T * N),
    aLog: bindElements(ctx, OP, 'aLog', buffers.aLog, Di * N),
    alpha: bindElements(ctx, OP, 'alpha', buffers.alpha, row === null ? T * T : T),
  };
  checkWrittenNotAliased(
    OP,
    [
      ['delta', buffers.delta],
      ['b', buffers.b],
      ['c', buffers.c],
      ['aLog', buffers.aLog],
    ],
    [['alpha', buffers.alpha]],
  );
  const scratchElements = 2 * T * Di + Di * N;
  const scratchLimit = Math.min(ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize);
  if (scratchElements * 4 > scratchLimit) {
    throw new RangeError(`${OP}: the scratch (S and A) needs ${scratchElements * 4} bytes, over this device's binding limit ${scratchLimit}`);
  }

  const { device } = ctx;
  // params, delta, b, c, aLog, scratch, alpha
  const layout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'storage']);
  const constants = { TILE, WORKGROUP_SIZE };
  const prefixPipeline = ctx.pipelines.get({ op: OP, code, entryPoint: 'prefix_sums', layout, constants });
  const mainPipeline = ctx.pipelines.get({ op: OP, code, entryPoint: row === null ? 'full_matrix' : 'single_row', layout, constants });
  const prefixGroups = foldWorkgroups(Math.ceil(Di / WORKGROUP_SIZE), maxDim);
  const rowGroups = foldWorkgroups(Math.ceil(T / WORKGROUP_SIZE), maxDim);
  const mainGroups: [number, number] = row === null ? [tiles, tiles] : rowGroups;

  const params = uniformBuffer(device, `${label}.params`, PARAMS_BYTES);
  const scratch = storageBuffer(device, `${label}.scratch`, scratchElements * 4);
  const data = new ArrayBuffer(PARAMS_BYTES);
  const u32 = new Uint32Array(data);
  const f32 = new Float32Array(data);
  u32.set([T, Di, N, row ?? 0]);
  u32[7] = prefixGroups[0];
  u32[8] = rowGroups[0];
  u32[9] = T; // full_matrix: every row unless encodeRows narrows it
  const setChannel = (channel: HiddenAttentionChannel) => {
    if (channel === 'mean') {
      u32[4] = 0;
      u32[5] = Di;
      f32[6] = 1 / Di;
    } else {
      checkCount(OP, 'channel', channel, 0, Di - 1);
      u32[4] = channel;
      u32[5] = channel + 1;
      f32[6] = 1;
    }
    device.queue.writeBuffer(params, 0, data);
  };
  setChannel(shape.channel);
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, layout, [
    { buffer: params },
    bindings.delta,
    bindings.b,
    bindings.c,
    bindings.aLog,
    { buffer: scratch },
    bindings.alpha,
  ]);
  return {
    label,
    encode(pass) {
      if (row === null && (u32[3] !== 0 || u32[9] !== T)) {
        // After encodeRows: every row again.
        u32[3] = 0;
        u32[9] = T;
        device.queue.writeBuffer(params, 0, data);
      }
      pass.setBindGroup(0, bindGroup);
      pass.setPipeline(prefixPipeline);
      pass.dispatchWorkgroups(...prefixGroups);
      pass.setPipeline(mainPipeline);
      pass.dispatchWorkgroups(...mainGroups);
    },
    encodeRows(pass, first, end, prefix) {
      if (row !== null) throw new Error(`${OP}: encodeRows is for the full matrix`);
      checkCount(OP, 'first row', first, 0, T - 1);
      checkCount(OP, 'end row', end, first + 1, T);
      u32[3] = first;
      u32[9] = end;
      device.queue.writeBuffer(params, 0, data);
      pass.setBindGroup(0, bindGroup);
      if (prefix) {
        pass.setPipeline(prefixPipeline);
        pass.dispatchWorkgroups(...prefixGroups);
      }
      pass.setPipeline(mainPipeline);
      pass.dispatchWorkgroups(tiles, Math.ceil((end - first) / TILE));
    },
    setChannel,
    setRow(i) {
      checkCount(OP, 'row', i, 0, T - 1);
      u32[3] = i;
      device.queue.writeBuffer(params, 0, data);
    },
    destroy() {
      params.destroy();
      scratch.destroy();
    },
  };
}

/** The full hidden-attention matrix α [T, T] of one layer, bound once to its buffers. */
export function hiddenAttention(ctx: GpuContext, shape: HiddenAttentionShape, buffers: HiddenAttentionBuffers, label = OP): HiddenAttentionMatrixDispatch {
  const { setRow: _setRow, ...dispatch } = build(ctx, shape, buffers, label, null);
  return dispatch;
}

/** One row α[row, :] of the hidden-attention matrix as [T] (zeros for j > row), bound once to its buffers. */
export function hiddenAttentionRow(
  ctx: GpuContext,
  shape: HiddenAttentionShape & { row: number },
  buffers: HiddenAttentionBuffers,
  label = `${OP}.row`,
): HiddenAttentionRowDispatch {
  checkCount(OP, 'row', shape.row, 0, shape.tokens - 1);
  const { encodeRows: _encodeRows, ...dispatch } = build(ctx, shape, buffers, label, shape.row);
  return dispatch;
}
