/**
 * Op: the int8 path of a matrix product Y = X·Wᵀ (issue 19 item 1). The GPUs that offer tensor
 * cores to WebGPU (Dawn's 'chromium-experimental-subgroup-matrix') offer them for int8 only, so:
 *   quantizeRowsI8   X [rows, cols] fp32 → int8 codes (one scale per row, max|x| / 127), rows
 *                    and columns zero-padded to INT8_TILE (shaders/int8_gemm.wgsl `quantize`);
 *   int8Gemm         Y [M, N] = sa[m]·sw[n]·Σ_k qa[m, k]·qw[n, k], exact in i32, on the tensor
 *                    cores where the device offers the i8 16×16×32 config (shaders/int8_gemm_tc.wgsl),
 *                    else one invocation per output (int8_gemm.wgsl `gemm`): the same sums.
 * Weights are quantized once (the same op on their rows), activations per call. Per-row int8 loses
 * ~1–4 % of a product where activations have outlier columns (bench/RESULTS.md, issue 19 item 1):
 * a fast path with a stated tolerance, not the traces' fp32. Not yet used by the model's plans.
 * CPU reference: int8-gemm.ref.ts.
 */
import codeI8 from '../../shaders/int8_gemm.wgsl?raw';
import codeTc from '../../shaders/int8_gemm_tc.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindGroupFor, bindGroupLayoutFor, checkBufferElements, checkCount, checkWrittenNotAliased, singleDispatch } from './op-helpers.js';

const OP = 'Int8Gemm';
/** Rows, columns and K are padded to multiples of this (the tensor-core kernel's tile; K in bytes). */
export const INT8_TILE = 64;
const QUANTIZE_WORKGROUP = 256;

export const roundUp = (v: number, to = INT8_TILE) => Math.ceil(v / to) * to;

/** Whether int8Gemm runs on the tensor cores here: the feature, the i8 16×16×32 config and one subgroup size. */
export function int8TensorCores(ctx: GpuContext): { subgroupSize: number } | null {
  const a = ctx.adapter;
  if (!ctx.device.features.has('chromium-experimental-subgroup-matrix') || !ctx.device.features.has('subgroups')) return null;
  const config = (a.subgroupMatrixConfigs ?? []).some((c) => c.componentType === 'i8' && c.resultComponentType === 'i32' && c.M === 16 && c.N === 16 && c.K === 32);
  if (!config || !a.subgroupMaxSize || a.subgroupMinSize !== a.subgroupMaxSize) return null;
  return { subgroupSize: a.subgroupMaxSize };
}

/** i32 words per code row of `cols` columns (padded to INT8_TILE). */
export const int8Words = (cols: number) => roundUp(cols) / 4;

/**
 * Quantizes the rows of X [rows, cols] fp32: `codes` gets [roundUp(rows), int8Words(cols)] words,
 * `scales` [roundUp(rows)] floats (padding rows: zero codes and scale 0).
 */
export function quantizeRowsI8(ctx: GpuContext, shape: { rows: number; cols: number }, buffers: { x: GPUBuffer; codes: GPUBuffer; scales: GPUBuffer }, label = `${OP}.quantize`): Dispatch {
  const { rows, cols } = shape;
  checkCount(OP, 'rows', rows, 1);
  checkCount(OP, 'cols', cols, 1);
  const padRows = roundUp(rows);
  const words = int8Words(cols);
  if (padRows > ctx.device.limits.maxComputeWorkgroupsPerDimension) throw new RangeError(`${OP}: ${rows} rows are more than one dispatch's workgroups (${ctx.device.limits.maxComputeWorkgroupsPerDimension})`);
  checkBufferElements(OP, 'x', buffers.x, rows * cols);
  checkBufferElements(OP, 'codes', buffers.codes, padRows * words);
  checkBufferElements(OP, 'scales', buffers.scales, padRows);
  checkWrittenNotAliased(OP, [['x', buffers.x]], [['codes', buffers.codes], ['scales', buffers.scales]]);
  const { device } = ctx;
  const layout = bindGroupLayoutFor(ctx, `${OP}.quantize`, ['uniform', 'read-only-storage', 'storage', 'storage']);
  const pipeline = ctx.pipelines.get({ op: OP, code: codeI8, entryPoint: 'quantize', layout, constants: { WORKGROUP_SIZE: QUANTIZE_WORKGROUP } });
  const params = uniformBuffer(device, `${label}.params`, 16);
  device.queue.writeBuffer(params, 0, new Uint32Array([rows, cols, words, 0]));
  const group = bindGroupFor(device, `${label}.bindGroup`, layout, [{ buffer: params }, { buffer: buffers.x }, { buffer: buffers.codes }, { buffer: buffers.scales }]);
  return singleDispatch(label, pipeline, group, [padRows], [params]);
}

