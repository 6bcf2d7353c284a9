/**
 * Op: the token embedding gather, out[T, D] = table[ids[t], :]. Shader: shaders/embedding.wgsl.
 * Reference: embedding.ref.ts.
 *
 * An id ≥ V reads row V - 1 (the shader clamps, so no read leaves the table). Ids should be
 * checked on the CPU before upload with validateTokenIds; the clamp is only a safety net.
 */
import code from '../../shaders/embedding.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';

const OP = 'Embedding';
const WORKGROUP_SIZE = 256;

export interface EmbeddingShape {
  tokens: number; // T
  vocab: number; // V
  dim: number; // D
}

export interface EmbeddingBuffers {
  ids: GPUBuffer; // u32 [T]
  table: GPUBuffer; // [V, D]
  output: GPUBuffer; // [T, D]
}

/** Throws a RangeError naming the first id that is not an integer in 0..vocab-1. */
export function validateTokenIds(ids: ArrayLike<number>, vocab: number): void {
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t] as number;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new RangeError(`${OP}: token id ${id} at position ${t} is outside the vocabulary 0..${vocab - 1}`);
    }
  }
}

function layout(ctx: GpuContext): GPUBindGroupLayout {
  const storage = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({
    binding,
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type },
  });
  return ctx.pipelines.bindGroupLayout(OP, [
    { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
    storage(1, 'read-only-storage'), // ids
    storage(2, 'read-only-storage'), // table
    storage(3, 'storage'), // output
  ]);
}

function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${OP}: ${name} must be an integer ≥ ${min}, got ${value}`);
  }
}

/** Checks that `buffer` holds `elements` 4-byte values and returns its binding (at most the device's binding size). */
function bind(ctx: GpuContext, name: string, buffer: GPUBuffer, elements: number): GPUBufferBinding {
  const needed = elements * 4;
  if (buffer.size < needed) {
    throw new RangeError(`${OP}: ${name} (${buffer.label}) holds ${buffer.size} bytes, needs ${needed}`);
  }
  const limit = ctx.device.limits.maxStorageBufferBindingSize;
  if (needed > limit) {
    throw new RangeError(`${OP}: ${name} (${buffer.label}) needs ${needed} bytes bound, over this device's maxStorageBufferBindingSize ${limit}`);
  }
  return buffer.size <= limit ? { buffer } : { buffer, size: Math.floor(limit / 4) * 4 };
}

export function embedding(ctx: GpuContext, shape: EmbeddingShape, buffers: EmbeddingBuffers, label = OP): Dispatch {
  const { tokens: T, vocab: V, dim: D } = shape;
  checkInteger('tokens', T, 1);
  checkInteger('vocab', V, 1);
  checkInteger('dim', D, 1);
  if (T * D >= 2 ** 32) throw new RangeError(`${OP}: T·D = ${T * D} elements is over the shader's u32 indexing`);
  if (buffers.output === buffers.ids || buffers.output === buffers.table) {
    throw new RangeError(`${OP}: output (${buffers.output.label}) must not be the ids or table buffer`);
  }
  const ids = bind(ctx, 'ids', buffers.ids, T);
  const table = bind(ctx, 'table', buffers.table, V * D);
  const output = bind(ctx, 'output', buffers.output, T * D);
  const maxGroups = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const blocks = Math.ceil((T * D) / WORKGROUP_SIZE);
  const gx = Math.min(blocks, maxGroups);
  const gy = Math.ceil(blocks / gx);
  if (gy > maxGroups) throw new RangeError(`${OP}: T·D = ${T * D} needs more than ${maxGroups}² workgroups`);

  const { device } = ctx;
  const bindGroupLayout = layout(ctx);
  const pipeline = ctx.pipelines.get({ op: OP, code, layout: bindGroupLayout, constants: { WORKGROUP_SIZE } });
  const params = uniformBuffer(device, `${label}.params`, 16);
  device.queue.writeBuffer(params, 0, new Uint32Array([T, D, V, 0]));
  const bindGroup = device.createBindGroup({
    label: `${label}.bindGroup`,
    layout: bindGroupLayout,
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: ids },
      { binding: 2, resource: table },
      { binding: 3, resource: output },
    ],
  });
  return {
    label,
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(gx, gy);
    },
    destroy() {
      params.destroy();
    },
  };
}
