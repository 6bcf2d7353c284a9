/**
 * Op: one decode token through one Mamba-2 layer with one norm group in a single dispatch whose
 * three steps (norm + in_proj + conv, the SSD step with the gate, the presummed gated norm +
 * out_proj + residual add) are separated by grid barriers (shaders/mamba2_layer_grid.wgsl)
 * instead of the two dispatch boundaries of the fused decode. Used only where the adapter was
 * found to run the chosen number of workgroups at once (app/gpu/grid-sync.ts) or a test forces it
 * (GpuContext.tuning.gridDecode); weights f32, f16 or bf16 (both matrices in one format).
 *
 * Buffers: the residual [D] (read, and written by out_proj's residual add), the block norm weight
 * [D], in_proj [O_in, D], the packed conv weights (packConvWeights) and conv state [C, K−1], the
 * packed SSD weights (packSsdWeights), the SSM state [H, P, N], the gated norm's weight [Di],
 * out_proj [D, Di], and `control` (GridControl: the barrier counters and the abort flag, then the
 * values the steps hand each other: in_proj's output, u·g and the pieces of Σ u², read and written
 * as atomics; one buffer shared by every layer's dispatch, 10 storage bindings in all).
 */
import sigmoidCode from '../../shaders/sigmoid.wgsl?raw';
import softplusCode from '../../shaders/softplus.wgsl?raw';
import weightsCode from '../../shaders/weights.wgsl?raw';
import workgroupSumCode from '../../shaders/workgroup_sum.wgsl?raw';
import gridCode from '../../shaders/mamba2_layer_grid.wgsl?raw';
import { readBuffer, storageBuffer, uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindElements, bindGroupFor, bindGroupLayoutFor, checkCount, checkWrittenNotAliased, singleDispatch } from './op-helpers.js';
import { subgroupReduction } from './subgroups.js';
import { WEIGHT_FORMAT_CODE, weightWords, type WeightFormat } from './weight-format.js';

const OP = 'Mamba2LayerGrid';
const code = `${sigmoidCode}\n${softplusCode}\n${weightsCode}\n${workgroupSumCode}\n${gridCode}`;
/** Rows a virtual workgroup takes (the kernel's ROWS_PER_V): the step's pieces of Σ u². */
export const GRID_ROWS = 8;

/**
 * Where z, xBC and dt sit in a row of in_proj's output: the mixer's `mamba2Layout`
 * (app/arch/mamba2/layout.ts, the one place that computes it). The kernel reads x, B and C as the
 * first Di, next G·N and last G·N channels of xBC.
 */
export interface Mamba2InProjRow {
  inProjWidth: number;
  zOffset: number;
  xbcOffset: number;
  xbcWidth: number;
  dtOffset: number;
  bOffset: number;
  cOffset: number;
}

export interface Mamba2LayerGridShape {
  row: Mamba2InProjRow;
  dModel: number;
  dInner: number;
  nHeads: number;
  headDim: number;
  nGroups: number;
  dState: number;
  dConv: number;
  eps: number;
  normEps: number;
  /** time_step_limit: Δ clamped to [min, max]. */
  dtMin: number;
  dtMax: number;
  format: WeightFormat;
}

export interface Mamba2LayerGridBuffers {
  residual: GPUBuffer;
  normWeight: GPUBuffer;
  inProj: GPUBuffer;
  conv: GPUBuffer;
  convState: GPUBuffer;
  ssdWeights: GPUBuffer;
  ssmState: GPUBuffer;
  gatedNormWeight: GPUBuffer;
  outProj: GPUBuffer;
  control: GridControl;
}

/**
 * The grid barriers' counters and abort flag (words 0..3), then `scratchWords` words for the values
 * a grid dispatch's steps hand each other: one per grid size, shared by the dispatches that use it.
 */
export interface GridControl {
  readonly workgroups: number;
  readonly scratchWords: number;
  readonly buffer: GPUBuffer;
}

const CONTROL_WORDS = 4;

export function createGridControl(ctx: GpuContext, workgroups: number, scratchWords: number, label = 'GridControl'): GridControl {
  checkGridWorkgroups(workgroups);
  checkCount(OP, 'scratchWords', scratchWords, 0);
  return { workgroups, scratchWords, buffer: storageBuffer(ctx.device, `${label}.buffer`, (CONTROL_WORDS + scratchWords) * 4) };
}

/** The scratch words one Mamba-2 layer's grid dispatch needs: in_proj's output, u·g, the pieces of Σ u². */
export function mamba2LayerGridScratch(inProjWidth: number, dInner: number): number {
  return inProjWidth + dInner + dInner / GRID_ROWS;
}

