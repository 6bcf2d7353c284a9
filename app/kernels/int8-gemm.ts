/**
 * Op: the int8 path of a matrix product Y = X·Wᵀ (issue 19 item 1). The GPUs that offer tensor
 * cores to WebGPU (Dawn's 'chromium-experimental-subgroup-matrix') offer them for int8 only, so:
 *   quantizeRowsI8   X [rows, cols] fp32 → int8 codes (one scale per row, max|x| / 127), rows
 *                    and columns zero-padded to INT8_TILE (shaders/int8_gemm.wgsl `quantize`);
 *                    optionally each row first rotated by a block-diagonal Hadamard matrix
 *                    (`rotate`, `quantize_rot`: X·Wᵀ = (X·H)·(W·H)ᵀ with both rotated alike),
 *                    which spreads a row's outliers so that its one scale loses less;
 *   int8Gemm         Y [M, N] = sa[m]·sw[n]·Σ_k qa[m, k]·qw[n, k], exact in i32, on the tensor
 *                    cores where the device offers the i8 16×16×32 config (shaders/int8_gemm_tc.wgsl),
 *                    else one invocation per output (int8_gemm.wgsl `gemm`): the same sums.
 * Weights are quantized once (the same op on their rows), activations per call. Per-row int8 loses
 * ~1–4 % of a product where activations have outlier columns (bench/RESULTS.md, issue 19 item 1):
 * a fast path with a stated tolerance, not the traces' fp32. Not yet used by the model's plans.
 * CPU reference: int8-gemm.ref.ts.
 */
import int8Code from '../../shaders/int8_gemm.wgsl?raw';
import tcCode from '../../shaders/int8_gemm_tc.wgsl?raw';
import bigCode from '../../shaders/int8_gemm_big.wgsl?raw';
import tcCommonCode from '../../shaders/int8_tc_common.wgsl?raw';
import stageCode from '../../shaders/int8_stage.wgsl?raw';
import reduceCode from '../../shaders/int8_reduce.wgsl?raw';
import storeCode from '../../shaders/int8_store.wgsl?raw';
import sigmoidCode from '../../shaders/sigmoid.wgsl?raw';
import weightsCode from '../../shaders/weights.wgsl?raw';
import workgroupSumCode from '../../shaders/workgroup_sum.wgsl?raw';
import { offersInt8TensorCores } from '../gpu/adapter.js';
import { storageBuffer, uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext, TcKernelName } from '../gpu/context.js';
import { encodeParts, kernelPart, type Dispatch } from './dispatch.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkBufferElements, checkCount, checkWrittenNotAliased, foldWorkgroups, placeholderBuffer, singleDispatch } from './op-helpers.js';
import { int8Words, MAX_ROTATION, roundUp } from './int8-layout.js';
import { subgroupHelpers, subgroupReduction } from './subgroups.js';
import { rowQuantum, WEIGHT_FORMAT_CODE, weightWords, type WeightFormat } from './weight-format.js';

export { INT8_TILE, int8RotationBlock, int8Words, MAX_ROTATION, roundUp } from './int8-layout.js';

const OP = 'Int8Gemm';
/**
 * The portable kernels read X through weights.wgsl's w_at (any storage format), the gated quantize
 * sums through workgroup_sum.wgsl; both gemms write through int8_store.wgsl. The tensor-core
 * kernels take their params, bindings and code reads from int8_tc_common.wgsl and int8_gemm_tc.wgsl's
 * stage K through int8_stage.wgsl (all after the kernel file's enable directives).
 */
const codeI8 = sigmoidCode + weightsCode + workgroupSumCode + int8Code + storeCode;
/** The tensor-core kernels' modules (exported for the test that resolves them on any adapter, their matrix builtins stood in). */
export const codeTc = tcCode + tcCommonCode + stageCode + storeCode;
export const codeTcBig = bigCode + tcCommonCode + storeCode;
const codeReduce = reduceCode + storeCode;
/** K bytes a stage of the tensor-core kernels takes (BK in int8_gemm_tc.wgsl): a split takes whole stages. */
const STAGE_BYTES = 64;
/** Threads per workgroup of int8_reduce.wgsl. */
const REDUCE_WORKGROUP = 256;
/** Bytes of the kernels' params (int8_gemm.wgsl's Params; int8_gemm_tc.wgsl's and int8_reduce.wgsl's are its first 32). */
const PARAMS_BYTES = 64;
const QUANTIZE_WORKGROUP = 256;


