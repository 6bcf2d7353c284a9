/**
 * GPU selection summaries (app/analysis/gpu-summary.ts, shaders/trace_summary.wgsl) against the
 * float64 CPU replay they replace (recorder.ts SelectionReplay / mamba2StateNorms, the reference):
 * ‖Δ_t‖, the mean write gate, ‖state_t‖ (state carried across encode() calls of uneven sizes) and
 * the focus score (against a direct CPU mean), on random odd-sized Mamba-1 and Mamba-2 data and on
 * real tiny models traced with the TraceRecorder (the bundled selective-copy, a Mamba-2 golden
 * fixture), where the GPU summaries equal recorder.summary().
 *
 * Bound, fixed before measuring: relative error ‖gpu − ref‖ / ‖ref‖ ≤ 1e-4 per layer and series
 * (fp32 kernels in this project are checked at 1e-4); the measured errors are printed.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../app/arch/build';
import { GpuSelectionSummary, type GpuSummaryRows, type SummaryInputs } from '../../app/analysis/gpu-summary';
import { SelectionReplay, TraceRecorder, type TraceWindow } from '../../app/analysis/recorder';
import { readALogs } from '../../app/analysis/trace';
import { storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { TRACE_SUMMARY_K_MAX } from '../../app/kernels/trace-summary';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import type { MambaConfig } from '../../app/model/config';
import type { TraceLayout } from '../../app/model/mixer';
import { Session } from '../../app/model/session';
import { loadTestModel, uniformF32, useTestGpu } from '../support/gpu';
import { mulberry32 } from '../support/random-model';

const TOLERANCE = 1e-4;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

/** The most per-element relative error, |a − b| / |b| (for the printed measurements). */
function maxElementError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const ref = b[i] as number;
    if (ref !== 0) worst = Math.max(worst, Math.abs((a[i] as number) - ref) / Math.abs(ref));
  }
  return worst;
}

/** Random layer data, laid out as the trace's taps: Δ [T, U], dbc rows [T, rowWidth], Mamba-1's x tap [T, Di]. */
interface LayerData {
  delta: Float32Array;
  dbc: Float32Array;
  x: Float32Array | null;
  aLog: Float32Array;
}

function mamba1Layout(Di: number, N: number, R: number): TraceLayout {
  return { deltaWidth: Di, deltaUnit: 'channel', rowWidth: R + 2 * N, bOffset: R, cOffset: R + N, bcWidth: N, nGroups: 1, aStates: N, extraTaps: true, aLogName: 'A_log' };
}

function mamba2Layout(H: number, P: number, G: number, N: number): TraceLayout {
  const Di = H * P;
  return { deltaWidth: H, deltaUnit: 'head', rowWidth: Di + 2 * G * N, bOffset: Di, cOffset: Di + G * N, bcWidth: G * N, nGroups: G, aStates: 1, xOffset: 0, extraTaps: false, aLogName: 'A_log' };
}

function config(c: Partial<MambaConfig>): MambaConfig {
  return { nHeads: 0, headDim: 0, nGroups: 1, ...c } as MambaConfig;
}

/**
 * Δ = lo + softplus-like positive values; A_log = log U(aLo, aHi); B, C, x uniform in [−1, 1).
 * `slow`: Δ in [0.001, 0.1) and A ∈ [−2, −0.5) (long memory: decay ≥ 0.8 per token), the regime
 * where fp32 state accumulation is hardest.
 */
function layerData(layout: TraceLayout, Di: number, T: number, s: number, slow = false): LayerData {
  const U = layout.deltaWidth;
  return {
    delta: slow ? uniformF32(T * U, s, 0.001, 0.1) : randomF32(T * U, s, 3).map((v) => Math.log1p(Math.exp(v))),
    dbc: randomF32(T * layout.rowWidth, s + 1),
    x: layout.xOffset === undefined ? randomF32(T * Di, s + 2) : null,
    aLog: (slow ? uniformF32(U * layout.aStates, s + 3, 0.5, 2) : uniformF32(U * layout.aStates, s + 3, 0.3, 8)).map(Math.log),
  };
}

