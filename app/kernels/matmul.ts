/**
 * Op: a Linear layer over tokens, Y[T, O] = X[T, I] · Wᵀ (+ bias) (+ Y when `accumulate`), with W
 * stored as PyTorch's Linear weight [O, I] (a tied LM head passes the embedding table [V, D]).
 * X and Y are strided views (offset, row stride in elements) into their buffers, so the x half of
 * in_proj's output or one row of a bigger matrix is used in place. Shader: shaders/matmul.wgsl.
 * Reference: matmul.ref.ts.
 *
 * Variants, chosen from the shape: T ≤ 4 (decode) runs a matrix-vector kernel that reads each
 * row of W once for all T tokens (vec4 loads when I, xOffset and xStride are multiples of 4);
 * larger T (prefill) runs a tiled matrix-matrix kernel (64×64 tiles, 4×4 per thread).
 */
import code from '../../shaders/matmul.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { weightWords, type WeightFormat } from './f16.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkInteger, singleDispatch } from './op-helpers.js';

const OP = 'Matmul';
/** Most tokens the matrix-vector kernel takes (its partial sums are one vec4 per thread). */
export const MATVEC_MAX_TOKENS = 4;
const MATVEC_WORKGROUP_SIZE = 256;
/** The tiled kernel's tile of Y: tokens × outputs (shaders/matmul.wgsl TILE_T, TILE_O). */
const TILE_T = 64;
const TILE_O = 64;

/** Outputs per workgroup of the rowdot kernel (ROWDOT_WORKGROUP_SIZE in matmul.wgsl). */
const ROWDOT_WORKGROUP_SIZE = 64;

export type MatmulEntryPoint = 'tiled' | 'matvec' | 'matvec_vec4' | 'rowdot';

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
  variant?: 'auto' | 'tiled' | 'matvec' | 'rowdot';
  /** How `weight` is stored: fp32 (default) or packed halves (app/kernels/f16.ts); arithmetic stays fp32. */
  weightFormat?: WeightFormat;
}

export interface MatmulBuffers {
  x: GPUBuffer; // view [T, I]
  weight: GPUBuffer; // [O, I] (fp32, or packed f16 [⌈O·I/2⌉ words] with weightFormat 'f16')
  bias?: GPUBuffer | null; // [O]
  y: GPUBuffer; // view [T, O]; must not be x
}

export interface MatmulDispatch extends Dispatch {
  /** The kernel this dispatch runs. */
  readonly entryPoint: MatmulEntryPoint;
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
    const aligned = I % (format === 'f16' ? 8 : 4) === 0 && xOffset % 4 === 0 && xStride % 4 === 0;
    entryPoint = aligned ? 'matvec_vec4' : 'matvec';
    const perRow = threadsPerRow(I, O);
    constants = { MATVEC_WORKGROUP_SIZE, THREADS_PER_ROW: perRow };
    const blocks = Math.ceil(O / (MATVEC_WORKGROUP_SIZE / perRow));
    const gx = Math.min(blocks, maxGroups);
    groups = [gx, Math.ceil(blocks / gx)];
  } else {
    entryPoint = 'tiled';
    groups = [Math.ceil(O / TILE_O), Math.ceil(T / TILE_T)];
  }
  if (groups[0] > maxGroups || groups[1] > maxGroups) {
    throw new RangeError(`${OP}: T=${T}, O=${O} needs ${groups[0]}×${groups[1]} workgroups, over this device's ${maxGroups} per dimension`);
  }

  const { device } = ctx;
  // params, x, weight, bias, y
  const bindGroupLayout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage']);
  if (format === 'f16') constants = { ...constants, W_F16: 1 };
  const pipeline = ctx.pipelines.get({ op: OP, code, layout: bindGroupLayout, entryPoint, constants });
  const params = uniformBuffer(device, `${label}.params`, 48);
  device.queue.writeBuffer(
    params,
    0,
    new Uint32Array([T, I, O, buffers.bias ? 1 : 0, xOffset, xStride, yOffset, yStride, shape.accumulate ? 1 : 0, 0, 0, 0]),
  );
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, bindGroupLayout, [{ buffer: params }, x, weight, bias, y]);
  return { ...singleDispatch(label, pipeline, bindGroup, groups, [params]), entryPoint };
}
