/**
 * The engine's analysis requests, end to end through `Engine.handle`:
 * - `trace` keeps the top 5 next tokens per position: equal to softmax of the float64 reference's
 *   logits (Mamba-1), and of transformers' logits (Mamba-2 golden fixture);
 * - `trace` of a Mamba-2 model: Δ [T, H], B and C [T, G·N] equal transformers' (golden, 1e-3),
 *   A = −exp(A_log) per head, ‖state‖ per head equal to a float64 replay of transformers' Δ, x, B;
 * - `hiddenAttention` of a trace by its id: Mamba-1 full matrix (mean and one channel) and one row
 *   equal the float64 reference on the reference's Δ, B, C; Mamba-2 per head and the mean over
 *   heads equal (C_i·B_j)·exp(A_h·(S_i − S_j))·Δ_j[h] computed here from transformers' tensors;
 * - `knockout`: the next-token distribution with Δ_j := 0 equals the float64 reference's with the
 *   same knockout; KL and total variation follow from the two distributions;
 * - a live trace while generating: the streamed rows add up to the reference's trace of every fed
 *   token, and the finished trace is kept under the generation's traceId;
 * - traces are kept by id: hidden attention and knockout of an older trace are that trace's; an
 *   evicted, unknown or unloaded trace id is a clear error;
 * - clear errors for requests that cannot run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../app/engine/engine';
import { softmax } from '../../app/analysis/distributions';
import type { EngineRequest, EngineRequestKind, EngineRequests, HiddenAttentionResult, KnockoutResult, TraceResult, TraceRows } from '../../app/engine/protocol';
import { appendTraceRows } from '../../app/analysis/trace-rows';
import { TRACES_KEPT } from '../../app/analysis/trace-store';
import { inspectModel } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { hiddenAttentionRef } from '../../app/kernels/hidden-attention.ref';
import { relativeError } from '../../app/kernels/self-test';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { folderModelFiles } from '../../app/node/folder';
import { readGolden } from '../support/golden';
import { testSeed, useNodeGpu } from '../support/gpu';
import { writeRandomMamba1 } from '../support/random-model';
import { filesSource } from '../support/engine-source';

const RAW = { model_type: 'mamba', vocab_size: 37, hidden_size: 24, num_hidden_layers: 2, state_size: 6, time_step_rank: 3 };
/** Float32 GPU vs float64 reference through a whole model (as in the other model tests). */
const TOL = 1e-4;
/** Against transformers' fp32 outputs (the issue's bound). */
const GOLDEN_TOL = 1e-3;
const scratch = mkdtempSync(path.join(tmpdir(), 'engine-analysis-'));
const golden = path.resolve(import.meta.dirname, '../fixtures/golden/mamba2-groups');
let gpu: GPU | null = null;
let skipReason = '';

useNodeGpu((found) => ({ gpu, skipReason } = found));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A fresh random Mamba-1 in `scratch`, with its config and weights (for the reference). */
async function randomModel() {
  writeRandomMamba1(scratch, RAW, testSeed());
  const files = await folderModelFiles(scratch);
  const inspection = await inspectModel(files);
  const table = await readAllTensorsF32(files, inspection);
  await files.close();
  return { config: inspection.config, table };
}

/** Sends a request and returns its result, or throws its error. */
function client(engine: Engine) {
  let id = 1;
  const send = async <K extends EngineRequestKind>(kind: K, params: EngineRequests[K]['params']): Promise<EngineRequests[K]['result']> => {
    const reply = await engine.handle({ id: id++, kind, params } as EngineRequest);
    if (!reply.ok) throw new Error(reply.error);
    return reply.result as EngineRequests[K]['result'];
  };
  return send;
}

/** The top `k` of softmax(row) as [ids, probs]. */
function topOf(row: ArrayLike<number>, k: number): { ids: number[]; probs: number[] } {
  const p = softmax(row);
  const ids = Array.from(p.keys())
    .sort((a, b) => (p[b] as number) - (p[a] as number))
    .slice(0, k);
  return { ids, probs: ids.map((i) => p[i] as number) };
}

