/**
 * Op: the K most likely next tokens of each row of logits and their softmax probabilities, on
 * the GPU, so a trace reads back [T, 2K] words instead of [T, V] logits. Shader:
 * shaders/top_k.wgsl. Reference: app/analysis/distributions.ts topTokens (float64, on the CPU).
 * Ties rank the lower index first, as the reference does.
 */
import code from '../../shaders/top_k.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkCount, checkInteger, checkWrittenNotAliased, rowWorkgroupSize, singleDispatch } from './op-helpers.js';

const OP = 'TopK';
const WORKGROUP_SIZE = 128; // ≤ 128: the shader keeps WORKGROUP_SIZE · MAX_K candidates in workgroup memory
/** The shader's MAX_K. */
export const TOP_K_MAX = 8;

export interface TopKShape {
  rows: number; // R
  vocab: number; // V
  k: number; // K ≤ TOP_K_MAX, ≤ V
}

export interface TopKBuffers {
  logits: GPUBuffer; // [R, V]
  out: GPUBuffer; // u32 [R, 2K]: ids, then probabilities (f32 bits)
}

export function topK(ctx: GpuContext, shape: TopKShape, buffers: TopKBuffers, label = OP): Dispatch {
  const { rows: R, vocab: V, k: K } = shape;
  checkInteger(OP, 'rows', R, 1);
  checkInteger(OP, 'vocab', V, 1);
  checkCount(OP, 'k', K, 1, Math.min(TOP_K_MAX, V));
  checkWrittenNotAliased(OP, [['logits', buffers.logits]], [['out', buffers.out]]);
  const logits = bindElements(ctx, OP, 'logits', buffers.logits, R * V);
  const out = bindElements(ctx, OP, 'out', buffers.out, R * 2 * K);
  const maxGroups = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.min(R, maxGroups);
  const gy = Math.ceil(R / gx);
  if (gy > maxGroups) throw new RangeError(`${OP}: ${R} rows need more than ${maxGroups}² workgroups`);
  const { device } = ctx;
  const layout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'storage']);
  const pipeline = ctx.pipelines.get({ op: OP, code, layout, constants: { WORKGROUP_SIZE: rowWorkgroupSize(ctx, WORKGROUP_SIZE) } });
  const params = uniformBuffer(device, `${label}.params`, 16);
  device.queue.writeBuffer(params, 0, new Uint32Array([R, V, K, gx]));
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, layout, [{ buffer: params }, logits, out]);
  return singleDispatch(label, pipeline, bindGroup, [gx, gy], [params]);
}

/** Splits the op's [R, 2K] words into ids [R, K] and probabilities [R, K]. */
export function unpackTopK(words: Uint32Array, rows: number, k: number): { ids: Int32Array; probs: Float32Array } {
  const ids = new Int32Array(rows * k);
  const probs = new Float32Array(rows * k);
  const asF32 = new Float32Array(words.buffer, words.byteOffset, words.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      ids[r * k + j] = words[r * 2 * k + j] as number;
      probs[r * k + j] = asF32[r * 2 * k + k + j] as number;
    }
  }
  return { ids, probs };
}
