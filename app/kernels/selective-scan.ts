/**
 * Op: Mamba-1's selective scan with softplus(Δ + bias), A = −exp(A_log), the D skip and the
 * silu(z) gate fused, over a state [Di, N] that persists across calls (the caller owns it; zeros
 * at sequence start). Shader: shaders/selective_scan.wgsl. Reference: selective-scan.ref.ts.
 *
 * - T = 1 (decode): one dispatch (`step`).
 * - T ≤ chunkLength: one dispatch (`scan` over one chunk, state read and written in place).
 *   The chunk length is chosen from the lanes the channels give (scanChunkLength): one pass where
 *   they fill the GPU (mamba-2.8b: 5,120 channels × 16 lanes), else as few chunks as fill it.
 * - T > chunkLength (prefill): a chunked parallel scan in three dispatches: per-chunk end states
 *   from zero and Σ Δ (`chunk_summary`), a sequential scan over chunks giving each chunk's start
 *   state and the final state (`combine_chunks`), then every chunk rescanned from its start state
 *   writing y (`scan`). Scratch: (T / L) × Di × (N + 1) floats, owned by the op; the
 *   T × Di × N expanded state is never written.
 * - T > 1 on a software adapter (or GpuContext.tuning.prefillScan 'serial'), N ≤ 64: one dispatch
 *   (`scan_serial`: a thread a channel over all tokens, no barriers, which cost SwiftShader far
 *   more than the arithmetic).
 * - T > 1 on a GPU with N ≤ 16 (prefillScanKind 'channel', the default there): the same three
 *   passes with a thread a channel holding all its states (`channel_summary`, `combine_chunks`,
 *   `channel_scan`), always cut into enough chunks to fill the GPU; the lanes' passes above are
 *   the 'parallel' kind (N > 16, or asked for: bench --prefill-scan).
 *
 * To stay within 8 storage buffers per pass (the default per-stage limit), A_log, D and dt_bias
 * travel packed in one buffer (`packSelectiveScanWeights`, once per layer, shared by the layer's
 * prefill and decode ops), and B and C are two views into one buffer (x_proj's output).
 */
import sigmoidCode from '../../shaders/sigmoid.wgsl?raw';
import softplusCode from '../../shaders/softplus.wgsl?raw';
import scanCode from '../../shaders/selective_scan.wgsl?raw';
import { storageBuffer, uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext, PrefillScanKind } from '../gpu/context.js';
import { encodeParts, kernelPart, type Dispatch, type DispatchPart } from './dispatch.js';
import { weightWords, type WeightFormat } from './f16.js';
import { bufferLayoutEntry as entry, checkBufferElements, checkCount, checkWrittenNotAliased, placeholderBuffer, prefetchConstants } from './op-helpers.js';
import { checkSummarySlot, summarySlotBinding } from './step-summary.js';

/** The shader with the shared softplus prepended (WGSL has no includes). */
const code = `${sigmoidCode}\n${softplusCode}\n${scanCode}`;

const OP = 'SelectiveScan';
/** Threads per workgroup: (WORKGROUP_SIZE / lanes) channels × lanes (a power of two ≤ 32) each. */
const WORKGROUP_SIZE = 64;
const MAX_STATE_LANES = 32;
/** Must match MAX_STATES_PER_LANE in the shader. */
const MAX_STATES_PER_LANE = 8;
/** Must match BC_PER_THREAD in the shader: B (and C) elements of a prefill block each thread stages. */
const BC_PER_THREAD = 4;
export const MAX_D_STATE = MAX_STATE_LANES * MAX_STATES_PER_LANE;
export const DEFAULT_CHUNK_LENGTH = 64;
/** The serial prefill scan (scan_serial) keeps a channel's states in one thread: N ≤ this. */
const SERIAL_MAX_STATES = 64;
/** The channel prefill scan (channel_summary, channel_scan) holds a channel's states as four vec4 in one thread: N ≤ this. */
export const CHANNEL_MAX_STATES = 16;
/** Threads (channels × chunks) the channel prefill scan aims to run at once: a full H200 at its ~60 registers a thread. */
const CHANNEL_TARGET_THREADS = 131072;
/** Must match MAX_XP in the shader: the most x_proj outputs (R + 2N) step_xp adds in workgroup memory. */
export const MAX_FOLDED_XPROJ = 1024;
/**
 * step_xp's threads: every workgroup adds all of x_proj's partial sums (mamba-2.8b: 192 outputs ×
 * 160 blocks, 123 KB), so fewer, larger workgroups — up to 1,024 where the device allows (the
 * H200: 80 workgroups of 64 channels at mamba-2.8b, 8 vec4 reads a thread), at least 256 (the
 * norm's sums take 256 threads; every WebGPU device allows 256).
 */
