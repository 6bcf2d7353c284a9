/**
 * Op: Mamba-2's gated RMSNorm before out_proj (norm_before_gate = false): v = y · silu(z), then
 * RMSNorm of v over groups of `groupSize` consecutive channels, times the mixer's norm weight.
 * transformers normalizes over all of d_inner (groupSize = Di); mamba_ssm and llama.cpp per group
 * (groupSize = Di / n_groups). Shader: shaders/gated_rmsnorm.wgsl. Reference: gated-rmsnorm.ref.ts.
 */
import normCode from '../../shaders/gated_rmsnorm.wgsl?raw';
import sigmoidCode from '../../shaders/sigmoid.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindGroupFor, bindGroupLayoutFor, checkBufferElements, checkCount, checkWrittenNotAliased, rowWorkgroupSize, singleDispatch } from './op-helpers.js';
import { withWorkgroupSum } from './subgroups.js';
import type { StridedView } from './selective-scan.js';

const OP = 'GatedRmsNorm';
const code = sigmoidCode + normCode;

export interface GatedRmsNormShape {
  rows: number; // T
  cols: number; // Di
  /** Channels per norm group; divides cols (Di for transformers, Di / n_groups for mamba_ssm). */
  groupSize: number;
  eps: number;
}

export interface GatedRmsNormBuffers {
  y: GPUBuffer; // [T, Di] the scan's output
  z: StridedView; // z [T, Di] (app/arch/mamba2/layout.ts mamba2InProjZ)
  weight: GPUBuffer; // [Di]
  output: GPUBuffer; // [T, Di]
}

export function gatedRmsNorm(ctx: GpuContext, shape: GatedRmsNormShape, buffers: GatedRmsNormBuffers, label = OP): Dispatch {
  const { rows, cols, groupSize, eps } = shape;
  const maxDim = ctx.adapter.limits.maxComputeWorkgroupsPerDimension;
  checkCount(OP, 'rows', rows, 1);
  checkCount(OP, 'cols', cols, 1);
  checkCount(OP, 'groupSize', groupSize, 1, cols);
  if (cols % groupSize !== 0) throw new RangeError(`${OP}: groupSize=${groupSize} must divide cols=${cols}`);
  const groups = cols / groupSize;
  if (groups > maxDim) throw new RangeError(`${OP}: ${groups} norm groups per row, over the workgroup limit ${maxDim}`);
  if (!(eps > 0)) throw new RangeError(`${OP}: eps must be positive, got ${eps}`);
  const { z } = buffers;
  checkCount(OP, 'z.offset', z.offset, 0);
  checkCount(OP, 'z.rowStride', z.rowStride, 0);
  checkBufferElements(OP, 'y', buffers.y, rows * cols);
  checkBufferElements(OP, 'z', z.buffer, z.offset + (rows - 1) * z.rowStride + cols);
  checkBufferElements(OP, 'weight', buffers.weight, cols);
  checkBufferElements(OP, 'output', buffers.output, rows * cols);
  checkWrittenNotAliased(
    OP,
    [
      ['y', buffers.y],
      ['z', z.buffer],
      ['weight', buffers.weight],
    ],
    [['output', buffers.output]],
  );

  const { device } = ctx;
  // params, y, z, weight, output
  const bindGroupLayout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage']);
  const threads = rowWorkgroupSize(ctx, 256);
  const reduce = withWorkgroupSum(ctx, code, threads);
  const pipeline = ctx.pipelines.get({ op: OP, code: reduce.code, layout: bindGroupLayout, constants: { WORKGROUP_SIZE: threads, ...reduce.constants } });
  const params = uniformBuffer(device, `${label}.params`, 32);
  const data = new ArrayBuffer(32);
  new Uint32Array(data, 0, 5).set([rows, cols, groupSize, z.offset, z.rowStride]);
  new Float32Array(data, 20, 1)[0] = eps;
  device.queue.writeBuffer(params, 0, data);
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, bindGroupLayout, [params, buffers.y, z.buffer, buffers.weight, buffers.output].map((buffer) => ({ buffer })));
  const rowsY = Math.min(rows, maxDim);
  const rowsZ = Math.ceil(rows / rowsY);
  return singleDispatch(label, pipeline, bindGroup, [groups, rowsY, rowsZ], [params]);
}