/** The window SelectionReplay reads, cut from the taps as TraceRecorder.read does. */
function windowOf(layouts: TraceLayout[], data: LayerData[], Di: number, T: number): TraceWindow {
  const w: TraceWindow = { from: 0, to: T, delta: [], B: [], C: [] };
  data.forEach((d, i) => {
    const l = layouts[i]!;
    const cut = (offset: number, width: number) => Float32Array.from({ length: T * width }, (_, k) => d.dbc[Math.floor(k / width) * l.rowWidth + offset + (k % width)]!);
    w.delta.push(d.delta);
    w.B.push(cut(l.bOffset, l.bcWidth));
    w.C.push(cut(l.cOffset, l.bcWidth));
    const x = d.x ?? (l.xOffset !== undefined ? cut(l.xOffset, Di) : null);
    if (x) (w.x ??= []).push(x);
  });
  return w;
}

/** Mean Δ over `focus` columns per token (the independent reference of focusScore). */
function focusMean(delta: Float32Array, U: number, focus: number[], T: number): Float64Array {
  return Float64Array.from({ length: T }, (_, t) => focus.reduce((s, c) => s + delta[t * U + c]!, 0) / focus.length);
}

interface RunOptions {
  splits: number[];
  focus?: number[];
  maxRows?: number;
  tuning?: { targetWorkgroups?: number; partialsMaxBytes?: number };
  capacity?: number;
  /** Encode every call into one encoder, submitted once at the end (the ring of call slots). */
  oneEncoder?: boolean;
}

/**
 * Uploads the layers' taps and runs GpuSelectionSummary over `splits` (consecutive calls; the last
 * call reads from a separate buffer holding only its rows after 2 padding rows, so srcRow ≠ the
 * summary row), then reads the whole summary back.
 */
async function runGpu(c: MambaConfig, layouts: TraceLayout[], data: LayerData[], o: RunOptions): Promise<{ rows: GpuSummaryRows; summary: GpuSelectionSummary }> {
  const device = ctx!.device;
  const T = o.splits.reduce((a, b) => a + b, 0);
  const up = (label: string, a: Float32Array) => uploadF32(device, `Test.${label}`, a);
  const owned: GPUBuffer[] = [];
  const keep = (b: GPUBuffer) => (owned.push(b), b);
  const full: SummaryInputs = {
    delta: data.map((d, i) => keep(up(`delta${i}`, d.delta))),
    dbc: data.map((d, i) => keep(up(`dbc${i}`, d.dbc))),
    ...(data.every((d) => d.x) ? { x: data.map((d, i) => keep(up(`x${i}`, d.x!))) } : {}),
  };
  const aLogs = data.map((d, i) => keep(up(`aLog${i}`, d.aLog)));
  const summary = new GpuSelectionSummary(ctx!, c, layouts.map((_, i) => i), layouts, aLogs, {
    capacity: o.capacity ?? 4,
    maxRows: o.maxRows ?? Math.max(...o.splits),
    ...(o.focus ? { focusChannels: o.focus } : {}),
    ...(o.tuning ? { tuning: o.tuning } : {}),
  });
  let row = 0;
  const shared = o.oneEncoder ? device.createCommandEncoder({ label: 'Test.all' }) : null;
  for (const [k, rows] of o.splits.entries()) {
    let inputs = full;
    let src = row;
    if (k === o.splits.length - 1 && k > 0) {
      // Only this call's rows, after 2 rows of padding.
      const slice = (a: Float32Array, width: number) => {
        const out = new Float32Array((rows + 2) * width).fill(Number.NaN);
        out.set(a.subarray(row * width, (row + rows) * width), 2 * width);
        return out;
      };
      inputs = {
        delta: data.map((d, i) => keep(up(`delta${i}.tail`, slice(d.delta, layouts[i]!.deltaWidth)))),
        dbc: data.map((d, i) => keep(up(`dbc${i}.tail`, slice(d.dbc, layouts[i]!.rowWidth)))),
        ...(full.x ? { x: data.map((d, i) => keep(up(`x${i}.tail`, slice(d.x!, c.dInner)))) } : {}),
      };
      src = 2;
    }
    if (shared) summary.encode(shared, inputs, src, rows);
    else {
      await withErrorScopes(device, 'trace summary', () => {
        summary.reserve(rows);
        const encoder = device.createCommandEncoder();
        summary.encode(encoder, inputs, src, rows);
        device.queue.submit([encoder.finish()]);
      });
    }
    row += rows;
  }
  if (shared) await withErrorScopes(device, 'trace summary', () => device.queue.submit([shared.finish()]));
  expect(summary.length).toBe(T);
  const rows = await summary.read();
  for (const b of owned) b.destroy();
  return { rows, summary };
}

