/**
 * Op: one decode token's Linear layer (y = W·v) with the norm before it and Mamba's causal conv
 * step + SiLU after it fused in (shaders/norm_matvec.wgsl, which states the math). Used by the
 * models' T = 1 fast path: the block norm folded into in_proj (with the conv on the x / xBC
 * channels), Mamba-2's gated RMSNorm folded into out_proj (with the residual add as
 * `accumulate`), and norm_f folded into the LM head; optionally Mamba-1's x_proj folded into
 * in_proj as partial sums a block of rows (`xProj`, added by selective-scan's step_xp).
 * Reference: norm-matvec.ref.ts.
 *
 * Limits (callers fall back to the unfused ops outside them: normMatvecFits): I ≤ normMatvecMaxIn
 * (what the device's workgroup memory holds: 3,832 with WebGPU's default 16 KiB, ~12k with 48 KiB)
 * and I % 4 = 0 (I % 8 = 0 with f16/bf16 weights, I % 32 = 0 and whole blocks with ggml blocks),
 * at most 8 norm groups, no bias on W.
 */
import normMatvecCode from '../../shaders/norm_matvec.wgsl?raw';
import sigmoidCode from '../../shaders/sigmoid.wgsl?raw';
import weightsCode from '../../shaders/weights.wgsl?raw';
import workgroupSumCode from '../../shaders/workgroup_sum.wgsl?raw';
import { storageBuffer, uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext, KernelTuning } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { subgroupReduction } from './subgroups.js';
import { isBlockFormat, isHalfFormat, rowQuantum, WEIGHT_FORMAT_CODE, weightWords, type WeightFormat } from './weight-format.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkBufferElements, checkCount, checkWrittenNotAliased, placeholderBuffer, prefetchConstants, singleDispatch } from './op-helpers.js';

const code = sigmoidCode + weightsCode + workgroupSumCode + normMatvecCode;

// Binding 1 (x) and how the kernel reads it (shaders/norm_matvec.wgsl): staged through workgroup
// memory by the prologue, or — no norm, x 16-byte aligned — read in place, 16 bytes at a time.
const X_STAGED = `@group(0) @binding(1) var<storage, read> x: array<f32>;
const X_DIRECT = false;
fn x_at(i: u32) -> f32 { return x[i]; }
fn x_word(j: u32) -> vec4<f32> { return vec4<f32>(0.0); }
`;
const X_IN_PLACE = `@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
const X_DIRECT = true;
fn x_at(i: u32) -> f32 { return x4[i >> 2u][i & 3u]; }
fn x_word(j: u32) -> vec4<f32> { return x4[(params.x_offset >> 2u) + j]; }
`;
// Mamba-1's x_proj folded in (XPROJ): absent, two empty functions; present, x_proj.weight at
// binding 8, the partial sums at binding 9 and the functions that write them (norm_matvec.wgsl).
const NO_XPROJ = `fn xproj_keep(i: u32, v: f32) {}
fn xproj_block(block: u32, rows_per_block: u32, lid: u32) {}
`;
const XP_WEIGHT_AT: Record<XProjFormat, string> = {
  f32: 'return bitcast<f32>(xp_w[e]);',
  f16: 'let pair = unpack2x16float(xp_w[e >> 1u]); return select(pair.x, pair.y, (e & 1u) == 1u);',
  bf16: 'return bitcast<f32>(((xp_w[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu) << 16u);',
};
function xProjCode(format: XProjFormat): string {
  return `@group(0) @binding(8) var<storage, read> xp_w: array<u32>;
@group(0) @binding(9) var<storage, read_write> xp_out: array<f32>;
var<workgroup> xp_x: array<f32, WORKGROUP_SIZE>;
fn xp_w_at(e: u32) -> f32 { ${XP_WEIGHT_AT[format]} }
fn xproj_keep(i: u32, v: f32) { xp_x[i] = v; }
fn xproj_block(block: u32, rows_per_block: u32, lid: u32) {
  let C = params.conv_channels;
  let c0 = block * rows_per_block;
  if (c0 >= C) { return; }
  workgroupBarrier();  // the epilogue lanes' conv outputs
  let n = min(rows_per_block, C - c0);
  // Output j's partial sums are a row of xp_out, one a block, the blocks rounded up to 4.
  let stride = ((C + rows_per_block - 1u) / rows_per_block + 3u) & ~3u;
  for (var j = lid; j < params.xp_outputs; j += WORKGROUP_SIZE) {
    var s = 0.0;
    for (var i = 0u; i < n; i++) {
      s += xp_w_at(j * C + c0 + i) * xp_x[i];
    }
    xp_out[j * stride + block] = s;
  }
  workgroupBarrier();  // xp_x is reused by the next block
}
`;
}
/** The storage formats x_proj.weight may have where it is folded into in_proj (read an element at a time). */
export type XProjFormat = 'f32' | 'f16' | 'bf16';
export function isXProjFormat(format: WeightFormat): format is XProjFormat {
  return format === 'f32' || format === 'f16' || format === 'bf16';
}
const OP = 'NormMatvec';
const WORKGROUP_SIZE = 256;
/** Largest I on a device with WebGPU's default 16 KiB of workgroup memory (normMatvecMaxIn: more where the device has more). */
export const NORM_MATVEC_MAX_IN = 3072;
const MAX_GROUPS = 8;
/** Most workgroups launched: each pays the prologue once, then loops over blocks of rows. */
const MAX_WORKGROUPS = 1024;

