/**
 * Op: Mamba-2's selective state space scan (SSD) with softplus(dt + dt_bias), the clamp to
 * time_step_limit, A = −exp(A_log) and the D skip fused, over a state [H, P, N] that persists across
 * calls (the caller owns it; zeros at sequence start). y is written before the gate and the norm
 * (gated-rmsnorm.ts does those). Shader: shaders/ssd_scan.wgsl. Reference: ssd.ref.ts.
 *
 * - T = 1 (decode): one dispatch (`step`), about N / 4 threads per state row (h, p); optionally
 *   the gate (gateOffset) and the pieces of a one-group norm's sum of squares (normSums).
 * - T > 1 (prefill): the chunked SSD form in five dispatches: Δ and the within-chunk cumulative
 *   sums S of Δ·A (`chunk_cumsum`: 32 segments of a chunk summed at once, then each offset by the
 *   segments before it, so no thread walks a whole chunk), each chunk's end state from zero (`chunk_states`), the short
 *   sequential scan over chunks carrying the state (`state_passing`, which also writes the final
 *   state back), C_t·B_s within each chunk once per group (`chunk_cb`, shared by the group's
 *   heads), and the output (`chunk_scan`: the state-to-output term exp(S_t)·C_t·start plus the
 *   intra-chunk term Σ_{s≤t} C_t·B_s·exp(S_t − S_s)·Δ_s·x_s plus D·x_t). chunk_states, chunk_cb
 *   and chunk_scan are small matrix products in 64 × 64 tiles through workgroup memory. Every
 *   exponent is a difference of cumulative sums, ≤ 0. Scratch owned by the op: 2·T·H + K·H·P·N +
 *   K·G·L² floats (K = ceil(T / L) chunks); the T × H × P × N expanded state is never written.
 *
 * Glossary: H heads, P head_dim, G groups (head h reads B and C of group h / (H / G)), N d_state,
 * Di = H·P (d_inner), L the chunk length (config chunk_size).
 *
 * To stay within 8 storage buffers per pass, A_log, D and dt_bias (all [H]) travel packed in one
 * buffer (`packSsdWeights`, once per layer, shared by its prefill and decode ops), and x, B and C
 * are three views into one buffer (the conv output xBC).
 */