function xpWorkgroupSize(ctx: GpuContext): number {
  const limits = ctx.device.limits;
  let size = 1024;
  // Workgroup memory: xp (4 KB), xp_part (4 bytes a thread), the norm's 256 vec3 (16 bytes each in
  // an array), step_summary's vec2 a thread.
  while (size > 256 && (size > limits.maxComputeInvocationsPerWorkgroup || size > limits.maxComputeWorkgroupSizeX || 4 * MAX_FOLDED_XPROJ + 12 * size + 16 * 256 > limits.maxComputeWorkgroupStorageSize)) size /= 2;
  return size;
}
/** The longest chunk the parallel prefill scan takes (bench --scan-chunk; a chunk is a loop bound, no buffer is sized by it). */
export const MAX_CHUNK_LENGTH = 65536;

/** A [T, width] matrix inside a bigger buffer: element (t, i) at buffer[offset + t·rowStride + i] (in elements). */
export interface StridedView {
  buffer: GPUBuffer;
  offset: number;
  rowStride: number;
}

/** B [T, N] and C [T, N] as two strided views into one buffer: B[t, n] = buffer[bOffset + t·rowStride + n], C likewise at cOffset. */
export interface BcView {
  buffer: GPUBuffer;
  rowStride: number;
  bOffset: number;
  cOffset: number;
}

/** A layer's constant scan parameters, packed: A_log [Di, N], then D [Di], then dt_bias [Di]. */
export interface SelectiveScanWeights {
  readonly buffer: GPUBuffer;
  readonly dInner: number;
  readonly dState: number;
  destroy(): void;
}

export interface SelectiveScanWeightSources {
  aLog: GPUBuffer; // [Di, N] A_log as in the checkpoint (A = −exp(A_log))
  d: GPUBuffer; // [Di] the D skip
  dtBias: GPUBuffer; // [Di] dt_proj's bias
}

export interface SelectiveScanShape {
  tokens: number; // T
  dInner: number; // Di
  dState: number; // N
}