/**
 * 'rms-presummed': an RMSNorm whose input x already holds u · g and whose Σ u² the kernel that wrote
 * x left in `sums` pieces (the Mamba-2 decode step: ssd.ts normSums); x is read in place and the
 * row sums are scaled by rsqrt(Σ / I + eps). No prologue, so no limit on I.
 */
export type NormMatvecNorm = 'none' | 'rms' | 'gated-rms' | 'rms-presummed';

export interface NormMatvecShape {
  inFeatures: number; // I
  outFeatures: number; // O
  norm: NormMatvecNorm;
  /** Norm epsilon (norm ≠ 'none'). */
  eps?: number;
  /** Channels per norm group for 'gated-rms' (divides I; I / groupSize ≤ 8). 'rms' uses I. */
  groupSize?: number;
  /** 'rms-presummed': how many pieces of Σ u² `sums` holds (≥ 1). */
  sums?: number;
  /** Element offsets of x and z in their buffers (default 0). */
  xOffset?: number;
  zOffset?: number;
  /** The conv epilogue on outputs convStart .. convStart + channels − 1 (absent: none). */
  conv?: { start: number; channels: number; kernelSize: number };
  /** y += r instead of y = r. */
  accumulate?: boolean;
  /** Element offset of y[0] in its buffer (default 0). */
  yOffset?: number;
  weightFormat?: WeightFormat;
  /**
   * Mamba-1's x_proj folded in (with `conv`, conv.start 0): each block of rows writes x_proj's
   * `outputs` (R + 2N) partial sums over its conv channels to `xProjPartials` (xProjPartialLayout),
   * which the decode step adds (selective-scan's step_xp); x_proj.weight [outputs, C] in `format`.
   */
  xProj?: { outputs: number; format: WeightFormat };
}

export interface NormMatvecBuffers {
  x: GPUBuffer; // [I] at xOffset
  z?: GPUBuffer; // [I] at zOffset ('gated-rms')
  g?: GPUBuffer; // [I] norm weight ('rms', 'gated-rms')
  sums?: GPUBuffer; // ['rms-presummed'] the pieces of Σ u²
  weight: GPUBuffer; // [O, I]
  /** packConvWeights: conv1d.weight [C, K] then bias [C] (with `conv`). */
  conv?: GPUBuffer;
  convState?: GPUBuffer; // [C, K-1] (with `conv`)
  y: GPUBuffer; // [O]
  /** With `xProj`: x_proj.weight [outputs, C], and the partial sums it writes (xProjPartialLayout). */
  xProjWeight?: GPUBuffer;
  xProjPartials?: GPUBuffer;
}