function checkGridWorkgroups(n: number): void {
  checkCount(OP, 'workgroups', n, 1, 1 << 16);
  if ((n & (n - 1)) !== 0) throw new RangeError(`${OP}: workgroups must be a power of two, got ${n}`);
}

/** Whether a layer of this shape can run in one grid dispatch on this device. */
export function mamba2LayerGridFits(ctx: GpuContext, s: Omit<Mamba2LayerGridShape, 'row' | 'eps' | 'normEps' | 'dtMin' | 'dtMax'>): boolean {
  const halves = s.format === 'f16' || s.format === 'bf16';
  const quantum = halves ? 8 : 4;
  const di4 = Math.ceil(s.dInner / 4) * 4;
  return (
    (s.format === 'f32' || halves) &&
    s.dModel % quantum === 0 &&
    s.dInner % quantum === 0 &&
    s.headDim % GRID_ROWS === 0 &&
    s.dState <= 256 &&
    s.nHeads % s.nGroups === 0 &&
    s.dConv >= 2 &&
    s.dConv <= 8 &&
    ctx.device.limits.maxStorageBuffersPerShaderStage >= 10 &&
    // workgroup memory: ug [Di], B and C [2·256], the partial sums [256], the piece squares.
    di4 * 4 + 512 * 4 + 256 * 4 + 64 <= ctx.device.limits.maxComputeWorkgroupStorageSize
  );
}

export function mamba2LayerGrid(ctx: GpuContext, s: Mamba2LayerGridShape, b: Mamba2LayerGridBuffers, label = OP): Dispatch {
  const { dModel: D, dInner: Di, nHeads: H, headDim: P, nGroups: G, dState: N, dConv: K, format } = s;
  if (!mamba2LayerGridFits(ctx, s)) throw new RangeError(`${OP}: shape D ${D}, Di ${Di}, P ${P}, N ${N}, K ${K}, format ${format} is not supported by the grid decode`);
  checkCount(OP, 'heads', H, 1);
  if (H * P !== Di) throw new RangeError(`${OP}: nHeads × headDim (${H} × ${P}) must equal dInner ${Di}`);
  const { row } = s;
  if (row.xbcWidth !== Di + 2 * G * N || row.bOffset !== Di || row.cOffset !== Di + G * N) {
    throw new RangeError(`${OP}: xBC must be x [${Di}], B [${G * N}], C [${G * N}] in order, got width ${row.xbcWidth}, B at ${row.bOffset}, C at ${row.cOffset}`);
  }
  const xbcWidth = row.xbcWidth;
  const inRows = row.inProjWidth;
  const grid = b.control.workgroups;
  const bind = (name: string, buffer: GPUBuffer, elements: number, alignment = 4) => bindElements(ctx, OP, name, buffer, elements, alignment);
  const resources = [
    bind('residual', b.residual, D, 16),
    bind('normWeight', b.normWeight, D, 16),
    bind('inProj', b.inProj, weightWords(inRows * D, format), 16),
    bind('conv', b.conv, xbcWidth * (K + 1)),
    bind('convState', b.convState, xbcWidth * (K - 1)),
    bind('ssdWeights', b.ssdWeights, 3 * H),
    bind('ssmState', b.ssmState, H * P * N),
    bind('gatedNormWeight', b.gatedNormWeight, Di),
    bind('outProj', b.outProj, weightWords(D * Di, format), 16),
    { buffer: b.control.buffer },
  ];
  const scratch = mamba2LayerGridScratch(inRows, Di);
  if (b.control.scratchWords < scratch) throw new RangeError(`${OP}: the grid control holds ${b.control.scratchWords} scratch words, this layer needs ${scratch}`);
  checkWrittenNotAliased(
    OP,
    [
      ['normWeight', b.normWeight],
      ['inProj', b.inProj],
      ['conv', b.conv],
      ['ssdWeights', b.ssdWeights],
      ['gatedNormWeight', b.gatedNormWeight],
      ['outProj', b.outProj],
    ],
    [
      ['residual', b.residual],
      ['convState', b.convState],
      ['ssmState', b.ssmState],
      ['control', b.control.buffer],
    ],
  );
  const { device } = ctx;
  const R = 'read-only-storage' as const;
  const W = 'storage' as const;
  const layout = bindGroupLayoutFor(ctx, OP, ['uniform', W, R, R, R, W, R, W, R, R, W]);
  // Row sums by subgroupAdd only with subgroups of exactly TPR = 32 invocations; else the tree.
  const wide = subgroupReduction(ctx, 32);
  const sub = wide.size === 32 ? wide : subgroupReduction(ctx, 0);
  const shapes = gridShapes(ctx, inRows, D, grid);
  const constants: Record<string, number> = {
    IN_ROWS: shapes.inProj.rows,
    OUT_ROWS: shapes.outProj.rows,
    IN_UNROLL: shapes.inProj.unroll,
    OUT_UNROLL: shapes.outProj.unroll,
    GRID: grid,
    GRID_SHIFT: Math.log2(grid),
    CONV_K: K,
    MAX_DI: Math.ceil(Di / 4) * 4,
    ...(sub.size > 0 ? { SG_SIZE: sub.size } : {}),
    ...(format !== 'f32' ? { W_FORMAT: WEIGHT_FORMAT_CODE[format] } : {}),
  };
  const pipeline = ctx.pipelines.get({ op: OP, code: sub.prefix + code, layout, constants });
  const params = uniformBuffer(device, `${label}.params`, 80);
  const data = new ArrayBuffer(80);
  const hasMax = Number.isFinite(s.dtMax);
  new Uint32Array(data, 0, 12).set([D, inRows, Di, H, P, G, N, row.zOffset, row.xbcOffset, xbcWidth, row.dtOffset, hasMax ? 1 : 0]);
  new Float32Array(data, 48, 4).set([s.eps, s.normEps, s.dtMin, hasMax ? s.dtMax : 0]);
  new Uint32Array(data, 64, 3).set([CONTROL_WORDS, CONTROL_WORDS + inRows, CONTROL_WORDS + inRows + Di]);
  device.queue.writeBuffer(params, 0, data);
  const bindGroup = bindGroupFor(device, `${label}.bindGroup`, layout, [{ buffer: params }, ...resources]);
  return singleDispatch(label, pipeline, bindGroup, [grid], [params]);
}

