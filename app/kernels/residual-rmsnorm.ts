/**
 * Op: residual add fused with RMSNorm. Shader: shaders/residual_rmsnorm.wgsl.
 * Reference: residual-rmsnorm.ref.ts.
 */
import code from '../../shaders/residual_rmsnorm.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';

const OP = 'ResidualRmsNorm';
/** Must be a power of two (the reduction halves it). */
const WORKGROUP_SIZE = 256;

export interface ResidualRmsNormShape {
  rows: number; // T
  cols: number; // D
  eps: number;
  /** false for the first layer, where the residual stream starts as the embedding. */
  hasResidual: boolean;
}

export interface ResidualRmsNormBuffers {
  hidden: GPUBuffer; // [T, D]
  residual: GPUBuffer; // [T, D], updated in place
  weight: GPUBuffer; // [D]
  output: GPUBuffer; // [T, D]
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
    storage(2, 'storage'),
    storage(3, 'read-only-storage'),
    storage(4, 'storage'),
  ]);
}

function checkSize(name: string, buffer: GPUBuffer, elements: number): void {
  if (buffer.size < elements * 4) {
    throw new RangeError(`${OP}: ${name} (${buffer.label}) holds ${buffer.size} bytes, needs ${elements * 4}`);
  }
}

export function residualRmsNorm(
  ctx: GpuContext,
  shape: ResidualRmsNormShape,
  buffers: ResidualRmsNormBuffers,
  label = OP,
): Dispatch {
  const { rows, cols, eps } = shape;
  if (!Number.isInteger(rows) || rows < 1 || rows > ctx.adapter.limits.maxComputeWorkgroupsPerDimension) {
    throw new RangeError(`${OP}: rows must be an integer in 1..${ctx.adapter.limits.maxComputeWorkgroupsPerDimension}, got ${rows}`);
  }
  if (!Number.isInteger(cols) || cols < 1) throw new RangeError(`${OP}: cols must be a positive integer, got ${cols}`);
  if (!(eps > 0)) throw new RangeError(`${OP}: eps must be positive, got ${eps}`);
  checkSize('hidden', buffers.hidden, rows * cols);
  checkSize('residual', buffers.residual, rows * cols);
  checkSize('weight', buffers.weight, cols);
  checkSize('output', buffers.output, rows * cols);

  const { device } = ctx;
  const bindGroupLayout = layout(ctx);
  const pipeline = ctx.pipelines.get({ op: OP, code, layout: bindGroupLayout, constants: { WORKGROUP_SIZE } });
  const params = uniformBuffer(device, `${label}.params`, 16);
  const data = new ArrayBuffer(16);
  new Uint32Array(data, 0, 2).set([rows, cols]);
  new Float32Array(data, 8, 1)[0] = eps;
  new Uint32Array(data, 12, 1)[0] = shape.hasResidual ? 1 : 0;
  device.queue.writeBuffer(params, 0, data);
  const bindGroup = device.createBindGroup({
    label: `${label}.bindGroup`,
    layout: bindGroupLayout,
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: { buffer: buffers.hidden } },
      { binding: 2, resource: { buffer: buffers.residual } },
      { binding: 3, resource: { buffer: buffers.weight } },
      { binding: 4, resource: { buffer: buffers.output } },
    ],
  });
  return {
    label,
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(rows);
    },
    destroy() {
      params.destroy();
    },
  };
}