/**
 * Largest I the kernel takes on this device: v (4·I bytes) and the reduction scratch
 * (4·WORKGROUP_SIZE + 4·MAX_GROUPS bytes) must fit in its workgroup memory — 3,832 with WebGPU's
 * default 16 KiB, ~12k where a GPU offers 48 KiB (the device asks for the adapter's most: app/gpu/context.ts).
 */
export function normMatvecMaxIn(ctx: GpuContext): number {
  const bytes = ctx.device.limits.maxComputeWorkgroupStorageSize - 4 * WORKGROUP_SIZE - 4 * MAX_GROUPS;
  return Math.max(NORM_MATVEC_MAX_IN, Math.floor(bytes / 16) * 4);
}

/**
 * Whether the fused kernel takes these sizes on this device (else use the unfused ops). `inPlace`:
 * no norm and x at a multiple of 4 elements, where the rows read x in place and I has no limit.
 */
export function normMatvecFits(ctx: GpuContext, inFeatures: number, format: WeightFormat, groups = 1, inPlace = false): boolean {
  return (inPlace || inFeatures <= normMatvecMaxIn(ctx)) && inFeatures % rowAlignment(format) === 0 && groups >= 1 && groups <= MAX_GROUPS;
}

/** Elements a row must be a multiple of: 4 (fp32), 8 (halves), 32 and the block size (block formats). */
function rowAlignment(format: WeightFormat): number {
  if (isBlockFormat(format)) return Math.max(32, rowQuantum(format));
  return isHalfFormat(format) ? 8 : 4;
}

/**
 * conv1d.weight [C, 1, K] and its bias [C] (zeros when null) packed into one buffer, [C·K + C]
 * (two copies on the GPU queue, once per layer; the sources need COPY_SRC).
 */
export function packConvWeights(ctx: GpuContext, weight: GPUBuffer, bias: GPUBuffer | null, channels: number, kernelSize: number, label = 'ConvWeights'): GPUBuffer {
  checkCount(OP, 'channels', channels, 1);
  checkCount(OP, 'kernelSize', kernelSize, 2, 8);
  checkBufferElements(OP, 'conv weight', weight, channels * kernelSize);
  if (bias) checkBufferElements(OP, 'conv bias', bias, channels);
  const buffer = storageBuffer(ctx.device, `${label}.buffer`, (channels * kernelSize + channels) * 4);
  const encoder = ctx.device.createCommandEncoder({ label: `${label}.encoder` });
  encoder.copyBufferToBuffer(weight, 0, buffer, 0, channels * kernelSize * 4);
  if (bias) encoder.copyBufferToBuffer(bias, 0, buffer, channels * kernelSize * 4, channels * 4);
  ctx.device.queue.submit([encoder.finish()]);
  return buffer;
}

/** The kernel's shape: threads per row, rows per group of threads, 16-byte loads in flight per row. */
export interface MatvecShape {
  threadsPerRow: number;
  rows: number;
  unroll: number;
}

/** A benchmark's forced matvec settings (GpuContext.tuning) where they apply to weights in `format`. */
function forcedMatvec(ctx: GpuContext, format: WeightFormat): NonNullable<KernelTuning['matvec']> {
  const forced = ctx.tuning?.matvec;
  return forced && (forced.format === undefined || forced.format === format) ? forced : {};
}

/** Workgroups the shape choice aims for at least (a few per multiprocessor on a large GPU). */
const TARGET_WORKGROUPS = 256;

/**
 * The default shape for O rows of I inputs, from a sweep on an H200 at the mamba-2.8b shapes
 * (bench/RESULTS.md, issue 19): about 10 16-byte words of a row per thread (32 to 256 threads per
 * row); with the prologue (a norm, or x staged through workgroup memory) 4 rows per group, so
 * fewer workgroups pay it; with x read in place 1 row. Q8_0 and Q4_K are read as the halves are,
 * 16 bytes of codes at a time (16 and 32 weights) with their scales (Q4_K: 1 load in flight with
 * the prologue, 2 without: its units carry 16 more bytes of scales each); the other ggml blocks 2
 * rows and up to 32 threads behind the prologue, else 1 row and up to 64 threads (a chunk's
 * decoding holds 8 vec4s per row). Then fewer rows, then more threads per row, while
 * that leaves fewer than TARGET_WORKGROUPS workgroups (x_proj's ~100 rows still spread over the
 * GPU; not on a software adapter). 4 loads in flight per row. ctx.tuning.matvec overrides any part
 * (benchmarks, tests), and the workgroups' cap (MAX_WORKGROUPS).
 */