/** Checks topNext against reference logits [T, V]; ids compared only where the reference's order is not a near-tie. */
function expectTopNext(result: TraceResult, logits: ArrayLike<number>, V: number, tol: number) {
  const { k, ids, probs } = result.topNext;
  expect(k).toBe(Math.min(5, V));
  const T = result.ids.length;
  expect(ids.length).toBe(T * k);
  for (let t = 0; t < T; t++) {
    const ref = topOf(Array.from({ length: V }, (_, v) => logits[t * V + v] as number), k + 1);
    expect(relativeError(probs.subarray(t * k, (t + 1) * k), ref.probs.slice(0, k)), `top probs at ${t}`).toBeLessThanOrEqual(tol);
    for (let i = 0; i < k; i++) {
      const gapBefore = i > 0 ? (ref.probs[i - 1] as number) - (ref.probs[i] as number) : Infinity;
      const gapAfter = (ref.probs[i] as number) - (ref.probs[i + 1] as number);
      if (Math.min(gapBefore, gapAfter) > 1e-4) expect(ids[t * k + i], `top id ${i} at ${t}`).toBe(ref.ids[i]);
    }
  }
}

describe('engine: analysis requests on Mamba-1', () => {
  it('top next tokens, hidden attention and knockout equal the float64 reference', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const { config, table } = await randomModel();
    const { dInner: Di, dState: N, vocabSize: V } = config;
    const engine = new Engine(gpu, () => undefined, 'node');
    const send = client(engine);
    await send('loadModel', { modelId: 'm1', source: filesSource(scratch) });
    await expect(send('hiddenAttention', { modelId: 'm1', traceId: 'trace-1', layer: 0, unit: 'mean' })).rejects.toThrow('Trace trace-1 is no longer kept: trace again.');

    const ids = Array.from({ length: 19 }, (_, t) => (t * 7 + 3) % V);
    const T = ids.length;
    const trace = await send('trace', { modelId: 'm1', prompt: { ids } });
    const ref = mamba1ForwardRef(config, (n) => table.get(n), ids);
    expectTopNext(trace, ref.logits, V, TOL);
    expect(trace).toMatchObject({ modelId: 'm1', architecture: 'mamba', deltaWidth: Di, deltaUnit: 'channel', nGroups: 1, aStates: N });

    // Hidden attention from the reference's own Δ, B, C (float32 as the trace holds them).
    for (const layer of [0, 1]) {
      const f = (a: Float64Array) => Float32Array.from(a);
      const aLog = table.get(`backbone.layers.${layer}.mixer.A_log`)!;
      for (const unit of ['mean', 5] as const) {
        const expected = hiddenAttentionRef(f(ref.delta[layer]!), f(ref.B[layer]!), f(ref.C[layer]!), aLog, T, Di, N, unit);
        const full: HiddenAttentionResult = await send('hiddenAttention', { modelId: 'm1', traceId: trace.traceId, layer, unit });
        expect(full).toMatchObject({ layer, unit, tokens: T });
        expect(full.alpha.length).toBe(T * T);
        expect(relativeError(full.alpha, expected), `α L${layer} ${unit}`).toBeLessThanOrEqual(TOL);
        const row = await send('hiddenAttention', { modelId: 'm1', traceId: trace.traceId, layer, unit, row: 11 });
        expect(row.row).toBe(11);
        expect(relativeError(row.alpha, expected.subarray(11 * T, 12 * T)), `α row L${layer} ${unit}`).toBeLessThanOrEqual(TOL);
      }
    }
    await expect(send('hiddenAttention', { modelId: 'm1', traceId: trace.traceId, layer: 0, unit: Di })).rejects.toThrow(`There is no channel ${Di} (the layer has ${Di})`);
    await expect(send('hiddenAttention', { modelId: 'm1', traceId: trace.traceId, layer: 0, unit: 'mean', row: T })).rejects.toThrow(`There is no token ${T}`);

    // Knockout of token 6 in layer 1, then in every layer: the distributions equal the reference's.
    const last = (logits: Float64Array) => logits.subarray((T - 1) * V, T * V);
    const p = softmax(last(ref.logits));
    for (const layers of [[1], null] as const) {
      const knockedRef = mamba1ForwardRef(config, (n) => table.get(n), ids, 'backbone.', { token: 6, layers });
      // The knockout reaches the reference's Δ: exactly 0 at token 6 in the knocked layers.
      for (const l of layers ?? [0, 1]) expect(knockedRef.delta[l]!.subarray(6 * Di, 7 * Di).every((v) => v === 0)).toBe(true);
      const q = softmax(last(knockedRef.logits));
      const result: KnockoutResult = await send('knockout', { modelId: 'm1', traceId: trace.traceId, token: 6, ...(layers ? { layers: [...layers] } : {}), k: 7 });
      expect(result.layers).toEqual(layers ?? [0, 1]);
      const expectDistribution = (got: KnockoutResult['baseline'], probs: Float64Array) => {
        expect(got.ids).toHaveLength(7);
        expect(relativeError(got.probs, got.ids.map((i) => probs[i] as number)), 'probs of the returned ids').toBeLessThanOrEqual(TOL);
        const sorted = [...probs].sort((a, b) => b - a);
        expect(relativeError(got.probs, sorted.slice(0, 7)), 'they are the top 7').toBeLessThanOrEqual(TOL);
      };
      expectDistribution(result.baseline, p);
      expectDistribution(result.knocked, q);
      let kl = 0;
      let tv = 0;
      for (let v = 0; v < V; v++) {
        kl += (p[v] as number) * Math.log((p[v] as number) / (q[v] as number));
        tv += Math.abs((p[v] as number) - (q[v] as number)) / 2;
      }
      expect(kl).toBeGreaterThan(0);
      expect(Math.abs(result.kl - kl)).toBeLessThanOrEqual(TOL * Math.max(kl, 1e-3));
      expect(Math.abs(result.totalVariation - tv)).toBeLessThanOrEqual(TOL * Math.max(tv, 1e-3) + 1e-6);
      expect(result.baselineTopProbAfter).toBeCloseTo(q[result.baseline.ids[0]!] as number, 5);
    }
    await expect(send('knockout', { modelId: 'm1', traceId: trace.traceId, token: T })).rejects.toThrow(`There is no token ${T} in the prompt (it has ${T})`);
    await expect(send('knockout', { modelId: 'm1', traceId: trace.traceId, token: 0, layers: [2] })).rejects.toThrow('There is no layer 2 (the model has 2)');
    await expect(send('knockout', { modelId: 'm1', traceId: trace.traceId, token: 0, layers: [] })).rejects.toThrow(/at least one layer/);
    await send('unloadModel', {});
    await expect(send('hiddenAttention', { modelId: 'm1', traceId: trace.traceId, layer: 0, unit: 'mean' })).rejects.toThrow('Load the model onto the GPU first.');
  });
});