/**
 * Why int8Gemm cannot run on the tensor cores here, or null where it can: the adapter offers them
 * (offersInt8TensorCores), the device took the features, and its limits take the smallest kernel
 * ('single': 20 KiB of workgroup memory, over WebGPU's default 16 KiB).
 */
export function int8TensorCoreRefusal(ctx: GpuContext): string | null {
  const a = ctx.adapter;
  if (!ctx.device.features.has('chromium-experimental-subgroup-matrix') || !ctx.device.features.has('subgroups') || !offersInt8TensorCores(a)) {
    return 'this device offers no int8 tensor cores (the feature chromium-experimental-subgroup-matrix with an i8 16×16×32 config and one subgroup size)';
  }
  return tcKernelRefusal(ctx, { subgroupSize: a.subgroupMaxSize as number }, 'single');
}

/** Whether int8Gemm runs on the tensor cores here (int8TensorCoreRefusal is null), and on subgroups of what size. */
export function int8TensorCores(ctx: GpuContext): { subgroupSize: number } | null {
  return int8TensorCoreRefusal(ctx) === null ? { subgroupSize: ctx.adapter.subgroupMaxSize as number } : null;
}


export interface QuantizeShape {
  rows: number;
  cols: number;
  /** How X is stored (weight-format.ts; default fp32): weights are quantized from their storage format. */
  format?: WeightFormat;
  /** X's first element (default 0; fp32 only). */
  xOffset?: number;
  /** Elements between X's rows (default cols, ≥ cols; fp32 only). */
  xStride?: number;
  /**
   * Rotate each row by the block-diagonal Hadamard matrix of this block (a power of two, 4 to
   * MAX_ROTATION, dividing cols; orthonormal) before quantizing: the codes are of X·H. Default 0: none.
   */
  rotate?: number;
  /**
   * X is Mamba-2's gated RMSNorm of one group over the row, not computed: X[r, c] = u·g[c]·s_r
   * with u = x[r, c]·silu(z[r, c]) and s_r = rsqrt(Σ_c u² / cols + eps) (x: fp32, offset 0,
   * stride cols; z a strided view). Needs `rotate`; the codes are those of (u·g)·H and s_r goes
   * into the row's scale (codes do not change with a factor on the whole row). Buffers z and g.
   */
  gated?: { zOffset: number; zStride: number; eps: number };
  /**
   * X is the block's residual add and RMSNorm (residual-rmsnorm.ts), not computed: with v = s·x[r, c]
   * (+ residual[r, c] when hasResidual), residual[r, c] := v, and X[r, c] = v·g[c]·s_r·o with s_r =
   * rsqrt(Σ_c v² / cols + eps). Needs `rotate` and an fp32 x [rows, cols] (offset 0, stride cols);
   * s_r·o goes into the row's scale as gated's. Buffers residual [rows, cols] (updated) and g.
   */
  residual?: { hasResidual: boolean; hiddenScale?: number; outScale?: number; eps: number };
}

/**
 * Quantizes the rows of X [rows, cols] (a strided fp32 view, or a whole matrix in its storage
 * format): `codes` gets [roundUp(rows), int8Words(cols)] words, `scales` [roundUp(rows)] floats
 * (padding rows: zero codes and scale 0).
 */