export function matvecShape(ctx: GpuContext, inFeatures: number, outFeatures: number, format: WeightFormat, staged = true): MatvecShape {
  const pow2 = (x: number) => 2 ** Math.round(Math.log2(Math.max(1, x)));
  let perRow: number;
  let rows: number;
  if (format === 'q8_0' || format === 'q4_k') {
    // Read as the halves are, 16 bytes (16 codes, 32 nibbles) at a time.
    perRow = Math.min(WORKGROUP_SIZE, Math.max(32, pow2(inFeatures / (format === 'q8_0' ? 16 : 32) / 10)));
    rows = staged ? 4 : 1;
  } else if (isBlockFormat(format)) {
    // The other ggml blocks, 32 elements a chunk (w_chunk_of). Behind the prologue 32 threads × 2
    // rows: Q6_K's LM head at mamba-2.8b took 116 µs against 175 with 64 × 1 (bench --matvec on
    // the H200; 32 × 1 159, 32 × 4 177, 64 × 2 136).
    const chunks = inFeatures / 32;
    perRow = Math.min(staged ? 32 : 64, 2 ** Math.floor(Math.log2(Math.max(1, chunks))));
    rows = staged ? 2 : 1;
  } else {
    const words = inFeatures / (isHalfFormat(format) ? 8 : 4);
    perRow = Math.min(WORKGROUP_SIZE, Math.max(32, pow2(words / 10)));
    rows = staged ? 4 : 1;
  }
  const groupsFor = () => Math.ceil(outFeatures / ((WORKGROUP_SIZE / perRow) * rows));
  // A CPU implementation of WebGPU (SwiftShader) runs workgroups a few at a time: there more
  // threads per row only add barrier work (the tests' tiny models took twice as long).
  const target = ctx.adapter.software ? 1 : TARGET_WORKGROUPS;
  while (groupsFor() < target && (rows > 1 || perRow < WORKGROUP_SIZE)) {
    if (rows > 1) rows /= 2;
    else perRow *= 2;
  }
  const forced = forcedMatvec(ctx, format);
  // Q4_K holds each unit's 16 bytes of scales beside its codes: fewer units in flight. On the H200
  // (bench --matvec q4_k:…, mamba-2.8b): 4 rows × 1 unit behind the prologue (in_proj 28.6 µs, LM
  // head 76 µs against 34.5 / 93 with 2 × 2), 1 row × 2 units with x in place (out_proj 17.7 µs
  // against 21.9 with 4 × 1).
  const unroll = format === 'q4_k' ? (staged ? 1 : 2) : 4;
  const shape = { threadsPerRow: forced.threadsPerRow ?? perRow, rows: forced.rows ?? rows, unroll: forced.unroll ?? unroll };
  checkCount(OP, 'threadsPerRow', shape.threadsPerRow, 1, WORKGROUP_SIZE);
  if ((shape.threadsPerRow & (shape.threadsPerRow - 1)) !== 0) throw new RangeError(`${OP}: threadsPerRow must be a power of two, got ${shape.threadsPerRow}`);
  checkCount(OP, 'rows', shape.rows, 1, Math.min(4, shape.threadsPerRow)); // lane r of a group writes row r
  checkCount(OP, 'unroll', shape.unroll, 1, 4);
  return shape;
}

/** Blocks of rows of O outputs in shape mv (a workgroup takes one block at a time). */
function rowBlocks(O: number, mv: MatvecShape): number {
  return Math.ceil(O / ((WORKGROUP_SIZE / mv.threadsPerRow) * mv.rows));
}

/** Most workgroups one matvec launches (a benchmark may force fewer). */
function workgroupCap(ctx: GpuContext, format: WeightFormat): number {
  return Math.min(forcedMatvec(ctx, format).groups ?? MAX_WORKGROUPS, ctx.device.limits.maxComputeWorkgroupsPerDimension);
}