/**
 * Y [M, N] (row-major, fp32) from int8 codes of X [M, K] and W [N, K] (quantizeRowsI8 of each,
 * K the same) and their row scales. `variant`: 'tensor-cores' (refused where int8TensorCores is
 * null) or 'portable'; default the tensor cores where offered.
 */
export function int8Gemm(
  ctx: GpuContext,
  shape: { m: number; n: number; k: number },
  buffers: { qa: GPUBuffer; sa: GPUBuffer; qw: GPUBuffer; sw: GPUBuffer; y: GPUBuffer },
  options: { variant?: 'tensor-cores' | 'portable' } = {},
  label = OP,
): Dispatch {
  const { m: M, n: N, k: K } = shape;
  checkCount(OP, 'm', M, 1);
  checkCount(OP, 'n', N, 1);
  checkCount(OP, 'k', K, 1);
  const words = int8Words(K);
  checkBufferElements(OP, 'qa', buffers.qa, roundUp(M) * words);
  checkBufferElements(OP, 'qw', buffers.qw, roundUp(N) * words);
  checkBufferElements(OP, 'sa', buffers.sa, roundUp(M));
  checkBufferElements(OP, 'sw', buffers.sw, roundUp(N));
  checkBufferElements(OP, 'y', buffers.y, M * N);
  checkWrittenNotAliased(OP, [['qa', buffers.qa], ['qw', buffers.qw], ['sa', buffers.sa], ['sw', buffers.sw]], [['y', buffers.y]]);
  const tc = int8TensorCores(ctx);
  const variant = options.variant ?? (tc ? 'tensor-cores' : 'portable');
  if (variant === 'tensor-cores' && !tc) throw new RangeError(`${OP}: this device offers no int8 tensor cores (the feature chromium-experimental-subgroup-matrix with an i8 16×16×32 config and one subgroup size)`);
  const { device } = ctx;
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  // Both kernels bind params, qa, qw, sa, sw, y as 0..5; their params differ (K in bytes / words per row).
  const layout = bindGroupLayoutFor(ctx, `${OP}.gemm`, ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage']);
  const tensorCores = variant === 'tensor-cores';
  const groups: [number, number] = tensorCores ? [roundUp(N) / INT8_TILE, roundUp(M) / INT8_TILE] : [Math.ceil(N / 16), Math.ceil(M / 16)];
  if (groups[0] > maxGroups || groups[1] > maxGroups) throw new RangeError(`${OP}: ${M} × ${N} needs more than ${maxGroups} workgroups along a side`);
  const pipeline = tensorCores
    ? ctx.pipelines.get({ op: `${OP}.tc`, code: codeTc, entryPoint: 'main', layout, constants: { SG: (tc as { subgroupSize: number }).subgroupSize } })
    : ctx.pipelines.get({ op: OP, code: codeI8, entryPoint: 'gemm', layout, constants: {} });
  const params = uniformBuffer(device, `${label}.params`, 16);
  device.queue.writeBuffer(params, 0, new Uint32Array([M, N, tensorCores ? roundUp(K) : words, 0]));
  const group = bindGroupFor(device, `${label}.bindGroup`, layout, [{ buffer: params }, { buffer: buffers.qa }, { buffer: buffers.qw }, { buffer: buffers.sa }, { buffer: buffers.sw }, { buffer: buffers.y }]);
  return singleDispatch(label, pipeline, group, groups, [params]);
}