export function quantizeRowsI8(
  ctx: GpuContext,
  shape: QuantizeShape,
  buffers: { x: GPUBuffer; codes: GPUBuffer; scales: GPUBuffer; z?: GPUBuffer; g?: GPUBuffer; residual?: GPUBuffer },
  label = `${OP}.quantize`,
): Dispatch {
  const { rows, cols } = shape;
  const format = shape.format ?? 'f32';
  const xOffset = shape.xOffset ?? 0;
  const xStride = shape.xStride ?? cols;
  checkCount(OP, 'rows', rows, 1);
  checkCount(OP, 'cols', cols, 1);
  checkCount(OP, 'xOffset', xOffset, 0);
  checkCount(OP, 'xStride', xStride, cols);
  if (format !== 'f32' && (xOffset !== 0 || xStride !== cols)) throw new RangeError(`${OP}: a ${format} matrix is quantized whole (offset 0, stride = cols)`);
  if (cols % rowQuantum(format) !== 0) throw new RangeError(`${OP}: ${cols} columns are not a whole number of ${format} blocks (${rowQuantum(format)})`);
  const rotate = shape.rotate ?? 0;
  if (rotate !== 0 && !(Number.isInteger(rotate) && rotate >= 4 && rotate <= MAX_ROTATION && (rotate & (rotate - 1)) === 0 && cols % rotate === 0)) {
    throw new RangeError(`${OP}: a Hadamard block must be a power of two from 4 to ${MAX_ROTATION} dividing the ${cols} columns, got ${rotate}`);
  }
  const { gated, residual } = shape;
  if (gated && residual) throw new RangeError(`${OP}: one norm folds into a quantize, not the gated and the residual norm both`);
  const folded = gated ? 'the gated norm' : residual ? 'the residual norm' : null;
  if (folded) {
    if (!rotate) throw new RangeError(`${OP}: ${folded} is folded into the rotating quantize only (give rotate)`);
    if (format !== 'f32' || xOffset !== 0 || xStride !== cols) throw new RangeError(`${OP}: ${folded}'s ${gated ? 'y' : 'hidden'} is fp32 [rows, cols] (offset 0, stride cols)`);
    const eps = (gated ?? residual)?.eps as number;
    if (!(eps > 0 && Number.isFinite(eps))) throw new RangeError(`${OP}: ${folded}'s eps must be positive, got ${eps}`);
    if (!buffers.g) throw new RangeError(`${OP}: ${folded} needs ${gated ? 'z and g' : 'residual and g'}`);
    checkBufferElements(OP, 'g', buffers.g, cols);
  }
  if (gated) {
    checkCount(OP, 'gated.zOffset', gated.zOffset, 0);
    checkCount(OP, 'gated.zStride', gated.zStride, cols);
    if (!buffers.z) throw new RangeError(`${OP}: the gated norm needs z and g`);
    checkBufferElements(OP, 'z', buffers.z, gated.zOffset + (rows - 1) * gated.zStride + cols);
  }
  const hiddenScale = residual?.hiddenScale ?? 1;
  const outScale = residual?.outScale ?? 1;
  if (residual) {
    if (!buffers.residual) throw new RangeError(`${OP}: the residual norm needs residual and g`);
    if (!Number.isFinite(hiddenScale) || !Number.isFinite(outScale)) throw new RangeError(`${OP}: the residual norm's scales must be finite, got ${hiddenScale} and ${outScale}`);
    checkBufferElements(OP, 'residual', buffers.residual, rows * cols);
  }
  const padRows = roundUp(rows);
  const words = int8Words(cols);
  if (padRows > ctx.device.limits.maxComputeWorkgroupsPerDimension) throw new RangeError(`${OP}: ${rows} rows are more than one dispatch's workgroups (${ctx.device.limits.maxComputeWorkgroupsPerDimension})`);
  const x = bindElements(ctx, OP, 'x', buffers.x, format === 'f32' ? xOffset + (rows - 1) * xStride + cols : weightWords(rows * cols, format), 16);
  checkBufferElements(OP, 'codes', buffers.codes, padRows * words);
  checkBufferElements(OP, 'scales', buffers.scales, padRows);
  const read: [string, GPUBuffer][] = [['x', buffers.x], ...(gated ? ([['z', buffers.z]] as [string, GPUBuffer][]) : []), ...(folded ? ([['g', buffers.g]] as [string, GPUBuffer][]) : [])];
  checkWrittenNotAliased(OP, read, [['codes', buffers.codes], ['scales', buffers.scales], ...(residual ? ([['residual', buffers.residual]] as [string, GPUBuffer][]) : [])]);
  const { device } = ctx;
  // quantize_rot's loads name the folded norms' z, g and residual (bindings 4, 5, 6) whichever it
  // folds: its layout has them, z and g bound to x where unread, the residual to a placeholder.
  const layout = rotate
    ? bindGroupLayoutFor(ctx, `${OP}.quantizeRot`, ['uniform', 'read-only-storage', 'storage', 'storage', 'read-only-storage', 'read-only-storage', 'storage'])
    : bindGroupLayoutFor(ctx, `${OP}.quantize`, ['uniform', 'read-only-storage', 'storage', 'storage']);
  // The quantizers' max, Σ u² and butterflies by subgroups where they divide the workgroup (int8_gemm.wgsl SG_SIZE).
  const sub = subgroupReduction(ctx, QUANTIZE_WORKGROUP);
  const constants = { WORKGROUP_SIZE: QUANTIZE_WORKGROUP, W_FORMAT: WEIGHT_FORMAT_CODE[format], SG_SIZE: sub.size, ...(rotate ? { ROT: rotate, PASSES: Math.ceil(cols / (4 * QUANTIZE_WORKGROUP)) } : {}), ...(gated ? { GATED: 1 } : {}), ...(residual ? { RESIDUAL: 1 } : {}) };
  const pipeline = ctx.pipelines.get({ op: OP, code: sub.prefix + codeI8, entryPoint: rotate ? 'quantize_rot' : 'quantize', layout, constants });
  const params = uniformBuffer(device, `${label}.params`, PARAMS_BYTES);
  const data = new Uint32Array([rows, cols, words, xOffset, xStride, 0, 0, 0, gated?.zOffset ?? 0, gated?.zStride ?? 0, 0, residual?.hasResidual ? 1 : 0, 0, 0, 0, 0]);
  new Float32Array(data.buffer, 40, 1)[0] = (gated ?? residual)?.eps ?? 0;
  new Float32Array(data.buffer, 48, 2).set([hiddenScale, outScale]);
  device.queue.writeBuffer(params, 0, data);
  const owned = [params];
  const resources: GPUBindingResource[] = [
    { buffer: params },
    x,
    { buffer: buffers.codes },
    { buffer: buffers.scales },
    ...(rotate
      ? [
          { buffer: gated ? (buffers.z as GPUBuffer) : buffers.x },
          { buffer: folded ? (buffers.g as GPUBuffer) : buffers.x },
          { buffer: residual ? (buffers.residual as GPUBuffer) : placeholderBuffer(device, `${label}.noResidual`, owned) },
        ]
      : []),
  ];
  const group = bindGroupFor(device, `${label}.bindGroup`, layout, resources);
  return singleDispatch(label, pipeline, group, [padRows], owned);
}