/**
 * Whether a one-group RMSNorm reads x in place (v = x·g per use, Σx² added after the first block's
 * rows: no prologue) rather than staging v. Where every workgroup takes one block of rows (in_proj)
 * and the format is read in 16-byte units: on the H200 (mamba-2.8b, bench/RESULTS.md) in_proj f16
 * 30.0, 28.0 -> 27.2, 27.3 µs and Q8_0 32.4 -> 31.1; but Q4_K's in_proj was unchanged and the LM
 * head (50k rows, many blocks a workgroup, each reading x·g again) slower: f16 +0.5..7 µs, Q4_K +13.
 */
function rmsInPlace(ctx: GpuContext, I: number, O: number, format: WeightFormat): boolean {
  if (!(format === 'f32' || isHalfFormat(format) || format === 'q8_0')) return false;
  return rowBlocks(O, matvecShape(ctx, I, O, format, true)) <= workgroupCap(ctx, format);
}

/** Whether the rows read x in place (no prologue), and the rows' shape. */
function rowPlan(ctx: GpuContext, shape: NormMatvecShape): { direct: boolean; mv: MatvecShape } {
  const { inFeatures: I, outFeatures: O, norm } = shape;
  const format = shape.weightFormat ?? 'f32';
  // No norm (or one presummed) and x at a multiple of 4 elements: the rows read x in place (no
  // prologue, any I).
  const direct = (norm === 'none' || norm === 'rms-presummed' || (norm === 'rms' && rmsInPlace(ctx, I, O, format))) && (shape.xOffset ?? 0) % 4 === 0;
  return { direct, mv: matvecShape(ctx, I, O, format, !direct || norm === 'rms') };
}

/**
 * The x_proj partial sums the op writes with `shape.xProj`: one for each of its blocks of rows that
 * hold conv channels (`blocks`), for each output, as rows [outputs, stride] (stride: the blocks
 * rounded up to 4, the rest of a row never written) — so `elements` floats.
 */
export function xProjPartialLayout(ctx: GpuContext, shape: NormMatvecShape): { blocks: number; stride: number; elements: number } {
  const { mv } = rowPlan(ctx, shape);
  const blocks = Math.ceil((shape.conv?.channels ?? 0) / ((WORKGROUP_SIZE / mv.threadsPerRow) * mv.rows));
  const stride = Math.ceil(blocks / 4) * 4;
  return { blocks, stride, elements: (shape.xProj?.outputs ?? 0) * stride };
}

/** Whether this device takes x_proj folded into in_proj: 9 storage buffers in one pass, an element-wise format. */
export function xProjFoldable(ctx: GpuContext, format: WeightFormat): boolean {
  return ctx.device.limits.maxStorageBuffersPerShaderStage >= 9 && isXProjFormat(format);
}

