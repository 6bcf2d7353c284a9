/**
 * Subgroup reductions for the matrix-vector kernels (matmul.wgsl's matvec entry points,
 * norm_matvec.wgsl): with SG_SIZE > 0 a row's THREADS_PER_ROW partial sums are added by
 * subgroupAdd within each subgroup and the THREADS_PER_ROW / SG_SIZE subgroup sums through
 * workgroup memory (one barrier), instead of a tree of log2(THREADS_PER_ROW) barriers. Used only
 * where GpuContext.subgroupSize says subgroups are runs of consecutive invocations of one known
 * size (app/gpu/context.ts subgroupLayout) and that size divides THREADS_PER_ROW.
 */
import workgroupSumCode from '../../shaders/workgroup_sum.wgsl?raw';
import type { GpuContext } from '../gpu/context.js';

// Every kernel's subgroup helpers (the matrix-vector sums, workgroup_sum.wgsl, the int8
// quantizers' max and butterflies, the sampler's search).
const ON = `enable subgroups;
fn sg_add_f32(v: f32) -> f32 { return subgroupAdd(v); }
fn sg_add_v4(v: vec4<f32>) -> vec4<f32> { return subgroupAdd(v); }
fn sg_add_v4u(v: vec4<u32>) -> vec4<u32> { return subgroupAdd(v); }
fn sg_max_f32(v: f32) -> f32 { return subgroupMax(v); }
fn sg_xor_v4(v: vec4<f32>, m: u32) -> vec4<f32> { return subgroupShuffleXor(v, m); }
`;
// Never called (SG_SIZE = 0), but the shaders name them.
const OFF = `fn sg_add_f32(v: f32) -> f32 { return v; }
fn sg_add_v4(v: vec4<f32>) -> vec4<f32> { return v; }
fn sg_add_v4u(v: vec4<u32>) -> vec4<u32> { return v; }
fn sg_max_f32(v: f32) -> f32 { return v; }
fn sg_xor_v4(v: vec4<f32>, m: u32) -> vec4<f32> { return v; }
`;

/** The subgroup helpers to prepend: the subgroup builtins (`on`, the device took 'subgroups') or never-called stand-ins. */
export function subgroupHelpers(on: boolean): string {
  return on ? ON : OFF;
}

/** The code to prepend to a kernel whose rows have `perRow` threads, and its SG_SIZE (0: the barrier tree). */
export function subgroupReduction(ctx: GpuContext, perRow: number): { prefix: string; size: number } {
  const size = ctx.subgroupSize ?? 0;
  return size > 0 && perRow >= size && perRow % size === 0 ? { prefix: ON, size } : { prefix: OFF, size: 0 };
}

/**
 * A kernel that reduces its whole workgroup of `workgroupSize` through workgroup_sum.wgsl (the
 * per-row norms): its code with the subgroup helpers and workgroup_sum prepended, and its SG_SIZE
 * (subgroupAdd and one exchange where subgroupReduction allows, else the barrier tree).
 */
export function withWorkgroupSum(ctx: GpuContext, code: string, workgroupSize: number): { code: string; constants: { SG_SIZE: number } } {
  const sub = subgroupReduction(ctx, workgroupSize);
  return { code: sub.prefix + workgroupSumCode + code, constants: { SG_SIZE: sub.size } };
}