describe('engine: traces kept by id', () => {
  it('hidden attention and knockout of an older trace are that trace\'s; evicted, unknown and unloaded ids are clear errors', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const { config, table } = await randomModel();
    const { dInner: Di, dState: N, vocabSize: V } = config;
    const engine = new Engine(gpu, () => undefined, 'node');
    const send = client(engine);
    await send('loadModel', { modelId: 'ids', source: filesSource(scratch) });
    const idsA = Array.from({ length: 13 }, (_, t) => (t * 5 + 1) % V);
    const idsB = Array.from({ length: 9 }, (_, t) => (t * 11 + 4) % V);
    const a = await send('trace', { modelId: 'ids', prompt: { ids: idsA } });
    const b = await send('trace', { modelId: 'ids', prompt: { ids: idsB } });
    expect(a.traceId).toEqual(expect.any(String));
    expect(b.traceId).not.toBe(a.traceId);
    const f = (x: Float64Array) => Float32Array.from(x);
    const aLog = table.get('backbone.layers.1.mixer.A_log')!;
    const refA = mamba1ForwardRef(config, (n) => table.get(n), idsA);
    const refB = mamba1ForwardRef(config, (n) => table.get(n), idsB);
    const alphaA = hiddenAttentionRef(f(refA.delta[1]!), f(refA.B[1]!), f(refA.C[1]!), aLog, idsA.length, Di, N, 'mean');
    const alphaB = hiddenAttentionRef(f(refB.delta[1]!), f(refB.B[1]!), f(refB.C[1]!), aLog, idsB.length, Di, N, 'mean');
    // The older trace by its id, after a newer one: its own matrix, not the newer trace's.
    const olderAlpha = await send('hiddenAttention', { modelId: 'ids', traceId: a.traceId, layer: 1, unit: 'mean' });
    expect(olderAlpha.tokens).toBe(idsA.length);
    expect(relativeError(olderAlpha.alpha, alphaA), 'α of the older trace').toBeLessThanOrEqual(TOL);
    const newerAlpha = await send('hiddenAttention', { modelId: 'ids', traceId: b.traceId, layer: 1, unit: 'mean' });
    expect(relativeError(newerAlpha.alpha, alphaB), 'α of the newer trace').toBeLessThanOrEqual(TOL);
    // A knockout of the older trace reruns its ids: the baseline is the next token after idsA.
    const pA = softmax(refA.logits.subarray((idsA.length - 1) * V, idsA.length * V));
    const knocked = await send('knockout', { modelId: 'ids', traceId: a.traceId, token: idsA.length - 1, k: 3 });
    expect(relativeError(knocked.baseline.probs, knocked.baseline.ids.map((i) => pA[i]!))).toBeLessThanOrEqual(TOL);
    expect(knocked.baseline.ids[0]).toBe(topOf(refA.logits.subarray((idsA.length - 1) * V, idsA.length * V), 1).ids[0]);
    await expect(send('knockout', { modelId: 'ids', traceId: a.traceId, token: idsA.length })).rejects.toThrow(`There is no token ${idsA.length} in the prompt (it has ${idsA.length})`);

    // An unknown id; then TRACES_KEPT newer traces evict the older two, but keep the newest.
    await expect(send('hiddenAttention', { modelId: 'ids', traceId: 'no-such-trace', layer: 1, unit: 'mean' })).rejects.toThrow('Trace no-such-trace is no longer kept: trace again.');
    let newest = b;
    for (let i = 0; i < TRACES_KEPT; i++) newest = await send('trace', { modelId: 'ids', prompt: { ids: [i % V, (i + 1) % V] }, layers: [1] });
    for (const evicted of [a, b]) {
      await expect(send('hiddenAttention', { modelId: 'ids', traceId: evicted.traceId, layer: 1, unit: 'mean' })).rejects.toThrow(`Trace ${evicted.traceId} is no longer kept: trace again.`);
      await expect(send('knockout', { modelId: 'ids', traceId: evicted.traceId, token: 0 })).rejects.toThrow(`Trace ${evicted.traceId} is no longer kept: trace again.`);
    }
    expect((await send('hiddenAttention', { modelId: 'ids', traceId: newest.traceId, layer: 1, unit: 'mean' })).tokens).toBe(2);
    await expect(send('hiddenAttention', { modelId: 'ids', traceId: newest.traceId, layer: 0, unit: 'mean' })).rejects.toThrow(`Layer 0 is not in trace ${newest.traceId} (traced: 1)`);
    // Traces go with their model: loaded again, the old ids name nothing.
    await send('unloadModel', {});
    await send('loadModel', { modelId: 'ids', source: filesSource(scratch) });
    await expect(send('hiddenAttention', { modelId: 'ids', traceId: newest.traceId, layer: 1, unit: 'mean' })).rejects.toThrow(`Trace ${newest.traceId} is no longer kept: trace again.`);
    await send('unloadModel', {});
  });
});

