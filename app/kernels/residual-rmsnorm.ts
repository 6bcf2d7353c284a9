/**
 * Op: residual add fused with RMSNorm. Shader: shaders/residual_rmsnorm.wgsl.
 * Reference: residual-rmsnorm.ref.ts.
 */
import code from '../../shaders/residual_rmsnorm.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindGroupFor, bindGroupLayoutFor, checkBufferElements, checkCount, rowWorkgroupSize, singleDispatch } from './op-helpers.js';
import { withWorkgroupSum } from './subgroups.js';

const OP = 'ResidualRmsNorm';

export interface ResidualRmsNormShape {
  rows: number; // T
  cols: number; // D
  eps: number;
  /** false for the first layer, where the residual stream starts as the embedding. */
  hasResidual: boolean;
  /** Multiplies hidden before the add (default 1: Granite's embedding and residual multipliers). */
  hiddenScale?: number;
  /** Multiplies the normed output (default 1: Granite's 1 / logits_scaling on the final norm). */
  outScale?: number;
}

export interface ResidualRmsNormBuffers {
  hidden: GPUBuffer; // [T, D]
  residual: GPUBuffer; // [T, D], updated in place
  weight: GPUBuffer; // [D]
  output: GPUBuffer; // [T, D]
}

/** A residual norm by its inputs, for a kernel that folds it in and never writes the output (int8-gemm.ts quantizeRowsI8 `residual`). */
export interface ResidualNormInput {
  shape: ResidualRmsNormShape;
  buffers: Omit<ResidualRmsNormBuffers, 'output'>;
}

export function residualRmsNorm(
  ctx: GpuContext,
  shape: ResidualRmsNormShape,
  buffers: ResidualRmsNormBuffers,
  label = OP,
): Dispatch {
  const { rows, cols, eps } = shape;
  checkCount(OP, 'rows', rows, 1, ctx.adapter.limits.maxComputeWorkgroupsPerDimension);
  if (!Number.isInteger(cols) || cols < 1) throw new RangeError(`${OP}: cols must be a positive integer, got ${cols}`);
  if (!(eps > 0)) throw new RangeError(`${OP}: eps must be positive, got ${eps}`);
  checkBufferElements(OP, 'hidden', buffers.hidden, rows * cols);
  checkBufferElements(OP, 'residual', buffers.residual, rows * cols);
  checkBufferElements(OP, 'weight', buffers.weight, cols);
  checkBufferElements(OP, 'output', buffers.output, rows * cols);

  const { device } = ctx;
  // params, hidden, residual, weight, output
  const bindGroupLayout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'storage', 'read-only-storage', 'storage']);
  const threads = rowWorkgroupSize(ctx, 256);
  const reduce = withWorkgroupSum(ctx, code, threads);
  const pipeline = ctx.pipelines.get({ op: OP, code: reduce.code, layout: bindGroupLayout, constants: { WORKGROUP_SIZE: threads, ...reduce.constants } });
  const hiddenScale = shape.hiddenScale ?? 1;
  const outScale = shape.outScale ?? 1;
  if (!Number.isFinite(hiddenScale) || !Number.isFinite(outScale)) throw new RangeError(`${OP}: scales must be finite, got ${hiddenScale} and ${outScale}`);
  const params = uniformBuffer(device, `${label}.params`, 32);
  const data = new ArrayBuffer(32);
  new Uint32Array(data, 0, 2).set([rows, cols]);
  new Float32Array(data, 8, 1)[0] = eps;
  new Uint32Array(data, 12, 1)[0] = shape.hasResidual ? 1 : 0;
  new Float32Array(data, 16, 2).set([hiddenScale, outScale]);
  device.queue.writeBuffer(params, 0, data);
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, bindGroupLayout, [params, buffers.hidden, buffers.residual, buffers.weight, buffers.output].map((buffer) => ({ buffer })));
  return singleDispatch(label, pipeline, bindGroup, [rows], [params]);
}
