/**
 * Op: per-token selection summaries of traced layers — ‖Δ_t‖, the mean write gate 1 − exp(Δ·A),
 * ‖state_t‖ (the recurrent state replayed from the traced Δ, x and B) and a focus score (Δ
 * weighted over chosen columns) — computed on the GPU. Shader: shaders/trace_summary.wgsl.
 * References: app/analysis/recorder.ts SelectionReplay and mamba2StateNorms (float64, CPU).
 *
 * One `encode` is one compute pass: a `scan` dispatch per layer (sequential over the call's rows,
 * parallel over the layer's state elements, writing per-(row, workgroup) partial sums), then a
 * `reduce` dispatch per batch of layers right after that batch's scans (one invocation per (row,
 * layer), writing the summaries).
 * Layers share one partials buffer; a batch is as many layers as fit PARTIALS_MAX_BYTES at
 * `maxRows` rows (all of them for the models the studio runs at decode's row counts), so a call
 * costs layers + batches dispatches.
 *
 * A call's rows and positions travel in a ring of uniform slots (one per encode, dynamic offset):
 * up to CALL_SLOTS calls may be encoded before the encoder holding them is submitted.
 */
import softplusCode from '../../shaders/softplus.wgsl?raw';
import summaryCode from '../../shaders/trace_summary.wgsl?raw';
import { storageBuffer, uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { bindGroupFor, bufferLayoutEntry, checkBufferBytes, checkCount } from './op-helpers.js';


/** The shader with the shared one_minus_exp prepended (WGSL has no includes). */
const code = `${softplusCode}\n${summaryCode}`;
const OP = 'TraceSummary';
/** Threads per workgroup (a power of two: the reductions halve it). */
export const TRACE_SUMMARY_WORKGROUP = 64;
/** State elements one invocation owns at most (the shader's K_MAX). */
export const TRACE_SUMMARY_K_MAX = 8;
/** Aim: at most this many workgroups per layer (more elements per invocation, up to K_MAX, past it). */
export const TARGET_WORKGROUPS = 512;
/** The partials of one batch of layers (16 B per row, workgroup and layer) stay under this. */
export const PARTIALS_MAX_BYTES = 16 * 2 ** 20;
/** Encodes allowed before their encoder is submitted (the ring of call slots). */
export const CALL_SLOTS = 64;
const LAYER_BYTES = 80;
const INFO_BYTES = 16;

/** One traced layer's shape, as the shader sees it (see shaders/trace_summary.wgsl). */
export interface TraceSummaryLayerShape {
  /** U: Δ columns (Δ's row stride): Mamba-1 channels, Mamba-2 heads. */
  columns: number;
  /** P: x channels per Δ column: 1 (Mamba-1), head_dim (Mamba-2). */
  perColumn: number;
  /** N. */
  dState: number;
  /** S: A's entries per Δ column: N (Mamba-1), 1 (Mamba-2). */
  aStates: number;
  /** G: B groups; column u reads group ⌊u·G/U⌋. */
  groups: number;
  /** Floats per dbc row, and where B starts in one. */
  rowWidth: number;
  bOffset: number;
  /** Floats per x row, and where x starts in one (Mamba-2: x inside the dbc rows). */
  xStride: number;
  xOffset: number;
  /** Replay the state (needs x); without it stateNorm is not computed. */
  hasX: boolean;
}

/** How a layer's U·P·N state elements spread over invocations. */
export interface TraceSummaryGrid {
  elements: number;
  perThread: number;
  workgroups: number;
  /** The workgroup count folded into x · y under the per-dimension limit. */
  groupsX: number;
  groupsY: number;
  /** workgroups · WORKGROUP: the stride between one invocation's elements. */
  threads: number;
}

/** The grid of a layer of `elements` state elements (pure). */
export function traceSummaryGrid(elements: number, maxPerDim = 65535, targetWorkgroups = TARGET_WORKGROUPS): TraceSummaryGrid {
  checkCount(OP, 'state elements', elements, 1);
  checkCount(OP, 'targetWorkgroups', targetWorkgroups, 1);
  const perThread = Math.min(TRACE_SUMMARY_K_MAX, Math.max(1, Math.ceil(elements / (TRACE_SUMMARY_WORKGROUP * targetWorkgroups))));
  const workgroups = Math.ceil(elements / (TRACE_SUMMARY_WORKGROUP * perThread));
  const groupsX = Math.min(workgroups, maxPerDim);
  const groupsY = Math.ceil(workgroups / groupsX);
  if (groupsY > maxPerDim) throw new RangeError(`${OP}: ${elements} state elements need ${workgroups} workgroups, over the limit`);
  return { elements, perThread, workgroups, groupsX, groupsY, threads: workgroups * TRACE_SUMMARY_WORKGROUP };
}

/** Tuning, for tests: the workgroups a layer aims at, the partials' budget per batch of layers. */
export interface TraceSummaryTuning {
  targetWorkgroups?: number;
  partialsMaxBytes?: number;
}

/** What one layer's scan reads and writes in a call. */
export interface TraceSummaryLayerBuffers {
  delta: GPUBuffer;
  dbc: GPUBuffer;
  /** Mamba-1's x tap; Mamba-2: the dbc buffer again (x sits in its rows); unused (any buffer) without x. */
  x: GPUBuffer;
  /** [U·S] fp32. */
  aLog: GPUBuffer;
  /** [≥ U] fp32 focus weights. */
  focus: GPUBuffer;
  /** [U·P·N] fp32, carried. */
  state: GPUBuffer;
}

/**
 * The summaries of a fixed set of layers over calls of at most `maxRows` rows: pipelines, each
 * layer's parameters, the shared partials and the call slots. `encode` writes summary rows
 * [dstRow, dstRow + rows) of `out` ([capacity, layers] vec4: deltaNorm, writeGate, stateNorm,
 * focusScore) from input rows [srcRow, srcRow + rows).
 */
export class TraceSummaryKernel {
  readonly grids: TraceSummaryGrid[];
  /** Layer index ranges [first, end) reduced by one dispatch each. */
  readonly batches: { first: number; end: number }[] = [];
  private readonly layerParams: GPUBuffer[];
  private readonly batchParams: GPUBuffer[];
  private readonly infos: GPUBuffer;
  private readonly partials: GPUBuffer;
  private readonly calls: GPUBuffer;
  private readonly slotBytes: number;
  private nextSlot = 0;
  private readonly scanLayout: GPUBindGroupLayout;
  private readonly reduceLayout: GPUBindGroupLayout;
  private readonly scanPipeline: GPUComputePipeline;
  private readonly reducePipeline: GPUComputePipeline;
  /** Per layer, its bind group and the buffers it was made for. */
  private scanGroups: ({ group: GPUBindGroup; buffers: GPUBuffer[] } | null)[];
  private reduceGroups: { group: GPUBindGroup; out: GPUBuffer }[] | null = null;

  constructor(
    private readonly ctx: GpuContext,
    private readonly shapes: readonly TraceSummaryLayerShape[],
    readonly maxRows: number,
    private readonly label = OP,
    tuning: TraceSummaryTuning = {},
  ) {
    const { device } = ctx;
    const maxPerDim = ctx.adapter.limits.maxComputeWorkgroupsPerDimension;
    if (shapes.length === 0) throw new RangeError(`${OP}: no layers`);
    checkCount(OP, 'maxRows', maxRows, 1, maxPerDim);
    shapes.forEach((s, i) => {
      for (const key of ['columns', 'perColumn', 'dState', 'aStates', 'groups', 'rowWidth'] as const) checkCount(OP, `layer ${i} ${key}`, s[key], 1);
      if (s.aStates !== 1 && s.aStates !== s.dState) throw new RangeError(`${OP}: layer ${i}: aStates must be 1 or dState (${s.dState}), got ${s.aStates}`);
      if (s.columns % s.groups !== 0) throw new RangeError(`${OP}: layer ${i}: ${s.columns} columns do not split into ${s.groups} groups`);
      checkCount(OP, `layer ${i} bOffset`, s.bOffset, 0, s.rowWidth - s.groups * s.dState);
      checkCount(OP, `layer ${i} xStride`, s.xStride, 1);
      checkCount(OP, `layer ${i} xOffset`, s.xOffset, 0, s.xStride - s.columns * s.perColumn);
    });
    this.grids = shapes.map((s) => traceSummaryGrid(s.columns * s.perColumn * s.dState, maxPerDim, tuning.targetWorkgroups ?? (ctx.adapter.software ? 1 : TARGET_WORKGROUPS)));
    const budget = tuning.partialsMaxBytes ?? PARTIALS_MAX_BYTES;

    // Batches: consecutive layers whose partials fit the budget (at least one layer each).
    const partialBases: number[] = [];
    let batchVec4s = 0;
    let largest = 0;
    this.grids.forEach((g, i) => {
      const vec4s = maxRows * g.workgroups;
      const current = this.batches[this.batches.length - 1];
      if (!current || (batchVec4s + vec4s) * 16 > budget) {
        this.batches.push({ first: i, end: i + 1 });
        batchVec4s = 0;
      } else current.end = i + 1;
      partialBases.push(batchVec4s);
      batchVec4s += vec4s;
      largest = Math.max(largest, batchVec4s);
    });
    const partialBytes = largest * 16;
    const bindLimit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    if (partialBytes > bindLimit) throw new RangeError(`${OP}: the partials of ${maxRows} rows need ${partialBytes} bytes, over this device's binding limit ${bindLimit}: lower maxRows`);

    this.layerParams = shapes.map((s, i) => {
      const g = this.grids[i] as TraceSummaryGrid;
      const buffer = uniformBuffer(device, `${label}.L${i}.params`, LAYER_BYTES);
      const words = [
        g.elements, s.columns, s.perColumn, s.dState, s.aStates, s.groups, s.rowWidth, s.bOffset,
        s.xStride, s.xOffset, s.hasX ? 1 : 0, g.perThread, g.threads, g.groupsX, g.workgroups, partialBases[i] as number, maxRows, 0, 0, 0,
      ];
      device.queue.writeBuffer(buffer, 0, new Uint32Array(words));
      return buffer;
    });
    const info = new ArrayBuffer(shapes.length * INFO_BYTES);
    shapes.forEach((s, i) => {
      const g = this.grids[i] as TraceSummaryGrid;
      new Uint32Array(info, i * INFO_BYTES, 2).set([partialBases[i] as number, g.workgroups]);
      new Float32Array(info, i * INFO_BYTES + 8, 1)[0] = 1 / (s.columns * s.aStates);
      new Uint32Array(info, i * INFO_BYTES + 12, 1)[0] = maxRows;
    });
    this.infos = storageBuffer(device, `${label}.infos`, info.byteLength);
    device.queue.writeBuffer(this.infos, 0, info);
    this.batchParams = this.batches.map((b, i) => {
      const buffer = uniformBuffer(device, `${label}.batch${i}`, 16);
      device.queue.writeBuffer(buffer, 0, new Uint32Array([b.first, shapes.length, 0, 0]));
      return buffer;
    });
    this.partials = storageBuffer(device, `${label}.partials`, partialBytes);
    this.slotBytes = Math.max(16, device.limits.minUniformBufferOffsetAlignment);
    this.calls = uniformBuffer(device, `${label}.calls`, this.slotBytes * CALL_SLOTS);

    const call: GPUBindGroupLayoutEntry = { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: 16 } };
    this.scanLayout = ctx.pipelines.bindGroupLayout(`${OP}.scan`, [
      bufferLayoutEntry(0, 'uniform'),
      call,
      ...[2, 3, 4, 5, 6].map((b) => bufferLayoutEntry(b, 'read-only-storage')),
      bufferLayoutEntry(7, 'storage'),
      bufferLayoutEntry(8, 'storage'),
    ]);
    this.reduceLayout = ctx.pipelines.bindGroupLayout(`${OP}.reduce`, [
      call,
      bufferLayoutEntry(8, 'storage'),
      bufferLayoutEntry(10, 'uniform'),
      bufferLayoutEntry(11, 'read-only-storage'),
      bufferLayoutEntry(12, 'storage'),
    ]);
    const constants = { WORKGROUP_SIZE: TRACE_SUMMARY_WORKGROUP };
    this.scanPipeline = ctx.pipelines.get({ op: OP, code, entryPoint: 'scan', layout: this.scanLayout, constants });
    this.reducePipeline = ctx.pipelines.get({ op: OP, code, entryPoint: 'reduce', layout: this.reduceLayout, constants });
    this.scanGroups = shapes.map(() => null);
  }

  /** GPU bytes the op owns (parameters, partials, call slots). */
  get bytes(): number {
    return [...this.layerParams, ...this.batchParams, this.infos, this.partials, this.calls].reduce((s, b) => s + b.size, 0);
  }

  /** Dispatches per encode: one scan per layer, one reduce per batch. */
  get dispatches(): number {
    return this.shapes.length + this.batches.length;
  }

  /**
   * Encodes the summaries of input rows [srcRow, srcRow + rows) into summary rows [dstRow, dstRow
   * + rows) of `out` (vec4 per (row, layer)), as one compute pass on `encoder`. Each layer's
   * buffers must hold the rows read; `out` must hold dstRow + rows rows.
   */
  encode(encoder: GPUCommandEncoder, layers: readonly TraceSummaryLayerBuffers[], out: GPUBuffer, srcRow: number, dstRow: number, rows: number): void {
    const { device } = this.ctx;
    checkCount(OP, 'rows', rows, 1, this.maxRows);
    checkCount(OP, 'srcRow', srcRow, 0);
    checkCount(OP, 'dstRow', dstRow, 0);
    if (layers.length !== this.shapes.length) throw new RangeError(`${OP}: ${layers.length} layers' buffers for ${this.shapes.length} layers`);
    const limit = device.limits.maxStorageBufferBindingSize;
    const check = (name: string, buffer: GPUBuffer, bytes: number) => {
      checkBufferBytes(OP, name, buffer, bytes);
      if (bytes > limit) throw new RangeError(`${OP}: ${name} (${buffer.label}) needs ${bytes} bytes bound, over this device's maxStorageBufferBindingSize ${limit}`);
    };
    const end = srcRow + rows;
    layers.forEach((b, i) => {
      const s = this.shapes[i] as TraceSummaryLayerShape;
      check(`layer ${i} delta`, b.delta, end * s.columns * 4);
      check(`layer ${i} dbc`, b.dbc, end * s.rowWidth * 4);
      if (s.hasX) check(`layer ${i} x`, b.x, end * s.xStride * 4);
      check(`layer ${i} aLog`, b.aLog, s.columns * s.aStates * 4);
      check(`layer ${i} focus`, b.focus, s.columns * 4);
      check(`layer ${i} state`, b.state, (this.grids[i] as TraceSummaryGrid).elements * 4);
    });
    check('out', out, (dstRow + rows) * this.shapes.length * 16);

    const offset = this.nextSlot * this.slotBytes;
    this.nextSlot = (this.nextSlot + 1) % CALL_SLOTS;
    device.queue.writeBuffer(this.calls, offset, new Uint32Array([rows, srcRow, dstRow, 0]));
    const bind = (buffer: GPUBuffer): GPUBufferBinding => (buffer.size <= limit ? { buffer } : { buffer, size: Math.floor(limit / 4) * 4 });

    if (!this.reduceGroups || this.reduceGroups[0]?.out !== out) {
      this.reduceGroups = this.batchParams.map((params, i) => ({
        out,
        group: device.createBindGroup({
          label: `${this.label}.reduce${i}.bindGroup`,
          layout: this.reduceLayout,
          entries: [
            { binding: 1, resource: { buffer: this.calls, size: 16 } },
            { binding: 8, resource: { buffer: this.partials } },
            { binding: 10, resource: { buffer: params } },
            { binding: 11, resource: { buffer: this.infos } },
            { binding: 12, resource: bind(out) },
          ],
        }),
      }));
    }
    const pass = encoder.beginComputePass({ label: `${this.label}.pass` });
    // Batch by batch: its layers' scans, then its reduce (batches reuse the partials).
    this.batches.forEach((batch, k) => {
      pass.setPipeline(this.scanPipeline);
      for (let i = batch.first; i < batch.end; i++) {
        const b = layers[i] as TraceSummaryLayerBuffers;
        const buffers = [b.delta, b.dbc, b.x, b.aLog, b.focus, b.state];
        let cached = this.scanGroups[i];
        if (!cached || cached.buffers.some((x, j) => x !== buffers[j])) {
          // Bindings 0 .. 8 in order: params, call slot, delta, dbc, x, aLog, focus, state, partials.
          const group = bindGroupFor(device, `${this.label}.L${i}.bindGroup`, this.scanLayout, [
            { buffer: this.layerParams[i] as GPUBuffer },
            { buffer: this.calls, size: 16 },
            ...buffers.map(bind),
            { buffer: this.partials },
          ]);
          cached = { group, buffers };
          this.scanGroups[i] = cached;
        }
        const g = this.grids[i] as TraceSummaryGrid;
        pass.setBindGroup(0, cached.group, [offset]);
        pass.dispatchWorkgroups(g.groupsX, g.groupsY);
      }
      pass.setPipeline(this.reducePipeline);
      pass.setBindGroup(0, (this.reduceGroups as { group: GPUBindGroup }[])[k]?.group as GPUBindGroup, [offset]);
      pass.dispatchWorkgroups(Math.ceil(rows / TRACE_SUMMARY_WORKGROUP), batch.end - batch.first);
    });
    pass.end();
  }

  destroy(): void {
    for (const b of [...this.layerParams, ...this.batchParams, this.infos, this.partials, this.calls]) b.destroy();
  }
}
