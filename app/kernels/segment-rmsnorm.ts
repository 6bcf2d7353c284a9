/**
 * Op: a weightless RMS norm over contiguous column segments of each row, in place (Falcon-Mamba's
 * norm of dt_r, B and C inside x_proj's output). Shader: shaders/segment_rmsnorm.wgsl.
 * Reference: segment-rmsnorm.ref.ts.
 */
import code from '../../shaders/segment_rmsnorm.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkCount, singleDispatch } from './op-helpers.js';
import { withWorkgroupSum } from './subgroups.js';

const OP = 'SegmentRmsNorm';
/** Must be a power of two (the reduction halves it). Segments are short (dt_rank ≤ 256, d_state 16). */
const WORKGROUP_SIZE = 64;
/** The shader's `bounds` is a vec4: at most 3 segments. */
export const MAX_SEGMENTS = 3;

export interface SegmentRmsNormShape {
  rows: number; // T
  /** Elements between rows. */
  rowStride: number;
  /**
   * Segment boundaries, ascending, as columns of a row: segment s = [bounds[s], bounds[s+1]).
   * 2 to 4 entries (1 to 3 segments), each segment at least one column, the last ≤ rowStride.
   */
  bounds: readonly number[];
  eps: number;
}

export function segmentRmsNorm(ctx: GpuContext, shape: SegmentRmsNormShape, buffers: { x: GPUBuffer }, label = OP): Dispatch {
  const { rows, rowStride, bounds, eps } = shape;
  checkCount(OP, 'rows', rows, 1, ctx.adapter.limits.maxComputeWorkgroupsPerDimension);
  checkCount(OP, 'rowStride', rowStride, 1);
  if (bounds.length < 2 || bounds.length > MAX_SEGMENTS + 1) throw new RangeError(`${OP}: bounds must have 2 to ${MAX_SEGMENTS + 1} entries, got ${bounds.length}`);
  for (const [i, b] of bounds.entries()) {
    const min = i === 0 ? 0 : (bounds[i - 1] as number) + 1;
    checkCount(OP, `bounds[${i}]`, b, min, rowStride);
  }
  if (!(eps > 0 && Number.isFinite(eps))) throw new RangeError(`${OP}: eps must be positive, got ${eps}`);
  const binding = bindElements(ctx, OP, 'x', buffers.x, rows * rowStride);

  const { device } = ctx;
  const bindGroupLayout = bindGroupLayoutFor(ctx, OP, ['uniform', 'storage']);
  const reduce = withWorkgroupSum(ctx, code, WORKGROUP_SIZE);
  const pipeline = ctx.pipelines.get({ op: OP, code: reduce.code, layout: bindGroupLayout, constants: { WORKGROUP_SIZE, ...reduce.constants } });
  const params = uniformBuffer(device, `${label}.params`, 32);
  const data = new ArrayBuffer(32);
  new Uint32Array(data, 0, 2).set([rows, rowStride]);
  new Float32Array(data, 8, 1)[0] = eps;
  const padded = [...bounds, ...new Array<number>(4 - bounds.length).fill(bounds[bounds.length - 1] as number)];
  new Uint32Array(data, 16, 4).set(padded);
  device.queue.writeBuffer(params, 0, data);
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, bindGroupLayout, [{ buffer: params }, binding]);
  return singleDispatch(label, pipeline, bindGroup, [bounds.length - 1, rows], [params]);
}
