/**
 * Traces that grow as tokens stream: chosen layers' Δ, B and C over a prefill and decode steps
 * (through buffer growth) equal the float64 reference over the whole sequence; the selection
 * summaries (‖Δ_t‖, mean write gate) follow from them; with tracing off the plan has no taps.
 * The trace file of a prompt trace (app/analysis/trace.ts, the CLI's path, logits kept) has the
 * documented names and shapes, its top next tokens those of its logits.
 */
import { describe, expect, it } from 'vitest';
import type { ModelInspection } from '../../app/arch/inspect';
import { readSafetensorsHeader, readTensorBytes, toFloat32, toIntegers } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import type { LoadedWeights } from '../../app/model/loader';
import { buildModel } from '../../app/arch/build';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { Session } from '../../app/model/session';
import { TraceRecorder } from '../../app/analysis/recorder';
import { promptTraceFile, tracePrompt } from '../../app/analysis/trace';
import { softmax } from '../../app/analysis/distributions';
import { useRandomModelGpu } from '../support/gpu';
import { mulberry32 } from '../support/random-model';

let ctx: GpuContext | null = null;
let skipReason = '';
let inspection: ModelInspection;
let weights: LoadedWeights;
let table: Map<string, Float32Array>;
let seed = 0;
useRandomModelGpu({ model_type: 'mamba', vocab_size: 29, hidden_size: 20, num_hidden_layers: 3, state_size: 5, time_step_rank: 3 }, (gpu) => {
  ({ ctx, skipReason, seed } = gpu);
  if (ctx) ({ inspection, weights, table } = gpu.model);
});