function compare(name: string, gpu: GpuSummaryRows, ref: { deltaNorm: Float32Array[]; writeGate: Float32Array[]; stateNorm?: Float32Array[] }, layers: number): void {
  for (let i = 0; i < layers; i++) {
    for (const key of ['deltaNorm', 'writeGate', 'stateNorm'] as const) {
      const a = gpu[key]![i]!;
      const b = ref[key]![i]!;
      const error = relativeError(a, b);
      console.info(`[trace-summary] ${name} layer ${i} ${key}: relative error ${error.toExponential(2)}, worst element ${maxElementError(a, b).toExponential(2)}`);
      expect(error, `${name} layer ${i} ${key}`).toBeLessThanOrEqual(TOLERANCE);
    }
  }
}

describe('GPU selection summaries against the float64 replay (random data)', () => {
  it('Mamba-1 (Di 37, N 5, R 3, two layers): 53 rows over calls of 1, 17, 35 rows carry the state', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [Di, N, T] = [37, 5, 53];
    const c = config({ architecture: 'mamba', dInner: Di, dState: N });
    const layouts = [mamba1Layout(Di, N, 3), mamba1Layout(Di, N, 3)];
    const data = layouts.map((l, i) => layerData(l, Di, T, seed + 10 * i));
    const focus = [36, 0, 5];
    const { rows, summary } = await runGpu(c, layouts, data, { splits: [1, 17, 35], focus });
    const ref = new SelectionReplay(c, [0, 1], (l) => data[l]!.aLog, layouts).append(windowOf(layouts, data, Di, T));
    compare('mamba1', rows, ref, 2);
    data.forEach((d, i) => expect(relativeError(rows.focusScore![i]!, focusMean(d.delta, Di, focus, T)), `focus ${i}`).toBeLessThanOrEqual(TOLERANCE));
    expect(rows.stateNorm).toHaveLength(2);
    // Parts read back equal the whole.
    const part = await summary.read(17, 30);
    expect([...part.stateNorm![1]!]).toEqual([...rows.stateNorm![1]!.subarray(17, 30)]);
    await expect(summary.read(5, 54)).rejects.toThrow(/outside the 53 summarised/);
    summary.destroy();
  });

  it('Mamba-1 without the x tap: Δ norm, gate and focus, no state norms', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [Di, N, T] = [37, 5, 20];
    const c = config({ architecture: 'mamba', dInner: Di, dState: N });
    const layouts = [mamba1Layout(Di, N, 3)];
    const data = layouts.map((l) => ({ ...layerData(l, Di, T, seed + 3), x: null }));
    const { rows, summary } = await runGpu(c, layouts, data, { splits: [7, 13], focus: [4] });
    const ref = new SelectionReplay(c, [0], () => data[0]!.aLog, layouts).append({ ...windowOf(layouts, data, Di, T) });
    expect(rows.stateNorm).toBeUndefined();
    expect(relativeError(rows.deltaNorm[0]!, ref.deltaNorm[0]!)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(rows.writeGate[0]!, ref.writeGate[0]!)).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeError(rows.focusScore![0]!, focusMean(data[0]!.delta, Di, [4], T))).toBeLessThanOrEqual(TOLERANCE);
    summary.destroy();
  });

  for (const G of [2, 3]) {
    it(`Mamba-2 (H 6, P 7, G ${G}, N 5, two layers): 53 rows over calls of 1, 17, 35`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const [H, P, N, T] = [6, 7, 5, 53];
      const Di = H * P;
      const c = config({ architecture: 'mamba2', dInner: Di, dState: N, nHeads: H, headDim: P, nGroups: G });
      const layouts = [mamba2Layout(H, P, G, N), mamba2Layout(H, P, G, N)];
      const data = layouts.map((l, i) => layerData(l, Di, T, seed + 100 + 10 * i));
      const focus = [5, 2];
      const { rows, summary } = await runGpu(c, layouts, data, { splits: [1, 17, 35], focus });
      const ref = new SelectionReplay(c, [0, 1], (l) => data[l]!.aLog, layouts).append(windowOf(layouts, data, Di, T));
      compare(`mamba2 G${G}`, rows, ref, 2);
      data.forEach((d, i) => expect(relativeError(rows.focusScore![i]!, focusMean(d.delta, H, focus, T)), `focus ${i}`).toBeLessThanOrEqual(TOLERANCE));
      summary.destroy();
    });
  }

  it('several elements per invocation and one layer per reduce batch give the same summaries', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const [H, P, G, N, T] = [6, 7, 3, 5, 29];
    const Di = H * P;
    const c = config({ architecture: 'mamba2', dInner: Di, dState: N, nHeads: H, headDim: P, nGroups: G });
    const layouts = [mamba2Layout(H, P, G, N), mamba2Layout(H, P, G, N), mamba2Layout(H, P, G, N)];
    const data = layouts.map((l, i) => layerData(l, Di, T, seed + 200 + 10 * i));
    // One workgroup per layer: 210 elements over 64 invocations (4 each); partials of one layer per batch.
    const { rows, summary } = await runGpu(c, layouts, data, { splits: [11, 18], tuning: { targetWorkgroups: 1, partialsMaxBytes: 1 } });
    const op = summary.op!;
    expect(op.grids.map((g) => g.perThread)).toEqual([4, 4, 4]);
    expect(op.batches).toHaveLength(3);
    expect(op.dispatches).toBe(6);
    const ref = new SelectionReplay(c, [0, 1, 2], (l) => data[l]!.aLog, layouts).append(windowOf(layouts, data, Di, T));
    compare('mamba2 tuned', rows, ref, 3);
    summary.destroy();
    // Mamba-1 with the most elements per invocation (K_MAX).
    const m1 = config({ architecture: 'mamba', dInner: 37, dState: 16 });
    const l1 = [mamba1Layout(37, 16, 2)];
    const d1 = [layerData(l1[0]!, 37, T, seed + 300)];
    const run = await runGpu(m1, l1, d1, { splits: [T], tuning: { targetWorkgroups: 1 } });
    expect(run.summary.op!.grids[0]!.perThread).toBe(TRACE_SUMMARY_K_MAX);
    compare('mamba1 K_MAX', run.rows, new SelectionReplay(m1, [0], () => d1[0]!.aLog, l1).append(windowOf(l1, d1, 37, T)), 1);
    run.summary.destroy();
  });

  it('stays within 1e-4 over 4,096 tokens of slow decay (64 calls of 64 rows in one encoder), Mamba-1 and Mamba-2', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const T = 4096;
    const splits = new Array<number>(T / 64).fill(64);
    const m1 = config({ architecture: 'mamba', dInner: 37, dState: 5 });
    const l1 = [mamba1Layout(37, 5, 3)];
    const d1 = [layerData(l1[0]!, 37, T, seed + 400, true)];
    const r1 = await runGpu(m1, l1, d1, { splits, capacity: T, oneEncoder: true });
    compare('mamba1 4096 slow', r1.rows, new SelectionReplay(m1, [0], () => d1[0]!.aLog, l1).append(windowOf(l1, d1, 37, T)), 1);
    r1.summary.destroy();
    const m2 = config({ architecture: 'mamba2', dInner: 42, dState: 5, nHeads: 6, headDim: 7, nGroups: 2 });
    const l2 = [mamba2Layout(6, 7, 2, 5)];
    const d2 = [layerData(l2[0]!, 42, T, seed + 500, true)];
    const r2 = await runGpu(m2, l2, d2, { splits, capacity: T, oneEncoder: true });
    compare('mamba2 4096 slow', r2.rows, new SelectionReplay(m2, [0], () => d2[0]!.aLog, l2).append(windowOf(l2, d2, 42, T)), 1);
    r2.summary.destroy();
  });

  it('refuses bad focus columns, bad row counts and rows past the capacity with a clear RangeError', (test) => {
    if (!ctx) return test.skip(skipReason);
    const device = ctx.device;
    const c = config({ architecture: 'mamba', dInner: 37, dState: 5 });
    const layouts = [mamba1Layout(37, 5, 3)];
    const aLog = storageBuffer(device, 'Test.aLog', 37 * 5 * 4);
    const make = (focusChannels: number[]) => new GpuSelectionSummary(ctx!, c, [0], layouts, [aLog], { capacity: 4, maxRows: 8, focusChannels });
    expect(() => make([37])).toThrow(/focus channel 37 is not one of 0\.\.36/);
    expect(() => make([-1])).toThrow(RangeError);
    expect(() => make([1.5])).toThrow(/focus channel 1.5/);
    expect(() => make([3, 3])).toThrow(/focus channel 3 is listed twice/);
    const small = storageBuffer(device, 'Test.aLogSmall', 37 * 4);
    expect(() => new GpuSelectionSummary(ctx!, c, [0], layouts, [small], { capacity: 4, maxRows: 8 })).toThrow(/A_log .* needs 740/);
    const s = make([]);
    const delta = storageBuffer(device, 'Test.delta', 37 * 4 * 4);
    const dbc = storageBuffer(device, 'Test.dbc', 13 * 4 * 4);
    const encoder = device.createCommandEncoder();
    expect(() => s.encode(encoder, { delta: [delta], dbc: [dbc] }, 0, 9)).toThrow(/rows must be an integer in 0\.\.8/);
    expect(() => s.encode(encoder, { delta: [delta], dbc: [dbc] }, 0, 5)).toThrow(/reserve\(5\) first/);
    s.reserve(5);
    expect(() => s.encode(encoder, { delta: [delta], dbc: [dbc] }, 0, 5)).toThrow(/delta .* needs 740/);
    expect(() => s.encode(encoder, { delta: [delta, delta], dbc: [dbc] }, 0, 1)).toThrow(/each of the 1 layers/);
    s.destroy();
    for (const b of [aLog, small, delta, dbc]) b.destroy();
  });
});

