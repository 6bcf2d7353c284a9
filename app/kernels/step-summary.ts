/**
 * Op: a traced decode step's selection summaries, computed in the fused decode itself (issue 18,
 * "live trace at full speed"). Each traced layer's scan step writes its slot — Δ, the write gate's
 * terms and the state's squares (shaders/selective_scan.wgsl `step_summary`, ssd_scan.wgsl `step`
 * with TRACE_SUMMARY) — and one reduce dispatch after the last layer turns the slots into the step's
 * summary row: ‖Δ‖, the mean write gate, ‖state‖ and the focus score of every traced layer, the
 * numbers app/kernels/trace-summary.ts computes from a trace's taps (shaders/step_summary.wgsl).
 *
 * Why: a step traced with taps adds a copy per tap kind per layer (~250 at mamba-2.8b, each
 * ending a compute pass) and a replay of the state; the slots add one dispatch per step.
 */
import code from '../../shaders/step_summary.wgsl?raw';
import { storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bindGroupFor, bindGroupLayoutFor, checkBufferBytes, checkCount, singleDispatch } from './op-helpers.js';

const OP = 'StepSummary';
const WORKGROUP_SIZE = 256;
/** Bytes of one summary row of one layer: deltaNorm, writeGate, stateNorm, focusScore (fp32). */
export const STEP_SUMMARY_ROW_BYTES = 16;

/** One traced layer as its scan step sees it. */
export interface StepSummaryLayer {
  /** U: Δ columns (Mamba-1 channels, Mamba-2 heads). */
  columns: number;
  /** S: A's entries per Δ column (Mamba-1 N, Mamba-2 1). */
  aStates: number;
  /** Q: rows of the state whose squares the slot holds (d_inner for both). */
  squares: number;
}

/** Floats of a layer's slot: Δ [U], gate [U], squares [Q]. */
export function stepSummarySlotFloats(layer: StepSummaryLayer): number {
  return 2 * layer.columns + layer.squares;
}

/** The binding of a scan step's slot: `floats` from `slot.offset`. */
export function summarySlotBinding(slot: { buffer: GPUBuffer; offset: number }, floats: number): GPUBufferBinding {
  return { buffer: slot.buffer, offset: slot.offset, size: floats * 4 };
}

/** Throws unless `slot` is an aligned range of its buffer holding `floats` floats (the scan ops' check). */
export function checkSummarySlot(ctx: GpuContext, op: string, slot: { buffer: GPUBuffer; offset: number }, floats: number): void {
  const align = ctx.device.limits.minStorageBufferOffsetAlignment;
  if (!Number.isInteger(slot.offset) || slot.offset < 0 || slot.offset % align !== 0) {
    throw new RangeError(`${op}: the summary slot's offset ${slot.offset} in ${slot.buffer.label} is not a multiple of ${align} bytes`);
  }
  checkBufferBytes(op, 'summary slot', slot.buffer, slot.offset + floats * 4);
}

/**
 * The slots of a model's traced layers, their reduce dispatch and its staging row ([layers]
 * vec4). `slot(i)` is traced layer i's slot for its scan step; encode `reduce` after the last
 * layer's scan, then copy `staging` (STEP_SUMMARY_ROW_BYTES per layer) to the step's summary row.
 */
export class StepSummary {
  readonly slots: GPUBuffer;
  readonly staging: GPUBuffer;
  readonly reduce: Dispatch;
  private readonly offsets: number[];
  private readonly infos: GPUBuffer;

  constructor(
    ctx: GpuContext,
    readonly layers: readonly StepSummaryLayer[],
    focus: GPUBuffer,
    label = OP,
  ) {
    const { device } = ctx;
    checkCount(OP, 'layers', layers.length, 1, device.limits.maxComputeWorkgroupsPerDimension);
    const align = device.limits.minStorageBufferOffsetAlignment;
    let bytes = 0;
    this.offsets = layers.map((layer, i) => {
      checkCount(OP, `layer ${i} columns`, layer.columns, 1);
      checkCount(OP, `layer ${i} aStates`, layer.aStates, 1);
      checkCount(OP, `layer ${i} squares`, layer.squares, 1);
      const offset = bytes;
      bytes += Math.ceil((stepSummarySlotFloats(layer) * 4) / align) * align;
      return offset;
    });
    checkBufferBytes(OP, 'focus', focus, Math.max(...layers.map((l) => l.columns)) * 4);
    const maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    if (bytes > maxBinding) throw new RangeError(`${OP}: the slots of ${layers.length} layers take ${bytes} bytes, over the binding limit ${maxBinding}`);
    this.slots = storageBuffer(device, `${label}.slots`, bytes);
    this.staging = storageBuffer(device, `${label}.staging`, layers.length * STEP_SUMMARY_ROW_BYTES);
    const info = new ArrayBuffer(layers.length * 16);
    const u32 = new Uint32Array(info);
    const f32 = new Float32Array(info);
    layers.forEach((layer, i) => {
      u32[4 * i] = (this.offsets[i] as number) / 4;
      u32[4 * i + 1] = layer.columns;
      f32[4 * i + 2] = 1 / (layer.columns * layer.aStates);
      u32[4 * i + 3] = layer.squares;
    });
    this.infos = storageBuffer(device, `${label}.infos`, info.byteLength);
    device.queue.writeBuffer(this.infos, 0, info);
    const layout = bindGroupLayoutFor(ctx, OP, ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage']);
    const pipeline = ctx.pipelines.get({ op: OP, code, entryPoint: 'reduce', layout, constants: { WORKGROUP_SIZE } });
    const group = bindGroupFor(device, `${label}.bindGroup`, layout, [{ buffer: this.infos }, { buffer: this.slots }, { buffer: focus }, { buffer: this.staging }]);
    this.reduce = singleDispatch(`${label}.reduce`, pipeline, group, [layers.length], []);
  }

  /** Traced layer i's slot: where its scan step writes. */
  slot(i: number): { buffer: GPUBuffer; offset: number } {
    const offset = this.offsets[i];
    if (offset === undefined) throw new RangeError(`${OP}: no traced layer ${i} (${this.layers.length} have slots)`);
    return { buffer: this.slots, offset };
  }

  /** GPU bytes held. */
  get bytes(): number {
    return this.slots.size + this.staging.size + this.infos.size;
  }

  destroy(): void {
    this.reduce.destroy();
    for (const b of [this.slots, this.staging, this.infos]) b.destroy();
  }
}