export function normMatvec(ctx: GpuContext, shape: NormMatvecShape, buffers: NormMatvecBuffers, label = OP): Dispatch {
  const { inFeatures: I, outFeatures: O, norm } = shape;
  const format = shape.weightFormat ?? 'f32';
  const xOffset = shape.xOffset ?? 0;
  const zOffset = shape.zOffset ?? 0;
  const presummed = norm === 'rms-presummed';
  const { direct, mv } = rowPlan(ctx, shape);
  if (presummed && !direct) throw new RangeError(`${OP}: 'rms-presummed' reads x in place: xOffset must be a multiple of 4, got ${xOffset}`);
  checkCount(OP, 'inFeatures', I, 1, direct ? Number.MAX_SAFE_INTEGER : normMatvecMaxIn(ctx));
  checkCount(OP, 'outFeatures', O, 1);
  checkCount(OP, 'xOffset', xOffset, 0);
  checkCount(OP, 'zOffset', zOffset, 0);
  const quantum = rowAlignment(format);
  if (I % quantum !== 0) throw new RangeError(`${OP}: inFeatures must be a multiple of ${quantum} for ${format} weights, got ${I}`);
  const groupSize = norm === 'gated-rms' ? (shape.groupSize ?? I) : I;
  checkCount(OP, 'groupSize', groupSize, 1, I);
  if (I % groupSize !== 0 || I / groupSize > MAX_GROUPS) {
    throw new RangeError(`${OP}: groupSize ${groupSize} must divide inFeatures ${I} into at most ${MAX_GROUPS} groups`);
  }
  const eps = shape.eps ?? 0;
  if (norm !== 'none' && !(eps > 0)) throw new RangeError(`${OP}: a norm needs eps > 0, got ${eps}`);
  if ((norm === 'rms' || norm === 'gated-rms') && !buffers.g) throw new RangeError(`${OP}: a norm needs its weight g`);
  const sumCount = shape.sums ?? 0;
  if (presummed) {
    checkCount(OP, 'sums', sumCount, 1);
    if (!buffers.sums) throw new RangeError(`${OP}: 'rms-presummed' needs the sums buffer`);
  }
  if (norm === 'gated-rms' && !buffers.z) throw new RangeError(`${OP}: the gated norm needs z`);
  const conv = shape.conv;
  if (conv) {
    checkCount(OP, 'conv.kernelSize', conv.kernelSize, 2, 8);
    checkCount(OP, 'conv.channels', conv.channels, 1);
    checkCount(OP, 'conv.start', conv.start, 0);
    if (conv.start + conv.channels > O) throw new RangeError(`${OP}: conv channels ${conv.start}..${conv.start + conv.channels - 1} outside the ${O} outputs`);
    if (!buffers.conv || !buffers.convState) throw new RangeError(`${OP}: the conv epilogue needs conv and convState`);
  }
  const x = bindElements(ctx, OP, 'x', buffers.x, xOffset + I, direct ? 16 : 4);
  // Binding 2: z for the gated norm, the pieces of Σ u² for the presummed one.
  const z = presummed ? bindElements(ctx, OP, 'sums', buffers.sums as GPUBuffer, sumCount) : buffers.z && norm === 'gated-rms' ? bindElements(ctx, OP, 'z', buffers.z, zOffset + I) : x;
  const g = buffers.g && (norm === 'rms' || norm === 'gated-rms') ? bindElements(ctx, OP, 'g', buffers.g, I) : x;
  const weight = bindElements(ctx, OP, 'weight', buffers.weight, weightWords(O * I, format), 16);
  const convW = conv ? bindElements(ctx, OP, 'conv', buffers.conv as GPUBuffer, conv.channels * (conv.kernelSize + 1)) : x;
  const owned: GPUBuffer[] = [];
  let convState: GPUBufferBinding;
  if (conv) convState = bindElements(ctx, OP, 'convState', buffers.convState as GPUBuffer, conv.channels * (conv.kernelSize - 1));
  else convState = { buffer: placeholderBuffer(ctx.device, `${label}.noConvState`, owned) };
  const yOffset = shape.yOffset ?? 0;
  checkCount(OP, 'yOffset', yOffset, 0);
  const y = bindElements(ctx, OP, 'y', buffers.y, yOffset + O);
  const read: [string, GPUBuffer][] = [
    ['x', buffers.x],
    ['weight', buffers.weight],
  ];
  if (norm === 'gated-rms' && buffers.z) read.push(['z', buffers.z]);
  if ((norm === 'rms' || norm === 'gated-rms') && buffers.g) read.push(['g', buffers.g]);
  if (presummed && buffers.sums) read.push(['sums', buffers.sums]);
  if (conv && buffers.conv) read.push(['conv', buffers.conv]);
  const written: [string, GPUBuffer][] = [['y', buffers.y]];
  if (conv && buffers.convState) written.push(['convState', buffers.convState]);
  const xProj = shape.xProj;
  const xProjBindings: GPUBufferBinding[] = [];
  if (xProj) {
    if (!conv || conv.start !== 0) throw new RangeError(`${OP}: x_proj folds into the conv channels from output 0 (conv.start 0)`);
    if (!isXProjFormat(xProj.format)) throw new RangeError(`${OP}: a folded x_proj must be f32, f16 or bf16, got ${xProj.format}`);
    if (!xProjFoldable(ctx, xProj.format)) throw new RangeError(`${OP}: a folded x_proj binds 9 storage buffers; this device allows ${ctx.device.limits.maxStorageBuffersPerShaderStage}`);
    checkCount(OP, 'xProj.outputs', xProj.outputs, 1);
    if (!buffers.xProjWeight || !buffers.xProjPartials) throw new RangeError(`${OP}: a folded x_proj needs xProjWeight and xProjPartials`);
    xProjBindings.push(
      bindElements(ctx, OP, 'xProjWeight', buffers.xProjWeight, weightWords(xProj.outputs * conv.channels, xProj.format)),
      bindElements(ctx, OP, 'xProjPartials', buffers.xProjPartials, xProjPartialLayout(ctx, shape).elements),
    );
    read.push(['xProjWeight', buffers.xProjWeight]);
    written.push(['xProjPartials', buffers.xProjPartials]);
  }
  checkWrittenNotAliased(OP, read, written);

  const gx = Math.min(rowBlocks(O, mv), workgroupCap(ctx, format));
  const { device } = ctx;
  const readOnly = 'read-only-storage' as const;
  const layout = xProj
    ? bindGroupLayoutFor(ctx, `${OP}.xProj`, ['uniform', readOnly, readOnly, readOnly, readOnly, readOnly, 'storage', 'storage', readOnly, 'storage'])
    : bindGroupLayoutFor(ctx, OP, ['uniform', readOnly, readOnly, readOnly, readOnly, readOnly, 'storage', 'storage']);
  // Row sums with subgroupAdd where the device allows (app/kernels/subgroups.ts); several subgroups
  // of a row need a slot per subgroup and row in workgroup memory (rows ≤ subgroup size).
  const sg = ctx.subgroupSize ?? 0;
  const sub = subgroupReduction(ctx, mv.threadsPerRow === sg || mv.rows <= sg ? mv.threadsPerRow : 0);
  const constants: Record<string, number> = {
    WORKGROUP_SIZE,
    THREADS_PER_ROW: mv.threadsPerRow,
    ROWS: mv.rows,
    UNROLL: mv.unroll,
    MAX_IN: direct ? 4 : Math.min(Math.ceil(I / 64) * 64, normMatvecMaxIn(ctx)),
    NORM: { none: 0, rms: 1, 'gated-rms': 2, 'rms-presummed': 3 }[norm],
    DEFER_SCALE: norm !== 'none' && groupSize === I ? 1 : 0,
    CONV_K: conv ? conv.kernelSize : 0,
    // The epilogue's early loads (norm_matvec.wgsl PREFETCH) for element-wise weights only: with
    // Q4_K's in_proj they cost 37.2 against 31.6 µs a call at mamba-2.8b on the H100 (a step 3.57
    // against 3.29 ms; bench/RESULTS.md nineteenth session); the other block formats are unmeasured
    // and keep the late loads too.
    ...(isBlockFormat(format) ? { PREFETCH: 0 } : prefetchConstants(ctx.tuning)),
    ...(sub.size > 0 ? { SG_SIZE: sub.size } : {}),
    ...(format !== 'f32' ? { W_FORMAT: WEIGHT_FORMAT_CODE[format] } : {}),
  };
  const pipeline = ctx.pipelines.get({ op: OP, code: sub.prefix + (direct ? X_IN_PLACE : X_STAGED) + (xProj ? xProjCode(xProj.format as XProjFormat) : NO_XPROJ) + code, layout, constants });
  const params = uniformBuffer(device, `${label}.params`, 48);
  const data = new ArrayBuffer(48);
  new Uint32Array(data, 0, 8).set([I, O, xOffset, zOffset, groupSize, conv?.start ?? 0, conv?.channels ?? 0, shape.accumulate ? 1 : 0]);
  new Float32Array(data, 32, 1)[0] = eps;
  new Uint32Array(data, 36, 3).set([yOffset, sumCount, xProj?.outputs ?? 0]);
  device.queue.writeBuffer(params, 0, data);
  owned.push(params);
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, layout, [{ buffer: params }, x, z, g, weight, convW, convState, y, ...xProjBindings]);
  return singleDispatch(label, pipeline, bindGroup, [gx], owned);
}