describe('engine: analysis requests on Mamba-2 (golden fixture mamba2-groups)', () => {
  it('traces Δ per head, B and C per group, state norms per head; hidden attention per head; knockout', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const files = await folderModelFiles(golden);
    const inspection = await inspectModel(files);
    const table = await readAllTensorsF32(files, inspection);
    await files.close();
    const c = inspection.config;
    const { nHeads: H, headDim: P, nGroups: G, dState: N, vocabSize: V, nLayer: L } = c;
    expect(G).toBeGreaterThan(1);
    const g = await readGolden(golden);
    const ids = [...(await g.ints('input_ids'))].slice(0, 70);
    const T = ids.length;
    const engine = new Engine(gpu, () => undefined, 'node');
    const send = client(engine);
    const progress: number[] = [];
    const progressEngine = new Engine(gpu, (e) => e.kind === 'work-progress' && e.work === 'trace' && progress.push(e.done), 'node');
    const sendP = client(progressEngine);
    await send('loadModel', { modelId: 'm2', source: filesSource(golden) });
    const trace = await send('trace', { modelId: 'm2', prompt: { ids } });
    expect(trace).toMatchObject({ architecture: 'mamba2', deltaWidth: H, deltaUnit: 'head', nGroups: G, dState: N, aStates: 1, layers: Array.from({ length: L }, (_, l) => l) });

    // Golden tensors are for the full input; a causal model's first 70 rows are the same.
    const rows = async (name: string, width: number) => (await g.f32(name)).subarray(0, T * width);
    const logits = await rows('logits', V);
    expectTopNext(trace, logits, V, GOLDEN_TOL);
    for (let l = 0; l < L; l++) {
      const delta = await rows(`layers.${l}.delta`, H);
      const B = await rows(`layers.${l}.B`, G * N);
      const C = await rows(`layers.${l}.C`, G * N);
      const x = await rows(`layers.${l}.x`, H * P);
      expect(relativeError(trace.delta[l]!, delta), `Δ L${l}`).toBeLessThanOrEqual(GOLDEN_TOL);
      expect(relativeError(trace.B[l]!, B), `B L${l}`).toBeLessThanOrEqual(GOLDEN_TOL);
      expect(relativeError(trace.C[l]!, C), `C L${l}`).toBeLessThanOrEqual(GOLDEN_TOL);
      const aLog = table.get(`backbone.layers.${l}.mixer.A_log`)!;
      const A = Array.from(aLog, (v) => -Math.exp(v));
      expect(relativeError(trace.A[l]!, A), `A L${l}`).toBeLessThanOrEqual(1e-6);
      // ‖state‖ per head: float64 replay of transformers' Δ, x and B.
      const state = new Float64Array(H * P * N);
      const perHead = new Float64Array(T * H);
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < H; h++) {
          const grp = Math.floor((h * G) / H);
          const dt = delta[t * H + h]!;
          let sq = 0;
          for (let p = 0; p < P; p++) {
            for (let n = 0; n < N; n++) {
              const i = (h * P + p) * N + n;
              state[i] = Math.exp(dt * A[h]!) * state[i]! + dt * x[t * H * P + h * P + p]! * B[t * G * N + grp * N + n]!;
              sq += state[i]! ** 2;
            }
          }
          perHead[t * H + h] = Math.sqrt(sq);
        }
      }
      expect(relativeError(trace.stateNormByHead![l]!, perHead), `‖state‖ per head L${l}`).toBeLessThanOrEqual(GOLDEN_TOL);
      const total = Array.from({ length: T }, (_, t) => Math.hypot(...perHead.subarray(t * H, (t + 1) * H)));
      expect(relativeError(trace.stateNorm[l]!, total), `‖state‖ L${l}`).toBeLessThanOrEqual(GOLDEN_TOL);

      // Hidden attention per head, and the mean over heads, from transformers' tensors.
      const S = new Float64Array(T * H);
      for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) S[t * H + h] = (t > 0 ? S[(t - 1) * H + h]! : 0) + delta[t * H + h]!;
      const alphaOf = (h: number) => {
        const grp = Math.floor((h * G) / H);
        const out = new Float64Array(T * T);
        for (let i = 0; i < T; i++) {
          for (let j = 0; j <= i; j++) {
            let cb = 0;
            for (let n = 0; n < N; n++) cb += C[i * G * N + grp * N + n]! * B[j * G * N + grp * N + n]!;
            out[i * T + j] = cb * Math.exp(A[h]! * (S[i * H + h]! - S[j * H + h]!)) * delta[j * H + h]!;
          }
        }
        return out;
      };
      const head = H - 1;
      const one = await send('hiddenAttention', { modelId: 'm2', traceId: trace.traceId, layer: l, unit: head });
      expect(relativeError(one.alpha, alphaOf(head)), `α L${l} head ${head}`).toBeLessThanOrEqual(GOLDEN_TOL);
      const mean = new Float64Array(T * T);
      for (let h = 0; h < H; h++) alphaOf(h).forEach((v, i) => (mean[i] = mean[i]! + v / H));
      const all = await send('hiddenAttention', { modelId: 'm2', traceId: trace.traceId, layer: l, unit: 'mean' });
      expect(relativeError(all.alpha, mean), `α L${l} mean over heads`).toBeLessThanOrEqual(GOLDEN_TOL);
      const row = await send('hiddenAttention', { modelId: 'm2', traceId: trace.traceId, layer: l, unit: 'mean', row: T - 1 });
      expect(relativeError(row.alpha, mean.subarray((T - 1) * T)), `α row L${l}`).toBeLessThanOrEqual(GOLDEN_TOL);
    }

    // Knockout runs for Mamba-2: the baseline is transformers' last-position distribution, and
    // zeroing Δ of a token in every layer changes the prediction.
    const knocked = await send('knockout', { modelId: 'm2', traceId: trace.traceId, token: T - 2, k: 5 });
    const lastRow = topOf(logits.subarray((T - 1) * V, T * V), 5);
    expect(relativeError(knocked.baseline.probs, lastRow.probs)).toBeLessThanOrEqual(GOLDEN_TOL);
    expect(knocked.kl).toBeGreaterThan(0);
    expect(knocked.totalVariation).toBeGreaterThan(0);

    // Progress: one event per chunk of the model's maxTokens, ending at T.
    await sendP('loadModel', { modelId: 'm2', source: filesSource(golden) });
    await sendP('trace', { modelId: 'm2', prompt: { ids }, layers: [0] });
    expect(progress.at(-1)).toBe(T);
    await send('unloadModel', {});
    await sendP('unloadModel', {});
  });
});