/**
 * One matrix-vector step's shape: rows a group of 32 threads takes at once, 16-byte loads a row in
 * flight per thread (rows · unroll ≤ 16).
 */
export interface GridMatvecShape {
  rows: number;
  unroll: number;
}

/**
 * The shape for `outRows` rows on a grid of `groups` groups of 32 threads: the fewest rows a group
 * that still covers every row in one round (at most 8), and as many loads in flight as the
 * registers allow. A round that leaves most groups idle costs as much as a full one: on the H200,
 * mamba2-2.7b's in_proj (10,576 rows) at 4 rows a group on 256 workgroups took two rounds, the
 * second a third full (bench/RESULTS.md).
 */
export function gridMatvecShape(outRows: number, groups: number): GridMatvecShape {
  const rows = Math.min(8, Math.max(1, Math.ceil(outRows / groups)));
  return { rows, unroll: Math.max(1, Math.min(4, Math.floor(8 / rows))) };
}

function gridShapes(ctx: GpuContext, inRows: number, dModel: number, grid: number): { inProj: GridMatvecShape; outProj: GridMatvecShape } {
  const groups = grid * GRID_ROWS;
  const forced = ctx.tuning?.gridShape;
  const inProj = { ...gridMatvecShape(inRows, groups), ...(forced?.inRows ? { rows: forced.inRows } : {}), ...(forced?.unroll ? { unroll: forced.unroll } : {}) };
  const outProj = { ...gridMatvecShape(dModel, groups), ...(forced?.outRows ? { rows: forced.outRows } : {}), ...(forced?.unroll ? { unroll: forced.unroll } : {}) };
  for (const [name, s] of [['in_proj', inProj], ['out_proj', outProj]] as const) {
    checkCount(OP, `${name} rows`, s.rows, 1, 8);
    checkCount(OP, `${name} unroll`, s.unroll, 1, 16);
    if (!gridMatvecShapeFits(s)) throw new RangeError(`${OP}: ${name} rows × unroll must be ≤ 16, got ${s.rows} × ${s.unroll}`);
  }
  return { inProj, outProj };
}

/** Whether the kernel takes this matrix-vector shape: 1..8 rows a group, ≥ 1 loads in flight, rows × loads ≤ 16 (its register arrays). */
export function gridMatvecShapeFits(s: GridMatvecShape): boolean {
  return Number.isInteger(s.rows) && Number.isInteger(s.unroll) && s.rows >= 1 && s.rows <= 8 && s.unroll >= 1 && s.rows * s.unroll <= 16;
}

/** Whether a grid dispatch gave up waiting at a barrier (the GPU did not run all its workgroups at once): control word 2, the abort flag. */
export async function gridAborted(ctx: GpuContext, control: GridControl): Promise<boolean> {
  return new Uint32Array(await readBuffer(ctx.device, control.buffer, 4, 8))[0] !== 0;
}