describe('traces', () => {
  it('grow through prefill and decode, for chosen layers, and match the reference row for row', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { dInner: Di, dState: N, vocabSize: V } = inspection.config;
    const r = mulberry32(seed + 1);
    const ids = Array.from({ length: 17 }, () => Math.floor(r() * V));
    const model = buildModel(ctx, inspection, weights, 8);
    const session = new Session(ctx, model);
    const recorder = new TraceRecorder(ctx, model, { layers: [2, 0], capacity: 4, extra: ['x', 'z', 'y'] });
    session.trace(recorder);
    session.prefill(ids.slice(0, 10)); // two chunks of ≤ 8, each reserved before it runs: capacity 4 → 8 → 16
    for (const id of ids.slice(10)) session.step(id); // grows again to 32
    expect(recorder.length).toBe(17);
    expect(recorder.generation).toBe(4);
    const ref = mamba1ForwardRef(inspection.config, (n) => table.get(n), ids);
    const window = await recorder.read();
    expect(recorder.layers).toEqual([0, 2]);
    recorder.layers.forEach((layer, i) => {
      expect(relativeError(window.delta[i]!, ref.delta[layer]!), `delta L${layer}`).toBeLessThanOrEqual(1e-4);
      expect(relativeError(window.B[i]!, ref.B[layer]!), `B L${layer}`).toBeLessThanOrEqual(1e-4);
      expect(relativeError(window.C[i]!, ref.C[layer]!), `C L${layer}`).toBeLessThanOrEqual(1e-4);
      expect(relativeError(window.x![i]!, ref.x[layer]!), `x L${layer}`).toBeLessThanOrEqual(1e-4);
      expect(relativeError(window.z![i]!, ref.z[layer]!), `z L${layer}`).toBeLessThanOrEqual(1e-4);
      expect(relativeError(window.y![i]!, ref.y[layer]!), `y L${layer}`).toBeLessThanOrEqual(1e-4);
    });
    const part = await recorder.read(12, 15);
    expect([...part.delta[1]!]).toEqual([...window.delta[1]!.subarray(12 * Di, 15 * Di)]);
    expect(part.B[0]!.length).toBe(3 * N);

    const aLog = (l: number) => table.get(`backbone.layers.${l}.mixer.A_log`)!;
    const summary = await recorder.summary(aLog);
    recorder.layers.forEach((layer, i) => {
      const d = ref.delta[layer]!;
      const norms = Array.from({ length: 17 }, (_, t) => Math.hypot(...d.subarray(t * Di, (t + 1) * Di)));
      expect(relativeError(summary.deltaNorm[i]!, norms)).toBeLessThanOrEqual(1e-4);
      const A = aLog(layer);
      const gates = Array.from({ length: 17 }, (_, t) => {
        let g = 0;
        for (let c = 0; c < Di; c++) for (let n = 0; n < N; n++) g += 1 - Math.exp(d[t * Di + c]! * -Math.exp(A[c * N + n]!));
        return g / (Di * N);
      });
      expect(relativeError(summary.writeGate[i]!, gates)).toBeLessThanOrEqual(1e-4);
      expect(relativeError(summary.stateNorm![i]!, ref.stateNorm[layer]!), `state norm L${layer}`).toBeLessThanOrEqual(1e-4);
    });
    await expect(recorder.read(5, 18)).rejects.toThrow(/outside the 17 traced/);
    recorder.destroy();
    session.destroy();
    model.destroy();
  });

  it('tracing off adds nothing to the forward pass', (test) => {
    if (!ctx) return test.skip(skipReason);
    const model = buildModel(ctx, inspection, weights, 8);
    const state = model.newState();
    const logits = ctx.device.createBuffer({ size: inspection.config.vocabSize * 4, usage: GPUBufferUsage.STORAGE });
    const plain = model.plan(1, state, logits);
    const recorder = new TraceRecorder(ctx, model);
    const traced = model.plan(1, state, logits, { taps: recorder.taps() });
    expect(plain.steps.every((s) => s.kind === 'dispatch')).toBe(true);
    expect(traced.steps.filter((s) => s.kind === 'copy')).toHaveLength(2 * inspection.config.nLayer);
    const withExtras = new TraceRecorder(ctx, model, { layers: [1], extra: ['x', 'z', 'y'] });
    const tracedMore = model.plan(1, state, logits, { taps: withExtras.taps() });
    expect(tracedMore.steps.filter((s) => s.kind === 'copy')).toHaveLength(5);
    tracedMore.destroy();
    withExtras.destroy();
    plain.destroy();
    traced.destroy();
    recorder.destroy();
    model.destroy();
  });

  it('exports a prompt trace as safetensors with the documented names and shapes', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { dInner: Di, dState: N, vocabSize: V, nLayer: L } = inspection.config;
    const model = buildModel(ctx, inspection, weights, 2); // chunks of 2: the kept logits come back chunk by chunk
    const ids = [1, 2, 3, 4, 5];
    const trace = await tracePrompt(ctx, { model, weights, tokenizer: null }, ids, { traceId: 'cli', modelId: 'random-model', keepLogits: true });
    const logits = trace.logits!;
    expect(logits.length).toBe(5 * V);
    const ref = mamba1ForwardRef(inspection.config, (n) => table.get(n), ids);
    expect(relativeError(logits, ref.logits), 'kept logits').toBeLessThanOrEqual(1e-4);
    const bytes = promptTraceFile(trace, { ids });
    const header = await readSafetensorsHeader(memorySource('trace.safetensors', bytes));
    expect(header.metadata).toMatchObject({ format: 'mamba-studio/trace@1', model: 'random-model', ids: '[1,2,3,4,5]' });
    expect(header.metadata).toMatchObject({ architecture: 'mamba', delta_unit: 'channel', layers: JSON.stringify([...Array(L).keys()]), prompt: '[1,2,3,4,5]' });
    expect(header.tensors.get('logits')?.shape).toEqual([5, V]);
    // The app's format: the top 5 next tokens per position, here from the logits themselves.
    expect(header.tensors.get('top_next.ids')?.shape).toEqual([5, 5]);
    const source = memorySource('trace.safetensors', bytes);
    const topIds = toIntegers(header.tensors.get('top_next.ids')!, await readTensorBytes(source, header.tensors.get('top_next.ids')!));
    const topProbs = toFloat32(header.tensors.get('top_next.probs')!, await readTensorBytes(source, header.tensors.get('top_next.probs')!));
    const fileLogits = toFloat32(header.tensors.get('logits')!, await readTensorBytes(source, header.tensors.get('logits')!));
    expect([...fileLogits]).toEqual([...logits]);
    for (let t = 0; t < 5; t++) {
      const p = softmax(logits.subarray(t * V, (t + 1) * V));
      const order = [...p.keys()].sort((a, b) => p[b]! - p[a]!);
      expect([...topIds.slice(t * 5, t * 5 + 5)]).toEqual(order.slice(0, 5));
      expect(relativeError(topProbs.slice(t * 5, t * 5 + 5), order.slice(0, 5).map((i) => p[i]!))).toBeLessThanOrEqual(1e-6);
    }
    for (let l = 0; l < L; l++) {
      expect(header.tensors.get(`layers.${l}.delta`)?.shape).toEqual([5, Di]);
      expect(header.tensors.get(`layers.${l}.B`)?.shape).toEqual([5, N]);
      expect(header.tensors.get(`layers.${l}.C`)?.shape).toEqual([5, N]);
    }
    model.destroy();
  });
});
