/**
 * Op: the token embedding gather, out[T, D] = table[ids[t], :]. Shader: shaders/embedding.wgsl.
 * Reference: embedding.ref.ts.
 *
 * An id ≥ V reads row V - 1 (the shader clamps, so no read leaves the table). Ids should be
 * checked on the CPU before upload with validateTokenIds; the clamp is only a safety net.
 */
import embeddingCode from '../../shaders/embedding.wgsl?raw';
import weightsCode from '../../shaders/weights.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { rowQuantum, WEIGHT_FORMAT_CODE, weightWords, type WeightFormat } from './weight-format.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkInteger, singleDispatch } from './op-helpers.js';

const OP = 'Embedding';
const code = weightsCode + embeddingCode;
const WORKGROUP_SIZE = 256;

export interface EmbeddingShape {
  tokens: number; // T
  vocab: number; // V
  dim: number; // D
  /** How the table is stored (app/kernels/weight-format.ts; default fp32). */
  tableFormat?: WeightFormat;
  /** The table holds rows firstRow .. firstRow + rows − 1 of the vocabulary (a part of a split table; default all V). */
  firstRow?: number;
  rows?: number;
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

export function embedding(ctx: GpuContext, shape: EmbeddingShape, buffers: EmbeddingBuffers, label = OP): Dispatch {
  const { tokens: T, vocab: V, dim: D } = shape;
  checkInteger(OP, 'tokens', T, 1);
  checkInteger(OP, 'vocab', V, 1);
  checkInteger(OP, 'dim', D, 1);
  if (T * D >= 2 ** 32) throw new RangeError(`${OP}: T·D = ${T * D} elements is over the shader's u32 indexing`);
  if (buffers.output === buffers.ids || buffers.output === buffers.table) {
    throw new RangeError(`${OP}: output (${buffers.output.label}) must not be the ids or table buffer`);
  }
  const ids = bindElements(ctx, OP, 'ids', buffers.ids, T);
  const format = shape.tableFormat ?? 'f32';
  if (D % rowQuantum(format) !== 0) throw new RangeError(`${OP}: dim ${D} is not a whole number of ${format} blocks (${rowQuantum(format)})`);
  const firstRow = shape.firstRow ?? 0;
  const rows = shape.rows ?? V - firstRow;
  checkInteger(OP, 'firstRow', firstRow, 0);
  checkInteger(OP, 'rows', rows, 1);
  if (firstRow + rows > V) throw new RangeError(`${OP}: rows ${firstRow}..${firstRow + rows - 1} outside the vocabulary of ${V}`);
  const table = bindElements(ctx, OP, 'table', buffers.table, weightWords(rows * D, format));
  const output = bindElements(ctx, OP, 'output', buffers.output, T * D);
  const maxGroups = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const blocks = Math.ceil((T * D) / WORKGROUP_SIZE);
  const gx = Math.min(blocks, maxGroups);
  const gy = Math.ceil(blocks / gx);
  if (gy > maxGroups) throw new RangeError(`${OP}: T·D = ${T * D} needs more than ${maxGroups}² workgroups`);

  const { device } = ctx;
  // params, ids, table, output
  const bindGroupLayout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'read-only-storage', 'storage']);
  const pipeline = ctx.pipelines.get({ op: OP, code, layout: bindGroupLayout, constants: { WORKGROUP_SIZE, ...(format !== 'f32' ? { W_FORMAT: WEIGHT_FORMAT_CODE[format] } : {}) } });
  const params = uniformBuffer(device, `${label}.params`, 32);
  device.queue.writeBuffer(params, 0, new Uint32Array([T, D, V, firstRow, rows, 0, 0, 0]));
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, bindGroupLayout, [{ buffer: params }, ids, table, output]);
  return singleDispatch(label, pipeline, bindGroup, [gx, gy], [params]);
}