/**
 * The tensor-core kernel: 'single' (int8_gemm_tc.wgsl `main`: a stage loaded, a barrier, computed,
 * a barrier), 'double' (`main_db`: the codes of the next two stages in registers while this one
 * computes, two staging buffers; subgroups of 32 only), 'wide' (`main_wide`: main_db's staging
 * with one stage in flight, 128 × 128 tiles of 8 subgroups, each 32 × 64; subgroups of 32 and
 * 40 KB of workgroup memory), 'wide-deep' (the same with two stages in flight: slower than 'wide'
 * in the model on the H200, bench/RESULTS.md tenth session, so never a default), 'quad' and 'big'
 * (int8_gemm_big.wgsl `main_big`: each subgroup 64 × 64 of Y, stages of one K step; 128 × 128 tiles
 * of 4 subgroups, 28 KB, or 256 × 128 of 8, 44 KB; slower than 'wide' in the model on the H100,
 * bench/RESULTS.md fifteenth session: bench flags only).
 */
export type TcKernel = TcKernelName;

/**
 * Each kernel's entry point, module ('tc': int8_gemm_tc.wgsl with int8_stage.wgsl; 'big':
 * int8_gemm_big.wgsl), tile (rows of Y: tileM, columns: tileN), subgroups a workgroup, workgroup
 * memory (bytes) and pipeline constants besides the subgroup size.
 */
export const TC_KERNELS: Record<TcKernel, { entryPoint: string; module: 'tc' | 'big'; tileM: number; tileN: number; subgroups: number; workgroupBytes: number; constants: Record<string, number> }> = {
  single: tcKernelSpec('main', 64, 4),
  double: tcKernelSpec('main_db', 64, 4),
  wide: tcKernelSpec('main_wide', 128, 8),
  'wide-deep': tcKernelSpec('main_wide', 128, 8, { WIDE_DEEP: 1 }),
  quad: bigKernelSpec(128),
  big: bigKernelSpec(256),
};

/**
 * An int8_gemm_tc.wgsl kernel of square tiles: its workgroup memory is int8_stage.wgsl's d_a and
 * d_w (two buffers × two operands × tile rows of STAGE_BYTES + 16 bytes).
 */
