/**
 * The engine's `trace` request: a prompt's prefill Δ per chosen layer equals the float64
 * reference, ‖Δ_t‖ and the mean write gate follow from it (A_log read back from the loaded
 * weights), B, C, A = −exp(A_log) and ‖state_t‖ equal the reference, byte tokens come back readable, and the other requests keep working around it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../app/engine/engine';
import type { TraceResult } from '../../app/engine/protocol';
import { inspectModel } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { relativeError } from '../../app/kernels/self-test';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { findNodeGpu } from '../../app/node/dawn';
import { folderModelFiles } from '../../app/node/folder';
import { testSeed } from '../support/gpu';
import { writeRandomMamba1 } from '../support/random-model';
import { filesSource } from '../support/engine-source';

const RAW = { model_type: 'mamba', vocab_size: 256, hidden_size: 20, num_hidden_layers: 3, state_size: 5, time_step_rank: 3 };
const scratch = mkdtempSync(path.join(tmpdir(), 'engine-trace-'));
let gpu: GPU | null = null;
let skipReason = '';
let table: Map<string, Float32Array>;
let config: Awaited<ReturnType<typeof inspectModel>>['config'];

beforeAll(async () => {
  try {
    gpu = (await findNodeGpu()).gpu;
  } catch (error) {
    skipReason = (error as Error).message;
    return;
  }
  writeRandomMamba1(scratch, RAW, testSeed());
  const files = await folderModelFiles(scratch);
  const inspection = await inspectModel(files);
  config = inspection.config;
  table = await readAllTensorsF32(files, inspection);
  await files.close();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('engine: trace', () => {
  it('returns Δ of chosen layers equal to the reference, with ‖Δ_t‖, write gates and readable tokens', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const engine = new Engine(gpu, () => undefined, 'node');
    const before = await engine.handle({ id: 1, kind: 'trace', params: { modelId: 'random', prompt: { ids: [1] } } });
    expect(before).toMatchObject({ ok: false, error: 'Load the model onto the GPU first.' });
    expect(await engine.handle({ id: 2, kind: 'loadModel', params: { modelId: 'random', source: filesSource(scratch, undefined, 'random') } })).toMatchObject({ ok: true });

    const text = 'ab\ncd\t\u0001 é~'; // 13 bytes (é is two), not a multiple of anything
    const reply = await engine.handle({ id: 3, kind: 'trace', params: { modelId: 'random', prompt: { text }, layers: [2, 0] } });
    if (!reply.ok) throw new Error(reply.error);
    const result = reply.result as TraceResult;
    const ids = [...new TextEncoder().encode(text)];
    expect(result.ids).toEqual(ids);
    expect(result.tokens).toEqual(['a', 'b', '⏎', 'c', 'd', '⇥', '0x01', ' ', '0xC3', '0xA9', '~']);
    expect(result.tokens).toHaveLength(11);
    expect(result.layers).toEqual([0, 2]);
    const { dInner: Di, dState: N } = config;
    expect(result.deltaWidth).toBe(Di);
    const T = ids.length;
    const ref = mamba1ForwardRef(config, (n) => table.get(n), ids);
    result.layers.forEach((layer, i) => {
      const delta = result.delta[i]!;
      expect(delta.length).toBe(T * Di);
      expect(delta.every(Number.isFinite)).toBe(true);
      const d = ref.delta[layer]!;
      expect(relativeError(delta, d), `delta L${layer}`).toBeLessThanOrEqual(1e-4);
      const norms = Array.from({ length: T }, (_, t) => Math.hypot(...d.subarray(t * Di, (t + 1) * Di)));
      expect(relativeError(result.deltaNorm[i]!, norms), `‖Δ‖ L${layer}`).toBeLessThanOrEqual(1e-4);
      const aLog = table.get(`backbone.layers.${layer}.mixer.A_log`)!;
      const gates = Array.from({ length: T }, (_, t) => {
        let g = 0;
        for (let c = 0; c < Di; c++) for (let n = 0; n < N; n++) g += 1 - Math.exp(d[t * Di + c]! * -Math.exp(aLog[c * N + n]!));
        return g / (Di * N);
      });
      expect(relativeError(result.writeGate[i]!, gates), `write gate L${layer}`).toBeLessThanOrEqual(1e-4);
      // B, C [T, N], A = −exp(A_log) [Di, N] and ‖state_t‖ [T] for the memory panels.
      expect(result.B[i]!.length).toBe(T * N);
      expect(relativeError(result.B[i]!, ref.B[layer]!), `B L${layer}`).toBeLessThanOrEqual(1e-4);
      expect(result.C[i]!.length).toBe(T * N);
      expect(relativeError(result.C[i]!, ref.C[layer]!), `C L${layer}`).toBeLessThanOrEqual(1e-4);
      expect(relativeError(result.A[i]!, Array.from(aLog, (v) => -Math.exp(v))), `A L${layer}`).toBeLessThanOrEqual(1e-6);
      expect(result.stateNorm[i]!.length).toBe(T);
      expect(relativeError(result.stateNorm[i]!, ref.stateNorm[layer]!), `‖state‖ L${layer}`).toBeLessThanOrEqual(1e-4);
    });
    expect(result.dState).toBe(N);

    // All layers by default, from ids; then generation still works, and a bad layer is a clear error.
    const all = await engine.handle({ id: 4, kind: 'trace', params: { modelId: 'random', prompt: { ids: [5, 6, 7] } } });
    expect(all).toMatchObject({ ok: true, result: { ids: [5, 6, 7], layers: [0, 1, 2], traceId: expect.any(String) } });
    // Each trace is kept under its own id.
    expect(result.traceId).toEqual(expect.any(String));
    expect((all as { result: TraceResult }).result.traceId).not.toBe(result.traceId);
    const generated = await engine.handle({
      id: 5,
      kind: 'generate',
      params: { modelId: 'random', prompt: { ids: [1, 2] }, maxTokens: 3, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, stopStrings: [] },
    });
    expect(generated).toMatchObject({ ok: true, result: { ids: [expect.any(Number), expect.any(Number), expect.any(Number)] } });
    const bad = await engine.handle({ id: 6, kind: 'trace', params: { modelId: 'random', prompt: { ids: [1] }, layers: [3] } });
    expect(bad).toMatchObject({ ok: false, error: expect.stringMatching(/no layer 3 \(the model has 3\)/) });
    const empty = await engine.handle({ id: 7, kind: 'trace', params: { modelId: 'random', prompt: { ids: [] } } });
    expect(empty).toMatchObject({ ok: false, error: 'The prompt is empty.' });
    await engine.handle({ id: 8, kind: 'unloadModel', params: {} });
  });
});