export interface SelectiveScanBuffers {
  x: GPUBuffer; // [T, Di] conv output (after silu)
  /** [T, Di] dt_proj output without its bias; not read (may be absent) with `dtProj`. */
  dtRaw?: GPUBuffer;
  /**
   * T = 1 only: dt_proj fused into the step (entry point step_dt) — dt_raw = weight · dt_r with
   * dt_r the first `rank` columns of the bc buffer (x_proj's output), weight [Di, R] stored as `format`.
   */
  dtProj?: {
    weight: GPUBuffer;
    rank: number;
    format: WeightFormat;
    /**
     * x_proj folded into in_proj (entry point step_xp): `bc` is then xProjBC's view of x_proj's
     * partial sums (norm-matvec's xProjPartials: `rows` = xProjPartialLayout's blocks for each of
     * the R + 2N outputs, rows rounded up to 4), which the step adds first; `normEps` > 0:
     * Falcon-Mamba's RMS norm of dt_r, B and C after that.
     */
    xProjPartials?: { rows: number; normEps?: number };
  };
  weights: SelectiveScanWeights; // packSelectiveScanWeights, once per layer
  bc: BcView; // B, C [T, N] each (app/arch/mamba1/layout.ts xProjBC)
  z: StridedView; // z [T, Di] (app/arch/mamba1/layout.ts inProjZ)
  y: GPUBuffer; // [T, Di] output
  state: GPUBuffer; // [Di, N] read and written
  /** [T, Di] trace of Δ (after softplus). Given at creation: tracing on; absent: nothing extra runs. */
  delta?: GPUBuffer;
  /**
   * T = 1 only, instead of `delta`: a traced decode step's summary slot (app/kernels/step-summary.ts),
   * [Δ [Di] | Σ_n (1 − exp(Δ·A)) [Di] | Σ_n state² [Di]], at byte `offset` of `buffer` (a multiple
   * of the adapter's minStorageBufferOffsetAlignment).
   */
  stepSummary?: { buffer: GPUBuffer; offset: number };
  /**
   * Chunk summaries to use instead of allocating them (a model shares one across its layers, which
   * run one after another): selectiveScanSummaryElements. Absent: the op owns its own.
   */
  summary?: GPUBuffer;
}

/** Elements of the chunk summaries of a prefill over `tokens` tokens (0 when it is one chunk). */
export function selectiveScanSummaryElements(tokens: number, dInner: number, dState: number, chunkLength = DEFAULT_CHUNK_LENGTH): number {
  const chunks = Math.ceil(tokens / chunkLength);
  return chunks > 1 ? chunks * dInner * (dState + 1) : 0;
}

/**
 * Lanes (channels × lanes a channel) the parallel prefill scan aims to run at once. Chunks add
 * lanes but cost a second pass over every token (chunk_summary) and a combine, so a prefill is cut
 * into as few chunks as reach this, and into one where the channels alone have SCAN_ONE_PASS_LANES.
 * Measured on the H200 (bench/RESULTS.md, seventh session; int8 prefill of 2,048 tokens, µs a layer):
 * mamba-2.8b (81,920 lanes) 487 in one pass against 601–647 in chunks of 64–512; mamba-130m
 * (24,576 lanes) 206–217 in chunks of 64–512 against 234 in one pass, its prefill fastest with
 * chunks of 256–512 (4–8 chunks).
 */
const SCAN_TARGET_LANES = 131072;
const SCAN_ONE_PASS_LANES = 65536;

/**
 * How a prefill of Mamba-1's scan runs (GpuContext.tuning.prefillScan): 'serial' (scan_serial, a
 * software adapter's default, N ≤ 64), 'channel' (a thread a channel in chunks, N ≤ 16: a GPU's
 * default) or 'parallel' (lanes a channel, chunks where they do not fill the GPU). Where the kind
 * asked for cannot take N, the parallel scan runs. The channel scan measured on an H100
 * (bench/RESULTS.md, fifteenth session; int8 prefill, median of 4, µs a layer of the scan):
 * mamba-2.8b 237 against 462 at 2,048 tokens (prefill 26,097 against 21,723 tok/s), mamba-130m
 * 306 against 762 at 8,192, falcon-mamba-7b 338 against 700 at 2,048, and faster at 512 tokens in
 * all three.
 */
export function prefillScanKind(ctx: GpuContext, dState: number): PrefillScanKind {
  const asked = ctx.tuning?.prefillScan ?? (ctx.adapter.software ? 'serial' : 'channel');
  if (asked === 'serial' && dState <= SERIAL_MAX_STATES) return 'serial';
  if (asked === 'channel' && dState <= CHANNEL_MAX_STATES) return 'channel';
  return 'parallel';
}

