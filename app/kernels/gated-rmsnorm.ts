/**
 * Op: Mamba-2's gated RMSNorm before out_proj (norm_before_gate = false): v = y · silu(z), then
 * RMSNorm of v over groups of `groupSize` consecutive channels, times the mixer's norm weight.
 * transformers normalizes over all of d_inner (groupSize = Di); mamba_ssm and llama.cpp per group
 * (groupSize = Di / n_groups). Shader: shaders/gated_rmsnorm.wgsl. Reference: gated-rmsnorm.ref.ts.
 */
import code from '../../shaders/gated_rmsnorm.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import type { StridedView } from './selective-scan.js';

const OP = 'GatedRmsNorm';
/** Must be a power of two (the reduction halves it). */
const WORKGROUP_SIZE = 256;
const U32_MAX = 0xffffffff;

export interface GatedRmsNormShape {
  rows: number; // T
  cols: number; // Di
  /** Channels per norm group; divides cols (Di for transformers, Di / n_groups for mamba_ssm). */
  groupSize: number;
  eps: number;
}

export interface GatedRmsNormBuffers {
  y: GPUBuffer; // [T, Di] the scan's output
  z: StridedView; // z [T, Di] (mamba2InProjZ)
  weight: GPUBuffer; // [Di]
  output: GPUBuffer; // [T, Di]
}

function layout(ctx: GpuContext): GPUBindGroupLayout {
  const storage = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({
    binding,
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type },
  });
  return ctx.pipelines.bindGroupLayout(OP, [
    { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
    storage(1, 'read-only-storage'),
    storage(2, 'read-only-storage'),
    storage(3, 'read-only-storage'),
    storage(4, 'storage'),
  ]);
}

function checkSize(name: string, buffer: GPUBuffer, elements: number): void {
  if (buffer.size < elements * 4) {
    throw new RangeError(`${OP}: ${name} (${buffer.label}) holds ${buffer.size} bytes, needs ${elements * 4}`);
  }
}

function checkCount(name: string, value: number, min: number, max = U32_MAX): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${OP}: ${name} must be an integer in ${min}..${max}, got ${value}`);
  }
}

export function gatedRmsNorm(ctx: GpuContext, shape: GatedRmsNormShape, buffers: GatedRmsNormBuffers, label = OP): Dispatch {
  const { rows, cols, groupSize, eps } = shape;
  const maxDim = ctx.adapter.limits.maxComputeWorkgroupsPerDimension;
  checkCount('rows', rows, 1);
  checkCount('cols', cols, 1);
  checkCount('groupSize', groupSize, 1, cols);
  if (cols % groupSize !== 0) throw new RangeError(`${OP}: groupSize=${groupSize} must divide cols=${cols}`);
  const groups = cols / groupSize;
  if (groups > maxDim) throw new RangeError(`${OP}: ${groups} norm groups per row, over the workgroup limit ${maxDim}`);
  if (!(eps > 0)) throw new RangeError(`${OP}: eps must be positive, got ${eps}`);
  const { z } = buffers;
  checkCount('z.offset', z.offset, 0);
  checkCount('z.rowStride', z.rowStride, 0);
  checkSize('y', buffers.y, rows * cols);
  checkSize('z', z.buffer, z.offset + (rows - 1) * z.rowStride + cols);
  checkSize('weight', buffers.weight, cols);
  checkSize('output', buffers.output, rows * cols);
  for (const [name, buffer] of [
    ['y', buffers.y],
    ['z', z.buffer],
    ['weight', buffers.weight],
  ] as const) {
    if (buffer === buffers.output) throw new RangeError(`${OP}: output and ${name} are the same buffer (${buffer.label}); output is written`);
  }

  const { device } = ctx;
  const bindGroupLayout = layout(ctx);
  const pipeline = ctx.pipelines.get({ op: OP, code, layout: bindGroupLayout, constants: { WORKGROUP_SIZE } });
  const params = uniformBuffer(device, `${label}.params`, 32);
  const data = new ArrayBuffer(32);
  new Uint32Array(data, 0, 5).set([rows, cols, groupSize, z.offset, z.rowStride]);
  new Float32Array(data, 20, 1)[0] = eps;
  device.queue.writeBuffer(params, 0, data);
  const bindGroup = device.createBindGroup({
    label: `${label}.bindGroup`,
    layout: bindGroupLayout,
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: { buffer: buffers.y } },
      { binding: 2, resource: { buffer: z.buffer } },
      { binding: 3, resource: { buffer: buffers.weight } },
      { binding: 4, resource: { buffer: buffers.output } },
    ],
  });
  const rowsY = Math.min(rows, maxDim);
  const rowsZ = Math.ceil(rows / rowsY);
  return {
    label,
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(groups, rowsY, rowsZ);
    },
    destroy() {
      params.destroy();
    },
  };
}