describe('GPU selection summaries of real tiny models equal the recorder’s', () => {
  const cases = [
    { name: 'selective-copy (Mamba-1, bundled)', dir: path.resolve(import.meta.dirname, '../../resources/models/selective-copy') },
    { name: 'mamba2-groups (Mamba-2 golden fixture)', dir: path.resolve(import.meta.dirname, '../fixtures/golden/mamba2-groups') },
  ];
  it.for(cases)('$name: prefill (calls of ≤ 16 rows) then decode steps (one row each, in the step’s encoder)', async ({ name, dir }, test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights } = await loadTestModel(ctx, dir);
    const c = inspection.config;
    const model = buildModel(ctx, inspection, weights, 8);
    const session = new Session(ctx, model);
    const mamba1 = model.traceLayout(0)?.xOffset === undefined;
    // Capacity 4: the recorder's buffers grow (and change) during prefill and decode.
    const recorder = new TraceRecorder(ctx, model, { capacity: 4, ...(mamba1 ? { extra: ['x' as const] } : {}) });
    const aLogBuffers = recorder.layers.map((l) => weights.buffers.get(`${model.mixerPrefix(l)}${recorder.traceLayouts[recorder.layers.indexOf(l)]!.aLogName}`)!);
    const focus = [1, 3];
    const summary = new GpuSelectionSummary(ctx, c, recorder.layers, [...recorder.traceLayouts], aLogBuffers, { capacity: 2, maxRows: 16, focusChannels: focus });
    session.trace(recorder);
    const r = mulberry32(seed + 7);
    const ids = Array.from({ length: 37 }, () => Math.floor(r() * c.vocabSize));
    session.prefill(ids.slice(0, 30));
    for (let row = 0; row < 30; row += 16) {
      const rows = Math.min(16, 30 - row);
      summary.reserve(rows);
      const encoder = ctx.device.createCommandEncoder();
      summary.encode(encoder, recorder.tapBuffers(), row, rows);
      ctx.device.queue.submit([encoder.finish()]);
    }
    for (const id of ids.slice(30)) {
      summary.reserve(1);
      session.step(id, (encoder) => summary.encode(encoder, recorder.tapBuffers(), recorder.length - 1, 1));
    }
    expect(recorder.generation).toBeGreaterThan(2);
    const gpu = await summary.read();
    const aLogs = await readALogs(ctx, { model, weights, tokenizer: null }, recorder.layers);
    const window = await recorder.read();
    const ref = await recorder.summary((l) => aLogs.get(l)!, window);
    compare(name, gpu, ref, recorder.layers.length);
    const U = recorder.traceLayouts[0]!.deltaWidth;
    recorder.layers.forEach((_, i) => expect(relativeError(gpu.focusScore![i]!, focusMean(window.delta[i]!, U, focus, ids.length)), `focus ${i}`).toBeLessThanOrEqual(TOLERANCE));
    summary.destroy();
    recorder.destroy();
    session.destroy();
    model.destroy();
    weights.destroy();
  });
});