describe('engine: a live trace while generating', () => {
  it('streams rows that add up to the trace of the whole sequence, equal to the reference', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const { config, table } = await randomModel();
    const { dInner: Di, dState: N, nLayer: L } = config;
    const events: TraceRows[] = [];
    const engine = new Engine(gpu, (e) => e.kind === 'trace-rows' && events.push(e.rows), 'node');
    const send = client(engine);
    await send('loadModel', { modelId: 'live', source: filesSource(scratch) });
    const prompt = [3, 1, 4, 1, 5, 9, 2];
    const generated = await send('generate', {
      modelId: 'live',
      prompt: { ids: prompt },
      maxTokens: 12,
      temperature: 0,
      topK: 0,
      topP: 1,
      repetitionPenalty: 1,
      seed: 0,
      stopStrings: [],
      trace: true,
    });
    // Every fed token is traced: the prompt, then each generated token but the last (sampled, never fed).
    const fed = [...prompt, ...generated.ids.slice(0, -1)];
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events[0]!.from).toBe(0);
    expect(generated.traceId).toEqual(expect.any(String));
    expect(events.every((rows) => rows.traceId === generated.traceId)).toBe(true);
    let merged: TraceResult | null = null;
    for (const rows of events) merged = appendTraceRows(merged, rows);
    expect(merged!.ids).toEqual(fed);
    expect(merged!.layers).toEqual(Array.from({ length: L }, (_, l) => l));
    const ref = mamba1ForwardRef(config, (n) => table.get(n), fed);
    const T = fed.length;
    for (let l = 0; l < L; l++) {
      expect(relativeError(merged!.delta[l]!, ref.delta[l]!), `Δ L${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(merged!.B[l]!, ref.B[l]!), `B L${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(merged!.C[l]!, ref.C[l]!), `C L${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(merged!.stateNorm[l]!, ref.stateNorm[l]!), `‖state‖ L${l}`).toBeLessThanOrEqual(TOL);
      const norms = Array.from({ length: T }, (_, t) => Math.hypot(...ref.delta[l]!.subarray(t * Di, (t + 1) * Di)));
      expect(relativeError(merged!.deltaNorm[l]!, norms), `‖Δ‖ L${l}`).toBeLessThanOrEqual(TOL);
    }
    // Top next tokens where the generation had the logits: after the prompt's last token and
    // after every generated token fed; none for the earlier prompt tokens.
    const V = RAW.vocab_size;
    const { k, ids: topIds, probs: topProbs } = merged!.topNext;
    expect(k).toBe(5);
    for (let t = 0; t < T; t++) {
      const row = [...topIds.subarray(t * k, (t + 1) * k)];
      if (t < prompt.length - 1) {
        expect(row, `no prediction after prompt token ${t}`).toEqual([-1, -1, -1, -1, -1]);
        expect([...topProbs.subarray(t * k, (t + 1) * k)].every(Number.isNaN)).toBe(true);
        continue;
      }
      const p = softmax(ref.logits.subarray(t * V, (t + 1) * V));
      const order = [...p.keys()].sort((a, b) => p[b]! - p[a]!);
      expect(relativeError(topProbs.subarray(t * k, (t + 1) * k), order.slice(0, k).map((i) => p[i]!)), `top probs after token ${t}`).toBeLessThanOrEqual(TOL);
      expect(row[0], `most likely after token ${t}`).toBe(order[0]);
      // Greedy: the next generated token is the top one.
      if (t + 1 < T) expect(fed[t + 1]).toBe(row[0]);
    }
    // The finished live trace is kept under the generation's traceId: hidden attention runs on it.
    expect(merged!.traceId).toBe(generated.traceId);
    const f = (a: Float64Array) => Float32Array.from(a);
    const alpha = await send('hiddenAttention', { modelId: 'live', traceId: generated.traceId!, layer: 1, unit: 'mean' });
    const expected = hiddenAttentionRef(f(ref.delta[1]!), f(ref.B[1]!), f(ref.C[1]!), table.get('backbone.layers.1.mixer.A_log')!, T, Di, N, 'mean');
    expect(relativeError(alpha.alpha, expected)).toBeLessThanOrEqual(TOL);
    // A live trace too large for the GPU is refused up front, with what to do.
    await expect(
      send('generate', { modelId: 'live', prompt: { ids: prompt }, maxTokens: 100_000_000, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, stopStrings: [], trace: true }),
    ).rejects.toThrow(/lower Max tokens or turn the live trace off/);
    // Ids outside the vocabulary are a clear error.
    await expect(send('trace', { modelId: 'live', prompt: { ids: [1, 99] } })).rejects.toThrow(`token id 99 at position 1 is outside the vocabulary 0..${RAW.vocab_size - 1}`);
    await send('unloadModel', {});
  });
});