import sigmoidCode from '../../shaders/sigmoid.wgsl?raw';
import softplusCode from '../../shaders/softplus.wgsl?raw';
import scanCode from '../../shaders/ssd_scan.wgsl?raw';
import { storageBuffer, uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { encodeParts, kernelPart, type Dispatch, type DispatchPart } from './dispatch.js';
import { subgroupReduction } from './subgroups.js';
import { bufferLayoutEntry as entry, checkBufferElements, checkCount, checkWrittenNotAliased, foldWorkgroups, placeholderBuffer, prefetchConstants } from './op-helpers.js';
import type { StridedView } from './selective-scan.js';
import { checkSummarySlot, summarySlotBinding } from './step-summary.js';

/** The shader with the shared softplus prepended (WGSL has no includes). */
const code = `${sigmoidCode}\n${softplusCode}\n${scanCode}`;

const OP = 'SsdScan';
const WORKGROUP_SIZE = 64;
/** The decode step's workgroup: STEP_WORKGROUP_SIZE / stepLanes state rows (h, p). */
const STEP_WORKGROUP_SIZE = 256;

/**
 * Threads per state row in the decode step: about N / 4 (each takes four states at a time), a
 * power of two from 1 to the workgroup; at least a subgroup where N fills one (its sums then use
 * subgroupAdd).
 */
function stepLanes(ctx: GpuContext, N: number): number {
  let lanes = Math.min(STEP_WORKGROUP_SIZE, 2 ** Math.ceil(Math.log2(Math.ceil(N / 4))));
  const sg = ctx.subgroupSize ?? 0;
  if (sg > 0 && lanes < sg && N >= sg) lanes = sg;
  return lanes;
}
/** chunk_cumsum's heads per workgroup (CUMSUM_HEADS in the shader). */
const CUMSUM_HEADS = 8;
/** The chunk kernels' output tile side (TILE in the shader). */
const TILE = 64;
/** The wide chunk kernels' tiles (WM × WN in the shader): rows (states n, tokens t) × head dims p. */
const WIDE_ROWS = 128;
const WIDE_COLS = 64;
export const MAX_HEAD_DIM = 256;
export const DEFAULT_SSD_CHUNK_LENGTH = 64;
const MAX_CHUNK_LENGTH = 1024;

/**
 * x [T, H·P], B [T, G·N] and C [T, G·N] as three views into one buffer with one row stride:
 * x[t, i] = buffer[xOffset + t·rowStride + i], B and C likewise at bOffset and cOffset.
 */
export interface XbcView {
  buffer: GPUBuffer;
  rowStride: number;
  xOffset: number;
  bOffset: number;
  cOffset: number;
}

/** A layer's per-head scan parameters, packed: A_log [H], then D [H], then dt_bias [H]. */
export interface SsdWeights {
  readonly buffer: GPUBuffer;
  readonly nHeads: number;
  destroy(): void;
}

export interface SsdWeightSources {
  aLog: GPUBuffer; // [H] A_log as in the checkpoint (A = −exp(A_log))
  d: GPUBuffer; // [H] the D skip
  dtBias: GPUBuffer; // [H]
}

export interface SsdShape {
  tokens: number; // T
  nHeads: number; // H
  headDim: number; // P (≤ 256)
  nGroups: number; // G, divides H
  dState: number; // N
}

export interface SsdBuffers {
  xbc: XbcView; // x, B, C (convXbc)
  dt: StridedView; // dt [T, H] without its bias (mamba2InProjDt)
  weights: SsdWeights; // packSsdWeights, once per layer
  y: GPUBuffer; // [T, H·P] output (before the gated norm)
  state: GPUBuffer; // [H, P, N] read and written
  /** [T, H] trace of Δ (after softplus and the clamp). Given at creation: tracing on; absent: nothing extra runs. */
  delta?: GPUBuffer;
  /**
   * T = 1 only, instead of `delta`: a traced decode step's summary slot (app/kernels/step-summary.ts),
   * [Δ [H] | 1 − exp(Δ·A) [H] | Σ_n state² [H·P]], at byte `offset` of `buffer` (a multiple of
   * the adapter's minStorageBufferOffsetAlignment).
   */
  stepSummary?: { buffer: GPUBuffer; offset: number };
  /**
   * Prefill scratch to use instead of allocating it (a model shares one set across its layers,
   * which run one after another): sizes from ssdScratchElements. Absent: the op owns its own.
   */
  scratch?: SsdScratch;
}

/** The chunked prefill's scratch: cums [2, T, H], chunk states [K, H, P, N], C·Bᵀ [K, G, L, L]. */
export interface SsdScratch {
  cums: GPUBuffer;
  chunkState: GPUBuffer;
  cb: GPUBuffer;
}

/** Elements of each scratch buffer the prefill of `shape` needs with chunks of `chunkLength`. */
export function ssdScratchElements(shape: SsdShape, chunkLength: number): { cums: number; chunkState: number; cb: number } {
  const { tokens: T, nHeads: H, headDim: P, nGroups: G, dState: N } = shape;
  const chunks = Math.ceil(T / chunkLength);
  return { cums: 2 * T * H, chunkState: chunks * H * P * N, cb: chunks * G * chunkLength * chunkLength };
}

export interface SsdOptions {
  /** Tokens per chunk of the chunked prefill (1..1024; default 64; the config's chunk_size). */
  chunkLength?: number;
  /** time_step_limit: Δ is clamped to [min, max]; max may be Infinity (default [0, Infinity]). */
  timeStepLimit?: readonly [number, number];
  /**
   * T = 1 only: the step writes y · silu(z) (Mamba-2's gate, before a norm of one group), z [H·P]
   * read from xbc's buffer at this element offset (in_proj's output holds z, x, B, C and dt).
   */
  gateOffset?: number;
  /**
   * T = 1 with gateOffset, before a norm of one group (RMSNorm(u) · g, u = y · silu(z)): the step
   * writes u · g instead, and Σ u² in pieces, one per step workgroup (ssdStepNormSums of them), into
   * `sums`; out_proj then reads u · g in place and scales its row sums by rsqrt(Σ / Di + eps)
   * (norm-matvec's 'rms-presummed'), with no prologue over Di inputs. `g`: the norm weight [Di].
   */
  normSums?: { g: GPUBuffer; sums: GPUBuffer };
}

/** State rows (h, p) per decode-step workgroup: piece k of `normSums` covers rows k·R .. k·R + R − 1. */
export function ssdStepRowsPerWorkgroup(ctx: GpuContext, dState: number): number {
  return STEP_WORKGROUP_SIZE / stepLanes(ctx, dState);
}

/** How many pieces of Σ u² the decode step writes with `normSums` (one per step workgroup). */
export function ssdStepNormSums(ctx: GpuContext, shape: Pick<SsdShape, 'nHeads' | 'headDim' | 'dState'>): number {
  return Math.ceil((shape.nHeads * shape.headDim) / ssdStepRowsPerWorkgroup(ctx, shape.dState));
}

/**
 * Packs a layer's A_log, D and dt_bias into one buffer (three copies on the GPU queue, once per
 * layer; the sources need COPY_SRC and are not read again). Share the result between the layer's
 * prefill and decode ops; `destroy` frees it.
 */
export function packSsdWeights(ctx: GpuContext, sources: SsdWeightSources, nHeads: number, label = 'SsdWeights'): SsdWeights {
  checkCount(OP, 'nHeads', nHeads, 1);
  const parts: [string, GPUBuffer][] = [
    ['aLog', sources.aLog],
    ['d', sources.d],
    ['dtBias', sources.dtBias],
  ];
  for (const [name, buffer] of parts) {
    checkBufferElements(OP, name, buffer, nHeads);
    if ((buffer.usage & GPUBufferUsage.COPY_SRC) === 0) {
      throw new RangeError(`${OP}: ${name} (${buffer.label}) needs COPY_SRC usage to be packed`);
    }
  }
  const { device } = ctx;
  const buffer = storageBuffer(device, `${label}.buffer`, 3 * nHeads * 4);
  const encoder = device.createCommandEncoder({ label: `${label}.encoder` });
  parts.forEach(([, source], i) => encoder.copyBufferToBuffer(source, 0, buffer, i * nHeads * 4, nHeads * 4));
  device.queue.submit([encoder.finish()]);
  return { buffer, nHeads, destroy: () => buffer.destroy() };
}

interface Layouts {
  step: GPUBindGroupLayout;
  cumsum: GPUBindGroupLayout;
  states: GPUBindGroupLayout;
  passing: GPUBindGroupLayout;
  cb: GPUBindGroupLayout;
  scan: GPUBindGroupLayout;
}

function layouts(ctx: GpuContext): Layouts {
  const uniform = entry(0, 'uniform');
  const read = 'read-only-storage';
  const rw = 'storage';
  const p = ctx.pipelines;
  return {
    // step: xbc, dt, weights, y, state, delta_out, norm_g, norm_sums.
    step: p.bindGroupLayout(`${OP}.step`, [uniform, entry(1, read), entry(2, read), entry(3, read), entry(4, rw), entry(5, rw), entry(6, rw), entry(10, read), entry(11, rw)]),
    // chunk_cumsum: dt, weights, delta_out, cums.
    cumsum: p.bindGroupLayout(`${OP}.cumsum`, [uniform, entry(2, read), entry(3, read), entry(6, rw), entry(7, rw)]),
    // chunk_states: xbc, cums, chunk_state.
    states: p.bindGroupLayout(`${OP}.states`, [uniform, entry(1, read), entry(7, rw), entry(8, rw)]),
    // state_passing: state, cums, chunk_state.
    passing: p.bindGroupLayout(`${OP}.passing`, [uniform, entry(5, rw), entry(7, rw), entry(8, rw)]),
    // chunk_cb: xbc, cb.
    cb: p.bindGroupLayout(`${OP}.cb`, [uniform, entry(1, read), entry(9, rw)]),
    // chunk_scan: xbc, weights, y, cums, chunk_state, cb.
    scan: p.bindGroupLayout(`${OP}.scan`, [uniform, entry(1, read), entry(3, read), entry(4, rw), entry(7, rw), entry(8, rw), entry(9, rw)]),
  };
}


/**
 * The SSD scan of one layer over `shape.tokens` tokens, bound once to its buffers. Encode it as
 * often as needed (a decode op is re-encoded every token); each encode advances `state` by T tokens.
 */
export function ssdScan(ctx: GpuContext, shape: SsdShape, buffers: SsdBuffers, label = OP, options: SsdOptions = {}): Dispatch {
  const { tokens: T, nHeads: H, headDim: P, nGroups: G, dState: N } = shape;
  const maxDim = ctx.adapter.limits.maxComputeWorkgroupsPerDimension;
  checkCount(OP, 'tokens', T, 1);
  checkCount(OP, 'nHeads', H, 1, maxDim);
  checkCount(OP, 'headDim', P, 1, MAX_HEAD_DIM);
  checkCount(OP, 'nGroups', G, 1, H);
  checkCount(OP, 'dState', N, 1);
  if (H % G !== 0) throw new RangeError(`${OP}: nGroups=${G} must divide nHeads=${H}`);
  const chunkLength = options.chunkLength ?? DEFAULT_SSD_CHUNK_LENGTH;
  checkCount(OP, 'chunkLength', chunkLength, 1, MAX_CHUNK_LENGTH);
  const [dtMin, dtMax] = options.timeStepLimit ?? [0, Infinity];
  if (!Number.isFinite(dtMin) || dtMin < 0 || Number.isNaN(dtMax) || dtMax < dtMin) {
    throw new RangeError(`${OP}: timeStepLimit must be [min, max] with 0 ≤ min ≤ max (max may be Infinity), got [${dtMin}, ${dtMax}]`);
  }
  const { xbc, dt, weights, delta } = buffers;
  if (weights.nHeads !== H) throw new RangeError(`${OP}: weights (${weights.buffer.label}) were packed for H=${weights.nHeads}, not H=${H}`);
  for (const [name, value] of [
    ['xbc.rowStride', xbc.rowStride],
    ['xbc.xOffset', xbc.xOffset],
    ['xbc.bOffset', xbc.bOffset],
    ['xbc.cOffset', xbc.cOffset],
    ['dt.offset', dt.offset],
    ['dt.rowStride', dt.rowStride],
  ] as const) {
    checkCount(OP, name, value, 0);
  }
  const Di = H * P;
  const GN = G * N;
  const gateOffset = options.gateOffset;
  if (gateOffset !== undefined) {
    if (T !== 1) throw new RangeError(`${OP}: the gate is applied in the one-token step only, got tokens=${T}`);
    checkCount(OP, 'gateOffset', gateOffset, 0);
    checkBufferElements(OP, 'xbc (gate view)', xbc.buffer, gateOffset + Di);
  }
  const normSums = options.normSums;
  if (normSums) {
    if (gateOffset === undefined) throw new RangeError(`${OP}: normSums needs the gate (gateOffset)`);
    checkBufferElements(OP, 'normSums.g', normSums.g, Di);
    checkBufferElements(OP, 'normSums.sums', normSums.sums, ssdStepNormSums(ctx, shape));
  }
  const chunks = Math.ceil(T / chunkLength);
  if (chunks > maxDim) {
    throw new RangeError(`${OP}: tokens=${T} makes ${chunks} chunks of ${chunkLength}, over the workgroup limit ${maxDim}; use longer chunks`);
  }
  const stateTiles = Math.ceil(P / TILE) * Math.ceil(N / TILE);
  if (stateTiles > maxDim) throw new RangeError(`${OP}: dState=${N} is over ${Math.floor(maxDim / Math.ceil(P / TILE)) * TILE}`);
  checkBufferElements(OP, 'xbc (x view)', xbc.buffer, xbc.xOffset + (T - 1) * xbc.rowStride + Di);
  checkBufferElements(OP, 'xbc (B view)', xbc.buffer, xbc.bOffset + (T - 1) * xbc.rowStride + GN);
  checkBufferElements(OP, 'xbc (C view)', xbc.buffer, xbc.cOffset + (T - 1) * xbc.rowStride + GN);
  checkBufferElements(OP, 'dt', dt.buffer, dt.offset + (T - 1) * dt.rowStride + H);
  checkBufferElements(OP, 'weights', weights.buffer, 3 * H);
  checkBufferElements(OP, 'y', buffers.y, T * Di);
  checkBufferElements(OP, 'state', buffers.state, H * P * N);
  if (delta) checkBufferElements(OP, 'delta', delta, T * H);
  const summary = buffers.stepSummary;
  if (summary) {
    if (T !== 1) throw new RangeError(`${OP}: a summary slot is for a decode step (tokens = 1), got ${T}`);
    if (delta) throw new RangeError(`${OP}: give delta or a summary slot, not both`);
    checkSummarySlot(ctx, OP, summary, 2 * H + Di);
  }
  // A buffer written by a dispatch may not be bound to it a second time.
  const bound: [string, GPUBuffer][] = [
    ['xbc', xbc.buffer],
    ['dt', dt.buffer],
    ['weights', weights.buffer],
  ];
  const written: [string, GPUBuffer][] = [
    ['y', buffers.y],
    ['state', buffers.state],
  ];
  if (delta) written.push(['delta', delta]);
  if (summary) written.push(['summary', summary.buffer]);
  if (normSums) {
    bound.push(['normSums.g', normSums.g]);
    written.push(['normSums.sums', normSums.sums]);
  }
  checkWrittenNotAliased(OP, bound, written);
  const stateElements = H * P * N;
  const chunkStateElements = T > 1 ? chunks * stateElements : 0;
  const cbElements = T > 1 ? chunks * G * chunkLength * chunkLength : 0;
  const maxBinding = Math.min(ctx.adapter.limits.maxStorageBufferBindingSize, ctx.adapter.limits.maxBufferSize);
  if (chunkStateElements * 4 > maxBinding) {
    throw new RangeError(`${OP}: the chunk states need ${chunkStateElements * 4} bytes, over the binding limit ${maxBinding}; use longer chunks`);
  }
  if (cbElements * 4 > maxBinding) {
    throw new RangeError(`${OP}: the chunks' C·Bᵀ need ${cbElements * 4} bytes, over the binding limit ${maxBinding}; use shorter chunks`);
  }

  const { device } = ctx;
  const layout = layouts(ctx);
  const trace = delta || summary ? 1 : 0;
  const constants = { WORKGROUP_SIZE, CHUNK_LEN: chunkLength, TRACE_DELTA: trace };
  const pipeline = (entryPoint: string, bindGroupLayout: GPUBindGroupLayout) =>
    ctx.pipelines.get({ op: OP, code: subgroupReduction(ctx, 0).prefix + code, entryPoint, layout: bindGroupLayout, constants });

  const params = uniformBuffer(device, `${label}.params`, 64);
  const data = new ArrayBuffer(64);
  const u32 = new Uint32Array(data);
  const f32 = new Float32Array(data);
  u32.set([T, H, P, G, N, chunks, xbc.rowStride, xbc.xOffset, xbc.bOffset, xbc.cOffset, dt.offset, dt.rowStride]);
  f32[12] = dtMin;
  f32[13] = Number.isFinite(dtMax) ? dtMax : 0;
  u32[14] = Number.isFinite(dtMax) ? 1 : 0;
  u32[15] = gateOffset ?? 0;
  device.queue.writeBuffer(params, 0, data);
  const owned: GPUBuffer[] = [params];
  const deltaOut: GPUBuffer | GPUBufferBinding = summary ? summarySlotBinding(summary, 2 * H + Di) : (delta ?? placeholderBuffer(device, `${label}.noDelta`, owned));
  const group = (name: string, bindGroupLayout: GPUBindGroupLayout, entries: [number, GPUBuffer | GPUBufferBinding][]): GPUBindGroup =>
    device.createBindGroup({
      label: `${label}.${name}BindGroup`,
      layout: bindGroupLayout,
      entries: [{ binding: 0, resource: { buffer: params } }, ...entries.map(([binding, b]) => ({ binding, resource: 'buffer' in b ? b : { buffer: b } }))],
    });

  let encode: (pass: GPUComputePassEncoder) => void;
  let parts: DispatchPart[] | undefined;
  if (T === 1) {
    const lanes = stepLanes(ctx, N);
    const sub = subgroupReduction(ctx, lanes);
    const step = ctx.pipelines.get({
      op: OP,
      code: sub.prefix + code,
      entryPoint: 'step',
      layout: layout.step,
      constants: { WORKGROUP_SIZE: STEP_WORKGROUP_SIZE, STEP_LANES: lanes, TRACE_DELTA: trace, TRACE_SUMMARY: summary ? 1 : 0, GATE: gateOffset === undefined ? 0 : 1, NORM_SUMS: normSums ? 1 : 0, ...(sub.size > 0 ? { SG_SIZE: sub.size } : {}), ...prefetchConstants(ctx.tuning) },
    });
    const stepGroup = group('step', layout.step, [
      [1, xbc.buffer],
      [2, dt.buffer],
      [3, weights.buffer],
      [4, buffers.y],
      [5, buffers.state],
      [6, deltaOut],
      [10, normSums?.g ?? placeholderBuffer(device, `${label}.noNormG`, owned)],
      [11, normSums?.sums ?? placeholderBuffer(device, `${label}.noNormSums`, owned)],
    ]);
    const stepGroups = foldWorkgroups(ssdStepNormSums(ctx, shape), maxDim); // one piece of Σ u² per step workgroup
    encode = (pass) => {
      pass.setPipeline(step);
      pass.setBindGroup(0, stepGroup);
      pass.dispatchWorkgroups(...stepGroups);
    };
  } else {
    const given = buffers.scratch;
    if (given) {
      checkBufferElements(OP, 'scratch.cums', given.cums, 2 * T * H);
      checkBufferElements(OP, 'scratch.chunkState', given.chunkState, chunkStateElements);
      checkBufferElements(OP, 'scratch.cb', given.cb, cbElements);
    }
    const cums = given?.cums ?? storageBuffer(device, `${label}.cums`, 2 * T * H * 4);
    const chunkState = given?.chunkState ?? storageBuffer(device, `${label}.chunkState`, chunkStateElements * 4);
    const cb = given?.cb ?? storageBuffer(device, `${label}.cb`, cbElements * 4);
    if (!given) owned.push(cums, chunkState, cb);
    const cumsumPipeline = pipeline('chunk_cumsum', layout.cumsum);
    // tuning.ssdTile 'wide': chunk_states and chunk_scan in 128 × 64 tiles, 8 × 8 a thread (opt-in until measured).
    const wide = ctx.tuning?.ssdTile === 'wide';
    const statesPipeline = pipeline(wide ? 'chunk_states_wide' : 'chunk_states', layout.states);
    const passingPipeline = pipeline('state_passing', layout.passing);
    const cbPipeline = pipeline('chunk_cb', layout.cb);
    const scanPipeline = pipeline(wide ? 'chunk_scan_wide' : 'chunk_scan', layout.scan);
    const cumsumGroup = group('cumsum', layout.cumsum, [
      [2, dt.buffer],
      [3, weights.buffer],
      [6, deltaOut],
      [7, cums],
    ]);
    const statesGroup = group('states', layout.states, [
      [1, xbc.buffer],
      [7, cums],
      [8, chunkState],
    ]);
    const passingGroup = group('passing', layout.passing, [
      [5, buffers.state],
      [7, cums],
      [8, chunkState],
    ]);
    const cbGroup = group('cb', layout.cb, [
      [1, xbc.buffer],
      [9, cb],
    ]);
    const scanGroup = group('scan', layout.scan, [
      [1, xbc.buffer],
      [3, weights.buffer],
      [4, buffers.y],
      [7, cums],
      [8, chunkState],
      [9, cb],
    ]);
    const cumsumGroups: [number, number] = [Math.ceil(H / CUMSUM_HEADS), chunks];
    const passingGroups = foldWorkgroups(Math.ceil(stateElements / WORKGROUP_SIZE), maxDim);
    const tiles = Math.ceil(chunkLength / TILE);
    const scanTiles = wide ? Math.ceil(chunkLength / WIDE_ROWS) * Math.ceil(P / WIDE_COLS) : tiles * Math.ceil(P / TILE);
    // chunk_states' workgroups along x (the wide tiles are never more than the 64 × 64 ones the limit above counts).
    const statesGroupsX = wide ? Math.ceil(N / WIDE_ROWS) * Math.ceil(P / WIDE_COLS) : stateTiles;
    parts = [
      kernelPart('chunk_cumsum', cumsumPipeline, cumsumGroup, cumsumGroups),
      kernelPart('chunk_states', statesPipeline, statesGroup, [statesGroupsX, H, chunks]),
      kernelPart('state_passing', passingPipeline, passingGroup, passingGroups),
      kernelPart('chunk_cb', cbPipeline, cbGroup, [tiles * tiles, G, chunks]),
      kernelPart('chunk_scan', scanPipeline, scanGroup, [scanTiles, H, chunks]),
    ];
    encode = encodeParts(parts);
  }

  return {
    label,
    encode,
    ...(parts ? { parts } : {}),
    destroy() {
      for (const b of owned) b.destroy();
    },
  };
}