/**
 * Tokens a chunk of the prefill scan over T tokens: tuning.scanChunk where a benchmark forces it;
 * DEFAULT_CHUNK_LENGTH for the serial scan (its carried state takes one exp a chunk); for the
 * parallel scan, enough chunks to bring the lanes to SCAN_TARGET_LANES (none below
 * SCAN_ONE_PASS_LANES); for the channel scan, enough to bring its threads to
 * CHANNEL_TARGET_THREADS (a thread a channel alone never fills a GPU). Each a multiple of 16 tokens
 * and never below DEFAULT_CHUNK_LENGTH, so that the chunk summaries a model sizes for that length
 * (selectiveScanSummaryElements) hold any choice.
 */
export function scanChunkLength(ctx: GpuContext, tokens: number, dInner: number, dState: number, kind: PrefillScanKind = 'parallel'): number {
  const forced = ctx.tuning?.scanChunk;
  if (forced !== undefined) return Math.max(DEFAULT_CHUNK_LENGTH, forced);
  if (kind === 'serial') return DEFAULT_CHUNK_LENGTH;
  let chunks: number;
  if (kind === 'channel') chunks = Math.ceil(CHANNEL_TARGET_THREADS / dInner);
  else {
    const lanes = dInner * scanStateLanes(ctx, dState, true);
    chunks = lanes >= SCAN_ONE_PASS_LANES ? 1 : Math.ceil(SCAN_TARGET_LANES / lanes);
  }
  return Math.min(MAX_CHUNK_LENGTH, Math.max(DEFAULT_CHUNK_LENGTH, Math.ceil(tokens / chunks / 16) * 16));
}

export interface SelectiveScanOptions {
  /** Tokens per chunk of the parallel prefill scan (1..MAX_CHUNK_LENGTH; default scanChunkLength's choice). */
  chunkLength?: number;
}

/**
 * Packs a layer's A_log, D and dt_bias into one buffer (three copies on the GPU queue, done once
 * per layer; the sources need COPY_SRC and are not read again). Share the result between the
 * layer's prefill and decode ops; `destroy` frees it.
 */
export function packSelectiveScanWeights(
  ctx: GpuContext,
  sources: SelectiveScanWeightSources,
  dims: { dInner: number; dState: number },
  label = 'SelectiveScanWeights',
): SelectiveScanWeights {
  const { dInner, dState } = dims;
  checkCount(OP, 'dInner', dInner, 1);
  checkCount(OP, 'dState', dState, 1, MAX_D_STATE);
  const parts: [string, GPUBuffer, number][] = [
    ['aLog', sources.aLog, dInner * dState],
    ['d', sources.d, dInner],
    ['dtBias', sources.dtBias, dInner],
  ];
  for (const [name, buffer, elements] of parts) {
    checkBufferElements(OP, name, buffer, elements);
    if ((buffer.usage & GPUBufferUsage.COPY_SRC) === 0) {
      throw new RangeError(`${OP}: ${name} (${buffer.label}) needs COPY_SRC usage to be packed`);
    }
  }
  const { device } = ctx;
  const buffer = storageBuffer(device, `${label}.buffer`, (dInner * dState + 2 * dInner) * 4);
  const encoder = device.createCommandEncoder({ label: `${label}.encoder` });
  let offset = 0;
  for (const [, source, elements] of parts) {
    encoder.copyBufferToBuffer(source, 0, buffer, offset * 4, elements * 4);
    offset += elements;
  }
  device.queue.submit([encoder.finish()]);
  return { buffer, dInner, dState, destroy: () => buffer.destroy() };
}