function tcKernelSpec(entryPoint: string, tile: number, subgroups: number, constants: Record<string, number> = {}) {
  return { entryPoint, module: 'tc' as const, tileM: tile, tileN: tile, subgroups, workgroupBytes: 2 * 2 * tile * (STAGE_BYTES + 16), constants: { BT: tile, NSG: subgroups, ...constants } };
}

/**
 * int8_gemm_big.wgsl's kernel with tiles of BM × 128: BM / 64 × 2 subgroups; d_a, d_w (two buffers
 * of BM and 128 rows of 32 + 16 bytes) and d_c (a 16 × 16 i32 result a subgroup).
 */
function bigKernelSpec(bm: number) {
  const subgroups = (bm / 64) * 2;
  return { entryPoint: 'main_big', module: 'big' as const, tileM: bm, tileN: 128, subgroups, workgroupBytes: 2 * (bm + 128) * 48 + subgroups * 1024, constants: { BM: bm } };
}

/** Why this device cannot run a tensor-core kernel, or null where it can (tc: int8TensorCores). */
export function tcKernelRefusal(ctx: GpuContext, tc: { subgroupSize: number }, kernel: TcKernel): string | null {
  // 'single' takes any subgroup size (its SG is the device's); the others are written for 32.
  if (kernel !== 'single' && tc.subgroupSize !== 32) return `the ${kernel} tensor-core kernel takes subgroups of 32, this device's are ${tc.subgroupSize}`;
  const { subgroups, workgroupBytes: bytes } = TC_KERNELS[kernel];
  const limits = ctx.device.limits;
  if (limits.maxComputeWorkgroupStorageSize < bytes) return `the ${kernel} tensor-core kernel needs ${bytes} bytes of workgroup memory, this device allows ${limits.maxComputeWorkgroupStorageSize}`;
  const invocations = subgroups * tc.subgroupSize;
  if (limits.maxComputeInvocationsPerWorkgroup < invocations || limits.maxComputeWorkgroupSizeX < invocations) return `the ${kernel} tensor-core kernel needs workgroups of ${invocations} invocations`;
  return null;
}

/**
 * The tensor-core kernels int8Gemm prefers unless told, best first; it runs the first this device
 * takes (tcKernelRefusal). 'double' measured on the H200 at 1.4–1.7× 'single' (mamba-2.8b in_proj
 * at 2,048 tokens 0.78 against 1.10 ms, out_proj 0.40 against 0.67 ms; bench/RESULTS.md).
 */
export const TC_KERNEL_ORDER: readonly TcKernel[] = ['wide', 'double', 'single'];

/** The kernel int8Gemm runs on this device unless told. */
export function defaultTcKernel(ctx: GpuContext, tc: { subgroupSize: number }): TcKernel {
  return TC_KERNEL_ORDER.find((k) => tcKernelRefusal(ctx, tc, k) === null) ?? 'single';
}

/**
 * How many K splits a tensor-core product of `tiles` workgroups and `stages` stages of K runs over
 * when the workgroups are asked to reach `target` (tuning.int8SplitGroups): as few as reach it,
 * each split at least one stage; 1 (not split) at or above the target, or without one. Every
 * workgroup of a product with few tiles walks the whole of K alone (mamba-130m's out_proj, 1,536
 * inputs on 96 tiles at 2,048 tokens: 45 µs at 512 tokens and at 2,048 alike, bench/RESULTS.md
 * seventh session), so splitting K puts more of the GPU on it; a reduce pass adds the splits.
 */
export function int8SplitCount(tiles: number, stages: number, target: number | undefined): { splits: number; stagesPerSplit: number } {
  if (!target || tiles >= target || stages < 2) return { splits: 1, stagesPerSplit: stages };
  return splitStages(stages, Math.ceil(target / tiles));
}

/** `stages` cut into about `wanted` splits of whole stages (at most one a stage), none empty. */
function splitStages(stages: number, wanted: number): { splits: number; stagesPerSplit: number } {
  const stagesPerSplit = Math.ceil(stages / Math.min(wanted, stages));
  return { splits: Math.ceil(stages / stagesPerSplit), stagesPerSplit };
}

export interface Int8GemmShape {
  m: number;
  n: number;
  k: number;
  /** Y's first element (default 0). */
  yOffset?: number;
  /** Elements between Y's rows (default n, ≥ n). */
  yStride?: number;
  /** Y += … instead of Y = … (default false). */
  accumulate?: boolean;
}

