/**
 * Helpers shared by the ops in this folder: bind group layouts and bind groups from a list of
 * bindings, argument checks that throw a RangeError naming the op, and a one-pipeline dispatch.
 * Every message starts with the op's name (`Matmul: …`), as the tests expect.
 */
import { storageBuffer } from '../gpu/buffers.js';
import type { GpuContext, KernelTuning } from '../gpu/context.js';
import { kernelPart, type Dispatch } from './dispatch.js';

export const U32_MAX = 0xffffffff;

/** One buffer binding of a compute shader's bind group layout. */
export function bufferLayoutEntry(binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry {
  return { binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } };
}

/** The (cached) bind group layout named `key` whose binding i is a buffer of `types[i]`. */
export function bindGroupLayoutFor(ctx: GpuContext, key: string, types: readonly GPUBufferBindingType[]): GPUBindGroupLayout {
  return ctx.pipelines.bindGroupLayout(
    key,
    types.map((type, binding) => bufferLayoutEntry(binding, type)),
  );
}

/** A bind group whose binding i is `resources[i]`. */
export function bindGroupFor(device: GPUDevice, label: string, layout: GPUBindGroupLayout, resources: readonly GPUBindingResource[]): GPUBindGroup {
  return device.createBindGroup({ label, layout, entries: resources.map((resource, binding) => ({ binding, resource })) });
}

/** Throws unless `value` is an integer ≥ `min`. */
export function checkInteger(op: string, name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${op}: ${name} must be an integer ≥ ${min}, got ${value}`);
  }
}

/** Throws unless `value` is an integer in `min`..`max`. */
export function checkCount(op: string, name: string, value: number, min: number, max = U32_MAX): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${op}: ${name} must be an integer in ${min}..${max}, got ${value}`);
  }
}

/** Throws unless `buffer` holds at least `bytes` bytes. */
export function checkBufferBytes(op: string, name: string, buffer: GPUBuffer, bytes: number): void {
  if (buffer.size < bytes) {
    throw new RangeError(`${op}: ${name} (${buffer.label}) holds ${buffer.size} bytes, needs ${bytes}`);
  }
}

/** Throws unless `buffer` holds at least `elements` 4-byte values. */
export function checkBufferElements(op: string, name: string, buffer: GPUBuffer, elements: number): void {
  checkBufferBytes(op, name, buffer, elements * 4);
}

/**
 * Checks that `buffer` holds `elements` 4-byte values and returns its binding: the whole buffer,
 * or its first maxStorageBufferBindingSize bytes (rounded down to `alignment`) when it is bigger.
 */
export function bindElements(ctx: GpuContext, op: string, name: string, buffer: GPUBuffer, elements: number, alignment = 4): GPUBufferBinding {
  const needed = elements * 4;
  checkBufferBytes(op, name, buffer, needed);
  const limit = ctx.device.limits.maxStorageBufferBindingSize;
  if (needed > limit) {
    throw new RangeError(`${op}: ${name} (${buffer.label}) needs ${needed} bytes bound, over this device's maxStorageBufferBindingSize ${limit}`);
  }
  return buffer.size <= limit ? { buffer } : { buffer, size: Math.floor(limit / alignment) * alignment };
}

/**
 * Throws when a buffer in `written` is also bound elsewhere in the same dispatch: another written
 * one before it, or one of `bound`.
 */
export function checkWrittenNotAliased(op: string, bound: readonly (readonly [string, GPUBuffer])[], written: readonly (readonly [string, GPUBuffer])[]): void {
  for (const [i, [name, buffer]] of written.entries()) {
    for (const [other, otherBuffer] of [...bound, ...written.slice(0, i)]) {
      if (buffer === otherBuffer) throw new RangeError(`${op}: ${name} and ${other} are the same buffer (${buffer.label}); ${name} is written`);
    }
  }
}

/**
 * A 4-byte storage buffer for a binding the kernel's layout has but this dispatch does not use
 * (an optional output, a folded input): added to `owned`, which the dispatch frees.
 */
export function placeholderBuffer(device: GPUDevice, label: string, owned: GPUBuffer[]): GPUBuffer {
  const buffer = storageBuffer(device, label, 4);
  owned.push(buffer);
  return buffer;
}

/** A dispatch of one pipeline with one bind group; `destroy` frees `owned`. */
export function singleDispatch(
  label: string,
  pipeline: GPUComputePipeline,
  bindGroup: GPUBindGroup,
  groups: readonly [number, number?, number?],
  owned: readonly GPUBuffer[],
): Dispatch {
  const { encode } = kernelPart(label, pipeline, bindGroup, groups);
  return {
    label,
    encode,
    destroy() {
      for (const b of owned) b.destroy();
    },
  };
}

/** Workgroup counts for `groups` linear workgroups, folded into (x, y) under the per-dimension limit. */
export function foldWorkgroups(groups: number, maxPerDim: number): [number, number] {
  const x = Math.min(groups, maxPerDim);
  return [x, Math.ceil(groups / x)];
}

/**
 * Threads of a kernel with one workgroup a row and tree reductions in workgroup memory (the
 * per-row norms, top-k): `gpuSize` on a GPU; 16 on a software adapter, where every barrier of a
 * wide workgroup is costly (SwiftShader, selective-copy's 512-token prefill: a norm took 200 ms
 * at 256 threads, 28 at 64, 9 at 16). GpuContext.tuning.rowWorkgroup overrides it (at most gpuSize).
 */
export function rowWorkgroupSize(ctx: GpuContext, gpuSize: number): number {
  const forced = ctx.tuning?.rowWorkgroup;
  if (forced !== undefined) {
    checkCount('RowWorkgroup', 'rowWorkgroup', forced, 1);
    if ((forced & (forced - 1)) !== 0) throw new RangeError(`RowWorkgroup: rowWorkgroup must be a power of two, got ${forced}`);
    return Math.min(forced, gpuSize);
  }
  return ctx.adapter.software ? Math.min(16, gpuSize) : gpuSize;
}

/** The override the decode kernels take for tuning.decodeLoads: PREFETCH = 0 where it is 'late', nothing otherwise (the shaders' default: early). */
export function prefetchConstants(tuning: KernelTuning | undefined): Record<string, number> {
  return tuning?.decodeLoads === 'late' ? { PREFETCH: 0 } : {};
}