function layouts(ctx: GpuContext): { scan: GPUBindGroupLayout; chunk: GPUBindGroupLayout; combine: GPUBindGroupLayout } {
  const uniform = entry(0, 'uniform');
  const read = 'read-only-storage';
  return {
    // step and scan: x, dt_raw, weights, bc, z, y, state (or the start states), delta_out.
    scan: ctx.pipelines.bindGroupLayout(`${OP}.scan`, [
      uniform,
      entry(1, read),
      entry(2, read),
      entry(3, read),
      entry(4, read),
      entry(5, read),
      entry(6, 'storage'),
      entry(7, 'storage'),
      entry(8, 'storage'),
    ]),
    // chunk_summary: x, dt_raw, weights, bc, summary.
    chunk: ctx.pipelines.bindGroupLayout(`${OP}.chunk`, [uniform, entry(1, read), entry(2, read), entry(3, read), entry(4, read), entry(9, 'storage')]),
    // combine_chunks: weights, state, summary.
    combine: ctx.pipelines.bindGroupLayout(`${OP}.combine`, [uniform, entry(3, read), entry(7, 'storage'), entry(9, 'storage')]),
  };
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * Lanes a channel (STATE_LANES; each takes ceil(N / lanes) states): the power of two ≥ N, at most
 * MAX_STATE_LANES; a parallel prefill's as tuning.scanLanes asks (a benchmark's sweep: fewer lanes
 * take more states each, so a token's staged Δ, Δ·x, B and C reads serve more of them, with a
 * block of as many tokens as lanes), never more than that nor fewer than N / MAX_STATES_PER_LANE.
 */
export function scanStateLanes(ctx: GpuContext, dState: number, parallelPrefill: boolean): number {
  const natural = Math.min(nextPowerOfTwo(dState), MAX_STATE_LANES);
  const asked = parallelPrefill ? ctx.tuning?.scanLanes : undefined;
  if (asked === undefined) return natural;
  return Math.min(natural, Math.max(nextPowerOfTwo(asked), nextPowerOfTwo(Math.ceil(dState / MAX_STATES_PER_LANE))));
}

/**
 * The scan of one layer over `shape.tokens` tokens, bound once to its buffers. Encode it as often
 * as needed (a decode op is re-encoded every token); each encode advances `state` by T tokens.
 */
