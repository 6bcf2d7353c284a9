/**
 * Op: a Linear layer over tokens, Y[T, O] = X[T, I] · Wᵀ (+ bias) (+ Y when `accumulate`), with W
 * stored as PyTorch's Linear weight [O, I] (a tied LM head passes the embedding table [V, D]).
 * X and Y are strided views (offset, row stride in elements) into their buffers, so the x half of
 * in_proj's output or one row of a bigger matrix is used in place. Shader: shaders/matmul.wgsl.
 * Reference: matmul.ref.ts.
 *
 * Variants, chosen from the shape: T ≤ 4 (decode) runs a matrix-vector kernel that reads each
 * row of W once for all T tokens (vec4 loads when I, xOffset and xStride are multiples of 4);
 * larger T (prefill) runs a tiled matrix-matrix kernel: 128×128 tiles with 8×8 outputs per thread
 * for large products on a GPU (see WIDE_MIN_GROUPS), else 64×64 tiles with 4×4 per thread. When that
 * makes few tiles (narrow outputs such as x_proj's R + 2N = 80, or few tokens) and I is long, K is
 * split over workgroups (partials into a scratch buffer the op owns, then a reduce dispatch that
 * adds them and stores Y), so that more of the GPU works.
 */
import matmulCode from '../../shaders/matmul.wgsl?raw';
import weightsCode from '../../shaders/weights.wgsl?raw';
import { storageBuffer, uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { encodeParts, kernelPart, type Dispatch } from './dispatch.js';
import { isBlockFormat, isHalfFormat, rowQuantum, WEIGHT_FORMAT_CODE, weightWords, type WeightFormat } from './weight-format.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkInteger, foldWorkgroups, singleDispatch } from './op-helpers.js';
import { subgroupReduction } from './subgroups.js';

const OP = 'Matmul';
const code = weightsCode + matmulCode;
/** Most tokens the matrix-vector kernel takes (its partial sums are one vec4 per thread). */
export const MATVEC_MAX_TOKENS = 4;
const MATVEC_WORKGROUP_SIZE = 256;
/** The tiled kernel's tile of Y: tokens × outputs (shaders/matmul.wgsl TILE_T, TILE_O). */
const TILE_T = 64;
const TILE_O = 64;

/** Outputs per workgroup of the rowdot kernel (ROWDOT_WORKGROUP_SIZE in matmul.wgsl). */
const ROWDOT_WORKGROUP_SIZE = 64;
/**
 * Split K when the 64×64 tiled kernel would run fewer workgroups than this (about 8 per SM on an
 * H200). Measured there (bench --split-groups, bench/RESULTS.md seventh session): mamba-2.8b's
 * x_proj over 2,048 tokens (192 outputs, 5,120 inputs) 300 µs at 256 (3 splits) → 221 µs at 1,024
 * (11 splits); 2,048 no better. tiled_wide runs only at ≥ WIDE_MIN_GROUPS tiles and is not split.
 */
const SPLIT_TARGET_GROUPS = 1024;
/** Fewest in_features per split. */
const MIN_SPLIT_K = 256;
/** Threads per workgroup of reduce_splits. */
const REDUCE_WORKGROUP_SIZE = 256;

export type MatmulEntryPoint = 'tiled' | 'tiled_wide' | 'matvec' | 'matvec_vec4' | 'matvec_blocks' | 'rowdot';
/** tiled_wide's tile of Y: 128 tokens × 128 outputs (WIDE in matmul.wgsl). */
const WIDE = 128;
/**
 * Auto picks tiled_wide (its next step's loads in registers while a step computes) for at least
 * this many 128×128 tiles, WIDE_MIN_TOKENS tokens and WIDE_MIN_IN in_features, on a GPU. Measured
 * on the H200 (bench/RESULTS.md, 2026-12-03 second session), TFLOP/s tiled → tiled_wide: mamba-2.8b
 * in_proj at 2,048 tokens 22.2 → 34.5, out_proj 21.4 → 28.1, 2048³ 21.0 → 33.4; but at 512 tokens
 * in_proj 20.9 → 15, and the 130m shapes (in_features 768 / 1536) no better.
 */
const WIDE_MIN_GROUPS = 256;
const WIDE_MIN_TOKENS = 1024;
const WIDE_MIN_IN = 2048;

export interface MatmulShape {
  tokens: number; // T
  inFeatures: number; // I
  outFeatures: number; // O
  /** Element offset of X[0, 0] in `x` (default 0). */
  xOffset?: number;
  /** Elements between rows of X (default I, ≥ I). */
  xStride?: number;
  /** Element offset of Y[0, 0] in `y` (default 0). */
  yOffset?: number;
  /** Elements between rows of Y (default O, ≥ O). */
  yStride?: number;
  /** Y += X·Wᵀ (+ bias) instead of Y = … (default false). */
  accumulate?: boolean;
  /**
   * Force a kernel (tests, benchmarks); 'matvec' and 'rowdot' need T ≤ 4. Default 'auto': tiled
   * for T > 4; for T ≤ 4 matvec, or rowdot on software adapters (no barriers: SwiftShader runs
   * it several times faster).
   */
  variant?: 'auto' | 'tiled' | 'tiled_wide' | 'matvec' | 'rowdot';
  /** How `weight` is stored (app/kernels/weight-format.ts; default fp32); arithmetic stays fp32. */
  weightFormat?: WeightFormat;
  /**
   * Tiled kernel only: split K over this many workgroups (tests, benchmarks; clamped so that every
   * split has ≥ 16 in_features). Default: from the shape (SPLIT_TARGET_GROUPS, MIN_SPLIT_K).
   */
  splits?: number;
}

export interface MatmulBuffers {
  x: GPUBuffer; // view [T, I]
  weight: GPUBuffer; // [O, I] in weightFormat (weightWords(O·I, format) words)
  bias?: GPUBuffer | null; // [O]
  y: GPUBuffer; // view [T, O]; must not be x
  /**
   * Split-K partials to use instead of allocating them (shared by a model's matmuls, which run one
   * after another; MATMUL_SCRATCH_ELEMENTS holds any automatic split of the 64×64 kernel). Used
   * only when it is big enough.
   */
  scratch?: GPUBuffer | undefined;
}

/**
 * Elements that hold the partials of any automatic split of `tiled`: splitting happens only below
 * SPLIT_TARGET_GROUPS tiles of 64×64, with splits ≤ ceil(SPLIT_TARGET_GROUPS / tiles), so
 * splits·T·O ≤ (SPLIT_TARGET_GROUPS + tiles)·4096 < 2·SPLIT_TARGET_GROUPS·4096.
 */
export const MATMUL_SCRATCH_ELEMENTS = 2 * SPLIT_TARGET_GROUPS * 64 * 64;
/** The MixerBuild.shared key of the model's one split-K scratch buffer, which every mixer of every kind uses (layers run one after another). */
export const MATMUL_SCRATCH_KEY = 'model.matmulScratch';

export interface MatmulDispatch extends Dispatch {
  /** The kernel this dispatch runs. */
  readonly entryPoint: MatmulEntryPoint;
  /** Workgroups K is split over (1: not split; then also a reduce_splits dispatch). */
  readonly splits: number;
}

/** K per split (a multiple of 16) and the resulting split count for the tiled kernel. */
function splitK(T: number, I: number, O: number, tile: number, forced: number | undefined, target: number): { kSplit: number; splits: number } {
  const tiles = Math.ceil(O / tile) * Math.ceil(T / tile);
  const wanted = forced ?? Math.min(Math.ceil(target / tiles), Math.floor(I / MIN_SPLIT_K));
  if (!(wanted >= 2)) return { kSplit: 0, splits: 1 };
  const kSplit = Math.ceil(I / wanted / 16) * 16;
  const splits = Math.ceil(I / kSplit);
  return splits >= 2 ? { kSplit, splits } : { kSplit: 0, splits: 1 };
}

/**
 * Threads per output row in matvec (measured on an H200, vec4 loads): 32 for short rows
 * (I < 1024: dt_proj), a whole workgroup for few long rows (O < 1024: x_proj), else 128
 * (in_proj, out_proj, the LM head run at 2.1–3.6 TB/s with it).
 */
function threadsPerRow(inFeatures: number, outFeatures: number): number {
  if (inFeatures < 1024) return 32;
  return outFeatures < 1024 ? MATVEC_WORKGROUP_SIZE : 128;
}

/**
 * Threads per output row in matvec_blocks, where each thread takes chunks of 32 elements: enough
 * lanes for a row's chunks (I / 32) in few rounds, a whole workgroup for few long rows (x_proj).
 */
function blockThreadsPerRow(inFeatures: number, outFeatures: number): number {
  if (outFeatures < 1024 && inFeatures >= 32 * MATVEC_WORKGROUP_SIZE) return MATVEC_WORKGROUP_SIZE;
  const chunks = inFeatures / 32;
  return chunks >= 128 ? 64 : chunks >= 48 ? 32 : 16;
}

export function matmul(ctx: GpuContext, shape: MatmulShape, buffers: MatmulBuffers, label = OP): MatmulDispatch {
  const { tokens: T, inFeatures: I, outFeatures: O } = shape;
  const xOffset = shape.xOffset ?? 0;
  const xStride = shape.xStride ?? I;
  const yOffset = shape.yOffset ?? 0;
  const yStride = shape.yStride ?? O;
  checkInteger(OP, 'tokens', T, 1);
  checkInteger(OP, 'inFeatures', I, 1);
  checkInteger(OP, 'outFeatures', O, 1);
  checkInteger(OP, 'xOffset', xOffset, 0);
  checkInteger(OP, 'yOffset', yOffset, 0);
  checkInteger(OP, 'xStride', xStride, I);
  checkInteger(OP, 'yStride', yStride, O);
  if (buffers.x === buffers.y) throw new RangeError(`${OP}: x and y must be different buffers (${buffers.y.label})`);
  if (buffers.bias === buffers.y) throw new RangeError(`${OP}: bias and y must be different buffers (${buffers.y.label})`);
  if (buffers.weight === buffers.y) throw new RangeError(`${OP}: weight and y must be different buffers (${buffers.y.label})`);
  const variant = shape.variant ?? 'auto';
  if ((variant === 'matvec' || variant === 'rowdot') && T > MATVEC_MAX_TOKENS) {
    throw new RangeError(`${OP}: the ${variant} variant takes at most ${MATVEC_MAX_TOKENS} tokens, got ${T}`);
  }
  const x = bindElements(ctx, OP, 'x', buffers.x, xOffset + (T - 1) * xStride + I, 16);
  const format = shape.weightFormat ?? 'f32';
  if (I % rowQuantum(format) !== 0) throw new RangeError(`${OP}: inFeatures ${I} is not a whole number of ${format} blocks (${rowQuantum(format)})`);
  const weight = bindElements(ctx, OP, 'weight', buffers.weight, weightWords(O * I, format), 16);
  const bias = buffers.bias ? bindElements(ctx, OP, 'bias', buffers.bias, O, 16) : weight; // unread when has_bias = 0
  const y = bindElements(ctx, OP, 'y', buffers.y, yOffset + (T - 1) * yStride + O, 16);

  const maxGroups = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  let entryPoint: MatmulEntryPoint;
  let constants: Record<string, number> = {};
  let groups: [number, number];
  if (variant === 'rowdot' || (variant === 'auto' && T <= MATVEC_MAX_TOKENS && ctx.adapter.software)) {
    entryPoint = 'rowdot';
    const blocks = Math.ceil(O / ROWDOT_WORKGROUP_SIZE);
    const gx = Math.min(blocks, maxGroups);
    groups = [gx, Math.ceil(blocks / gx)];
  } else if (variant === 'matvec' || (variant === 'auto' && T <= MATVEC_MAX_TOKENS)) {
    const xAligned = xOffset % 4 === 0 && xStride % 4 === 0;
    if (isBlockFormat(format)) entryPoint = xAligned && I % 32 === 0 ? 'matvec_blocks' : 'matvec';
    else entryPoint = xAligned && I % (isHalfFormat(format) ? 8 : 4) === 0 ? 'matvec_vec4' : 'matvec';
    const perRow = entryPoint === 'matvec_blocks' ? blockThreadsPerRow(I, O) : threadsPerRow(I, O);
    constants = { MATVEC_WORKGROUP_SIZE, THREADS_PER_ROW: perRow };
    const blocks = Math.ceil(O / (MATVEC_WORKGROUP_SIZE / perRow));
    const gx = Math.min(blocks, maxGroups);
    groups = [gx, Math.ceil(blocks / gx)];
  } else if (
    variant === 'tiled_wide' ||
    (variant === 'auto' && !ctx.adapter.software && T >= WIDE_MIN_TOKENS && I >= WIDE_MIN_IN && Math.ceil(O / WIDE) * Math.ceil(T / WIDE) >= WIDE_MIN_GROUPS)
  ) {
    entryPoint = 'tiled_wide';
    groups = [Math.ceil(O / WIDE), Math.ceil(T / WIDE)];
  } else {
    entryPoint = 'tiled';
    groups = [Math.ceil(O / TILE_O), Math.ceil(T / TILE_T)];
  }
  const tiled = entryPoint === 'tiled' || entryPoint === 'tiled_wide';
  // tiled_wide has ≥ WIDE_MIN_GROUPS tiles unless forced: split only by the old target (never, automatically).
  const target = entryPoint === 'tiled' ? (ctx.tuning?.splitGroups ?? SPLIT_TARGET_GROUPS) : WIDE_MIN_GROUPS;
  let split = tiled ? splitK(T, I, O, entryPoint === 'tiled' ? TILE_O : WIDE, shape.splits, target) : { kSplit: 0, splits: 1 };
  if (split.splits * T * O * 4 > ctx.device.limits.maxStorageBufferBindingSize) split = { kSplit: 0, splits: 1 };
  if (shape.splits !== undefined) checkInteger(OP, 'splits', shape.splits, 1);
  if (groups[0] > maxGroups || groups[1] > maxGroups || split.splits > maxGroups) {
    throw new RangeError(`${OP}: T=${T}, O=${O} needs ${groups[0]}×${groups[1]} workgroups, over this device's ${maxGroups} per dimension`);
  }

  const { device } = ctx;
  // params, x, weight, bias, y
  const bindGroupLayout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage']);
  if (format !== 'f32') constants = { ...constants, W_FORMAT: WEIGHT_FORMAT_CODE[format] };
  // The matrix-vector kernels add each row's partial sums with subgroupAdd where the device allows.
  const matvecKernel = entryPoint === 'matvec' || entryPoint === 'matvec_vec4' || entryPoint === 'matvec_blocks';
  const sub = subgroupReduction(ctx, matvecKernel ? (constants.THREADS_PER_ROW as number) : 0);
  const shaderCode = sub.prefix + code;
  if (sub.size > 0) constants = { ...constants, SG_SIZE: sub.size };
  const pipeline = ctx.pipelines.get({ op: OP, code: shaderCode, layout: bindGroupLayout, entryPoint, constants });
  const params = uniformBuffer(device, `${label}.params`, 48);
  device.queue.writeBuffer(
    params,
    0,
    new Uint32Array([T, I, O, buffers.bias ? 1 : 0, xOffset, xStride, yOffset, yStride, shape.accumulate ? 1 : 0, 0, 0, 0]),
  );
  if (split.splits > 1) {
    // Pass 1: the tiled kernel writes raw partials [splits, T, O] to `partials`; pass 2 adds them.
    const partialBytes = split.splits * T * O * 4;
    const shared = buffers.scratch && buffers.scratch.size >= partialBytes && buffers.scratch !== buffers.x && buffers.scratch !== buffers.y ? buffers.scratch : null;
    const partials = shared ?? storageBuffer(device, `${label}.partials`, partialBytes);
    const splitParams = uniformBuffer(device, `${label}.splitParams`, 48);
    device.queue.writeBuffer(splitParams, 0, new Uint32Array([T, I, O, 0, xOffset, xStride, 0, O, 0, split.kSplit, 0, 0]));
    device.queue.writeBuffer(params, 0, new Uint32Array([T, I, O, buffers.bias ? 1 : 0, 0, 0, yOffset, yStride, shape.accumulate ? 1 : 0, 0, split.splits, 0]));
    const splitGroup = bindGroupFor(device, `${label}.splitBindGroup`, bindGroupLayout, [{ buffer: splitParams }, x, weight, bias, { buffer: partials }]);
    const reduceGroup = bindGroupFor(device, `${label}.reduceBindGroup`, bindGroupLayout, [{ buffer: params }, { buffer: partials }, weight, bias, y]);
    const reducePipeline = ctx.pipelines.get({ op: OP, code: shaderCode, layout: bindGroupLayout, entryPoint: 'reduce_splits', constants });
    const reduceGroups = foldWorkgroups(Math.ceil((T * O) / REDUCE_WORKGROUP_SIZE), maxGroups);
    const parts = [kernelPart(entryPoint, pipeline, splitGroup, [groups[0], groups[1], split.splits]), kernelPart('reduce_splits', reducePipeline, reduceGroup, reduceGroups)];
    return {
      label,
      entryPoint,
      splits: split.splits,
      encode: encodeParts(parts),
      parts,
      destroy() {
        for (const b of [params, splitParams, ...(shared ? [] : [partials])]) b.destroy();
      },
    };
  }
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, bindGroupLayout, [{ buffer: params }, x, weight, bias, y]);
  return { ...singleDispatch(label, pipeline, bindGroup, groups, [params]), entryPoint, splits: 1 };
}