/**
 * Y [M, N] (fp32, row m at yOffset + m·yStride) = (Y +) sa[m]·sw[n]·Σ_k qa[m, k]·qw[n, k] (+ bias[n])
 * from int8 codes of X [M, K] and W [N, K] (quantizeRowsI8 of each, K the same) and their row
 * scales. `variant`: 'tensor-cores' (refused where int8TensorCores is null) or 'portable';
 * default the tensor cores where offered.
 */
export function int8Gemm(
  ctx: GpuContext,
  shape: Int8GemmShape,
  buffers: { qa: GPUBuffer; sa: GPUBuffer; qw: GPUBuffer; sw: GPUBuffer; y: GPUBuffer; bias?: GPUBuffer | null },
  options: {
    variant?: 'tensor-cores' | 'portable';
    tcKernel?: TcKernel;
    /**
     * Split K over this many workgroups (whole stages of 64 bytes each; tests, benchmarks).
     * Default: none, or on the tensor cores as tuning.int8SplitGroups asks (int8SplitCount).
     */
    splits?: number;
    /**
     * Partials to use instead of allocating them: a model's shared split-K scratch
     * (MATMUL_SCRATCH_ELEMENTS). An automatic split's partials, splits · M · N < 2 · target · 128²
     * (splits ≤ ceil(target / tiles), tiles < target), fit it up to a target of 256; a split that
     * does not fit a given scratch is not made (no buffer of the op's own in a model's plan).
     */
    scratch?: GPUBuffer | null;
  } = {},
  label = OP,
): Dispatch {
  const { m: M, n: N, k: K } = shape;
  const yOffset = shape.yOffset ?? 0;
  const yStride = shape.yStride ?? N;
  checkCount(OP, 'm', M, 1);
  checkCount(OP, 'n', N, 1);
  checkCount(OP, 'k', K, 1);
  checkCount(OP, 'yOffset', yOffset, 0);
  checkCount(OP, 'yStride', yStride, N);
  const words = int8Words(K);
  checkBufferElements(OP, 'qa', buffers.qa, roundUp(M) * words);
  checkBufferElements(OP, 'qw', buffers.qw, roundUp(N) * words);
  checkBufferElements(OP, 'sa', buffers.sa, roundUp(M));
  checkBufferElements(OP, 'sw', buffers.sw, roundUp(N));
  const y = bindElements(ctx, OP, 'y', buffers.y, yOffset + (M - 1) * yStride + N);
  if (buffers.bias) checkBufferElements(OP, 'bias', buffers.bias, N);
  const read: [string, GPUBuffer][] = [['qa', buffers.qa], ['qw', buffers.qw], ['sa', buffers.sa], ['sw', buffers.sw]];
  if (buffers.bias) read.push(['bias', buffers.bias]);
  checkWrittenNotAliased(OP, read, [['y', buffers.y]]);
  const tc = int8TensorCores(ctx);
  const variant = options.variant ?? (tc ? 'tensor-cores' : 'portable');
  if (variant === 'tensor-cores' && !tc) throw new RangeError(`${OP}: ${int8TensorCoreRefusal(ctx) ?? 'no int8 tensor cores'}`);
  const { device } = ctx;
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  // Both kernels bind params, qa, qw, sa, sw, y, bias as 0..6; their params differ only in K (bytes / words per row).
  const layout = bindGroupLayoutFor(ctx, `${OP}.gemm`, ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'read-only-storage']);
  const tensorCores = variant === 'tensor-cores';
  const tcKernel = options.tcKernel ?? ctx.tuning?.int8TcKernel ?? (tc ? defaultTcKernel(ctx, tc) : 'single');
  const refusal = tensorCores && tc ? tcKernelRefusal(ctx, tc, tcKernel) : null;
  if (refusal) throw new RangeError(`${OP}: ${refusal}`);
  const kernel = TC_KERNELS[tcKernel];
  const groups: [number, number] = tensorCores ? [Math.ceil(N / kernel.tileN), Math.ceil(M / kernel.tileM)] : [Math.ceil(N / 16), Math.ceil(M / 16)];
  if (groups[0] > maxGroups || groups[1] > maxGroups) throw new RangeError(`${OP}: ${M} × ${N} needs more than ${maxGroups} workgroups along a side`);
  const pipeline = tensorCores
    ? ctx.pipelines.get({ op: `${OP}.tc`, code: kernel.module === 'big' ? codeTcBig : codeTc, entryPoint: kernel.entryPoint, layout, constants: { SG: (tc as { subgroupSize: number }).subgroupSize, ...kernel.constants } })
    : ctx.pipelines.get({ op: OP, code: subgroupHelpers(false) + codeI8, entryPoint: 'gemm', layout, constants: {} });
  const params = uniformBuffer(device, `${label}.params`, PARAMS_BYTES);
  const flags = (shape.accumulate ? 1 : 0) | (buffers.bias ? 2 : 0);
  const kWord = tensorCores ? roundUp(K) : words;
  // Without a bias, binding 6 takes sw (unread: flags & 2 is 0).
  const bias = { buffer: buffers.bias ?? buffers.sw };
  const stages = roundUp(K) / STAGE_BYTES;
  let split: { splits: number; stagesPerSplit: number };
  if (options.splits !== undefined) {
    checkCount(OP, 'splits', options.splits, 1);
    split = splitStages(stages, options.splits);
  } else split = tensorCores ? int8SplitCount(groups[0] * groups[1], stages, ctx.tuning?.int8SplitGroups) : { splits: 1, stagesPerSplit: stages };
  const partialBytes = split.splits * M * N * 4;
  const given = options.scratch ?? null;
  if (split.splits > maxGroups || partialBytes > Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) || (given && given.size < partialBytes)) split = { splits: 1, stagesPerSplit: stages };
  if (split.splits === 1) {
    device.queue.writeBuffer(params, 0, new Uint32Array([M, N, kWord, yOffset, yStride, flags, 0, 0]));
    const group = bindGroupFor(device, `${label}.bindGroup`, layout, [{ buffer: params }, { buffer: buffers.qa }, { buffer: buffers.qw }, { buffer: buffers.sa }, { buffer: buffers.sw }, y, bias]);
    return singleDispatch(label, pipeline, group, groups, [params]);
  }
  // Pass 1: each split's raw i32 sums to the partials [splits, M, N]; pass 2 adds them and writes Y.
  if (given && [buffers.qa, buffers.qw, buffers.sa, buffers.sw, buffers.y, buffers.bias].includes(given)) throw new RangeError(`${OP}: the split-K scratch (${given.label}) is also an operand`);
  const partials = given ?? storageBuffer(device, `${label}.partials`, partialBytes);
  device.queue.writeBuffer(params, 0, new Uint32Array([M, N, kWord, 0, N, 0, split.stagesPerSplit * STAGE_BYTES, 0]));
  const reduceParams = uniformBuffer(device, `${label}.reduceParams`, PARAMS_BYTES);
  device.queue.writeBuffer(reduceParams, 0, new Uint32Array([M, N, split.splits, yOffset, yStride, flags, 0, 0]));
  const splitGroup = bindGroupFor(device, `${label}.splitBindGroup`, layout, [{ buffer: params }, { buffer: buffers.qa }, { buffer: buffers.qw }, { buffer: buffers.sa }, { buffer: buffers.sw }, { buffer: partials }, bias]);
  // Binding 1 holds the partials; binding 2 is unread by the reduce (qw fills the layout's slot).
  const reduceGroup = bindGroupFor(device, `${label}.reduceBindGroup`, layout, [{ buffer: reduceParams }, { buffer: partials }, { buffer: buffers.qw }, { buffer: buffers.sa }, { buffer: buffers.sw }, y, bias]);
  const reducePipeline = ctx.pipelines.get({ op: `${OP}.reduce`, code: codeReduce, entryPoint: 'reduce', layout, constants: {} });
  const parts = [
    kernelPart(tensorCores ? kernel.entryPoint : 'gemm', pipeline, splitGroup, [groups[0], groups[1], split.splits]),
    kernelPart('reduce', reducePipeline, reduceGroup, foldWorkgroups(Math.ceil((M * N) / REDUCE_WORKGROUP), maxGroups)),
  ];
  return {
    label,
    encode: encodeParts(parts),
    parts,
    destroy() {
      for (const b of [params, reduceParams, ...(given ? [] : [partials])]) b.destroy();
    },
  };
}