export function selectiveScan(
  ctx: GpuContext,
  shape: SelectiveScanShape,
  buffers: SelectiveScanBuffers,
  label = OP,
  options: SelectiveScanOptions = {},
): Dispatch {
  const { tokens: T, dInner: Di, dState: N } = shape;
  const limits = ctx.adapter.limits;
  checkCount(OP, 'tokens', T, 1);
  checkCount(OP, 'dInner', Di, 1);
  checkCount(OP, 'dState', N, 1, MAX_D_STATE);
  const { weights, bc, z, delta, dtProj } = buffers;
  const folded = dtProj?.xProjPartials;
  // A prefill on a software adapter: one thread a channel over all T tokens (scan_serial), one
  // dispatch with no barriers (SwiftShader: selective-copy's 512-token prefill scan, 2 layers,
  // 585 -> 167 ms), unless tuning asks for the GPU's parallel form, whose arithmetic it does in its order.
  const kind = T > 1 && !dtProj ? prefillScanKind(ctx, N) : 'parallel';
  const serial = kind === 'serial';
  const channel = kind === 'channel';
  const chunkLength = options.chunkLength ?? scanChunkLength(ctx, T, Di, N, kind);
  checkCount(OP, 'chunkLength', chunkLength, 1, MAX_CHUNK_LENGTH);
  if (dtProj) {
    if (T !== 1) throw new RangeError(`${OP}: dtProj (dt_proj fused into the step) needs tokens = 1, got ${T}`);
    checkCount(OP, 'dtProj.rank', dtProj.rank, 1);
    if (dtProj.format !== 'f32' && dtProj.format !== 'f16' && dtProj.format !== 'bf16') throw new RangeError(`${OP}: dtProj.weight must be f32, f16 or bf16, got ${dtProj.format}`);
    if (dtProj.rank > bc.bOffset) throw new RangeError(`${OP}: dt_r (${dtProj.rank} columns) overlaps B at column ${bc.bOffset} of ${bc.buffer.label}`);
    checkBufferElements(OP, 'dtProj.weight', dtProj.weight, weightWords(Di * dtProj.rank, dtProj.format));
    if (folded) {
      checkCount(OP, 'xProjPartials.rows', folded.rows, 1);
      const R = dtProj.rank;
      if (bc.bOffset !== R || bc.cOffset !== R + N || bc.rowStride !== R + 2 * N) {
        throw new RangeError(`${OP}: x_proj's partial sums are for [dt_r | B | C] (B at ${R}, C at ${R + N}, ${R + 2 * N} outputs: xProjBC), got B at ${bc.bOffset}, C at ${bc.cOffset}, ${bc.rowStride} outputs`);
      }
      if (bc.rowStride > MAX_FOLDED_XPROJ) throw new RangeError(`${OP}: x_proj folded in takes at most ${MAX_FOLDED_XPROJ} outputs (R + 2N), got ${bc.rowStride}`);
      checkBufferElements(OP, 'bc (x_proj partial sums)', bc.buffer, bc.rowStride * Math.ceil(folded.rows / 4) * 4);
      const eps = folded.normEps ?? 0;
      if (!(eps >= 0 && Number.isFinite(eps))) throw new RangeError(`${OP}: xProjPartials.normEps must be ≥ 0, got ${eps}`);
    }
  } else if (!buffers.dtRaw) throw new RangeError(`${OP}: needs dtRaw or dtProj`);
  const dtBinding = (dtProj ? dtProj.weight : buffers.dtRaw) as GPUBuffer;
  if (weights.dInner !== Di || weights.dState !== N) {
    throw new RangeError(`${OP}: weights (${weights.buffer.label}) were packed for Di=${weights.dInner}, N=${weights.dState}, not Di=${Di}, N=${N}`);
  }
  for (const [name, value] of [
    ['bc.bOffset', bc.bOffset],
    ['bc.cOffset', bc.cOffset],
    ['bc.rowStride', bc.rowStride],
    ['z.offset', z.offset],
    ['z.rowStride', z.rowStride],
  ] as const) {
    checkCount(OP, name, value, 0);
  }

  const lanes = scanStateLanes(ctx, N, T > 1 && kind === 'parallel');
  const statesPerLane = Math.ceil(N / lanes);
  const channelsPerGroup = WORKGROUP_SIZE / lanes;
  const groupsX = Math.ceil(Di / channelsPerGroup);
  const chunks = Math.ceil(T / chunkLength);
  // The channel scan's workgroups: WORKGROUP_SIZE channels each (combine_chunks keeps the lanes' groupsX).
  const channelGroups = Math.ceil(Di / WORKGROUP_SIZE);
  const maxGroups = limits.maxComputeWorkgroupsPerDimension;
  if (groupsX > maxGroups) throw new RangeError(`${OP}: dInner=${Di} needs ${groupsX} workgroups, over the limit ${maxGroups}`);
  if (chunks > maxGroups) {
    throw new RangeError(`${OP}: tokens=${T} makes ${chunks} chunks of ${chunkLength}, over the workgroup limit ${maxGroups}; use longer chunks`);
  }

  checkBufferElements(OP, 'x', buffers.x, T * Di);
  if (!dtProj) checkBufferElements(OP, 'dtRaw', dtBinding, T * Di);
  checkBufferElements(OP, 'weights', weights.buffer, Di * N + 2 * Di);
  checkBufferElements(OP, 'bc (B view)', bc.buffer, bc.bOffset + (T - 1) * bc.rowStride + N);
  checkBufferElements(OP, 'bc (C view)', bc.buffer, bc.cOffset + (T - 1) * bc.rowStride + N);
  checkBufferElements(OP, 'z', z.buffer, z.offset + (T - 1) * z.rowStride + Di);
  checkBufferElements(OP, 'y', buffers.y, T * Di);
  checkBufferElements(OP, 'state', buffers.state, Di * N);
  if (delta) checkBufferElements(OP, 'delta', delta, T * Di);
  const summarySlot = buffers.stepSummary;
  if (summarySlot) {
    if (T !== 1) throw new RangeError(`${OP}: a summary slot is for a decode step (tokens = 1), got ${T}`);
    if (delta) throw new RangeError(`${OP}: give delta or a summary slot, not both`);
    checkSummarySlot(ctx, OP, summarySlot, 3 * Di);
  }
  // A buffer written by a dispatch may not be bound to it a second time.
  const bound: [string, GPUBuffer][] = [
    ['x', buffers.x],
    [dtProj ? 'dtProj.weight' : 'dtRaw', dtBinding],
    ['weights', weights.buffer],
    ['bc', bc.buffer],
    ['z', z.buffer],
  ];
  const written: [string, GPUBuffer][] = [
    ['y', buffers.y],
    ['state', buffers.state],
  ];
  if (delta) written.push(['delta', delta]);
  if (summarySlot) written.push(['summary', summarySlot.buffer]);
  checkWrittenNotAliased(OP, bound, written);
  const summaryElements = chunks > 1 ? chunks * Di * (N + 1) : 0;
  const maxBinding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  if (summaryElements * 4 > maxBinding) {
    throw new RangeError(`${OP}: the chunk summaries need ${summaryElements * 4} bytes, over the binding limit ${maxBinding}; use longer chunks`);
  }

  const { device } = ctx;
  const layout = layouts(ctx);
  const shared = { WORKGROUP_SIZE, STATE_LANES: lanes, STATES_PER_LANE: statesPerLane };
  // The channel scan's vec4s of states (its parts keep the lanes' names, so the breakdown's rows line up).
  const channelConstants: Record<string, number> = { CH_VECS: Math.ceil(N / 4) };
  // A prefill block's B and C rows staged in workgroup memory where they fit the threads' share (N ≤ 16).
  const stageBC = lanes * N <= BC_PER_THREAD * WORKGROUP_SIZE ? 1 : 0;
  const pipeline = (entryPoint: string, bindGroupLayout: GPUBindGroupLayout, constants: Record<string, number>) =>
    ctx.pipelines.get({ op: OP, code, entryPoint, layout: bindGroupLayout, constants: { ...shared, ...constants } });

  const xpGroupSize = folded ? xpWorkgroupSize(ctx) : 0;
  const params = uniformBuffer(device, `${label}.params`, 64);
  const data = new Uint32Array([T, Di, N, chunks, bc.bOffset, bc.rowStride, bc.cOffset, bc.rowStride, z.offset, z.rowStride, chunks === 1 ? 1 : 0, dtProj?.rank ?? 0, folded?.rows ?? 0, 0, 0, 0]);
  new Float32Array(data.buffer, 13 * 4, 1)[0] = folded?.normEps ?? 0;
  device.queue.writeBuffer(params, 0, data);
  const owned: GPUBuffer[] = [params];
  const deltaOut: GPUBufferBinding = summarySlot ? summarySlotBinding(summarySlot, 3 * Di) : { buffer: delta ?? placeholderBuffer(device, `${label}.noDelta`, owned) };

  const scanGroup = (start: GPUBuffer): GPUBindGroup =>
    device.createBindGroup({
      label: `${label}.scanBindGroup`,
      layout: layout.scan,
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: buffers.x } },
        { binding: 2, resource: { buffer: dtBinding } },
        { binding: 3, resource: { buffer: weights.buffer } },
        { binding: 4, resource: { buffer: bc.buffer } },
        { binding: 5, resource: { buffer: z.buffer } },
        { binding: 6, resource: { buffer: buffers.y } },
        { binding: 7, resource: { buffer: start } },
        { binding: 8, resource: deltaOut },
      ],
    });
  const trace = delta || summarySlot ? 1 : 0;
  const traceSummary = summarySlot ? 1 : 0;

  let encodeAll: (pass: GPUComputePassEncoder) => void;
  let parts: DispatchPart[] | undefined;
  if (serial) {
    const serialPipeline = pipeline('scan_serial', layout.scan, { CHUNK_LEN: chunkLength, TRACE_DELTA: trace });
    const group = scanGroup(buffers.state);
    const groups = Math.ceil(Di / WORKGROUP_SIZE);
    encodeAll = (pass) => {
      pass.setPipeline(serialPipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(groups);
    };
  } else if (T === 1 || chunks === 1) {
    // One pass straight through the state: a decode step, or a prefill that fits one chunk.
    const single =
      T > 1
        ? channel
          ? pipeline('channel_scan', layout.scan, { CHUNK_LEN: chunkLength, TRACE_DELTA: trace, ...channelConstants })
          : pipeline('scan', layout.scan, { CHUNK_LEN: chunkLength, TRACE_DELTA: trace, STAGE_BC: stageBC })
        : dtProj
          ? pipeline(folded ? 'step_xp' : 'step_dt', layout.scan, {
              TRACE_DELTA: trace,
              TRACE_SUMMARY: traceSummary,
              ...(dtProj.format === 'f16' ? { DT_F16: 1 } : dtProj.format === 'bf16' ? { DT_BF16: 1 } : {}),
              ...(folded ? { WORKGROUP_SIZE: xpGroupSize } : {}),
              ...prefetchConstants(ctx.tuning),
            })
          : pipeline('step', layout.scan, { TRACE_DELTA: trace, TRACE_SUMMARY: traceSummary, ...prefetchConstants(ctx.tuning) });
    const group = scanGroup(buffers.state);
    const groups = channel ? channelGroups : folded ? Math.ceil(Di / (xpGroupSize / lanes)) : groupsX;
    encodeAll = (pass) => {
      pass.setPipeline(single);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(groups);
    };
  } else {
    if (buffers.summary) checkBufferElements(OP, 'summary', buffers.summary, summaryElements);
    const summary = buffers.summary ?? storageBuffer(device, `${label}.chunkSummary`, summaryElements * 4);
    if (!buffers.summary) owned.push(summary);
    const chunkPipeline = channel
      ? pipeline('channel_summary', layout.chunk, { CHUNK_LEN: chunkLength, ...channelConstants })
      : pipeline('chunk_summary', layout.chunk, { CHUNK_LEN: chunkLength, STAGE_BC: stageBC });
    const combinePipeline = pipeline('combine_chunks', layout.combine, {});
    const scanPipeline = channel
      ? pipeline('channel_scan', layout.scan, { CHUNK_LEN: chunkLength, TRACE_DELTA: trace, ...channelConstants })
      : pipeline('scan', layout.scan, { CHUNK_LEN: chunkLength, TRACE_DELTA: trace, STAGE_BC: stageBC });
    const passGroups = channel ? channelGroups : groupsX;
    const chunkGroup = device.createBindGroup({
      label: `${label}.chunkBindGroup`,
      layout: layout.chunk,
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: buffers.x } },
        { binding: 2, resource: { buffer: dtBinding } },
        { binding: 3, resource: { buffer: weights.buffer } },
        { binding: 4, resource: { buffer: bc.buffer } },
        { binding: 9, resource: { buffer: summary } },
      ],
    });
    const combineGroup = device.createBindGroup({
      label: `${label}.combineBindGroup`,
      layout: layout.combine,
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 3, resource: { buffer: weights.buffer } },
        { binding: 7, resource: { buffer: buffers.state } },
        { binding: 9, resource: { buffer: summary } },
      ],
    });
    const rescanGroup = scanGroup(summary);
    parts = [
      kernelPart('chunk_summary', chunkPipeline, chunkGroup, [passGroups, chunks]),
      kernelPart('combine_chunks', combinePipeline, combineGroup, [groupsX]),
      kernelPart('scan', scanPipeline, rescanGroup, [passGroups, chunks]),
    ];
    encodeAll = encodeParts(parts);
  }

  return {
    label,
    encode: encodeAll,
    ...(parts ? { parts } : {}),
    destroy() {
      for (const b of owned) b.destroy();
    },
  };
}
