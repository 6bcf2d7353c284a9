/**
 * The whole Mamba-1 forward on the GPU against the float64 CPU reference (app/arch/mamba1/reference.ts)
 * on fresh random models of odd sizes: logits at every position, the residual stream after every
 * block, Δ, B and C; chunked prefill; prefill(t) then a step equals prefill(t+1); fork and reset.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInspection } from '../../app/arch/inspect';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import type { LoadedWeights } from '../../app/model/loader';
import { buildModel } from '../../app/arch/build';
import { stateBuffers } from '../../app/model/mixer';
import { mamba1ForwardRef, type Mamba1RefOutput } from '../../app/arch/mamba1/reference';
import { Session } from '../../app/model/session';
import { getTestGpu, loadTestModel, testSeed } from '../support/gpu';
import { mulberry32, writeRandomMamba1 } from '../support/random-model';

const TOL = 1e-4;
let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
const scratch = mkdtempSync(path.join(tmpdir(), 'mamba1-'));
const loaded: { inspection: ModelInspection; weights: LoadedWeights; table: Map<string, Float32Array> }[] = [];

// Odd sizes: vocab 53, d_model 24 (Di 48), d_state 6, dt_rank 5, conv 3, untied with biases; and a tied default-ish one.
const CONFIGS = [
  { model_type: 'mamba', vocab_size: 53, hidden_size: 24, num_hidden_layers: 3, state_size: 6, time_step_rank: 5, conv_kernel: 3, use_bias: true, tie_word_embeddings: false },
  { model_type: 'mamba', vocab_size: 40, hidden_size: 16, num_hidden_layers: 2, state_size: 16, tie_word_embeddings: true, use_conv_bias: false },
];

beforeAll(async () => {
  const gpu = await getTestGpu();
  if (!gpu.ctx) {
    skipReason = gpu.reason;
    return;
  }
  ctx = gpu.ctx;
  seed = testSeed();
  for (const [i, raw] of CONFIGS.entries()) {
    const dir = path.join(scratch, `m${i}`);
    writeRandomMamba1(dir, raw, seed + i);
    loaded.push(await loadTestModel(ctx, dir));
  }
});
afterAll(() => {
  for (const l of loaded) l.weights.destroy();
  ctx?.device.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

const randomIds = (n: number, vocab: number, s: number) => {
  const r = mulberry32(s);
  return Array.from({ length: n }, () => Math.floor(r() * vocab));
};
const reference = (m: (typeof loaded)[number], ids: number[]): Mamba1RefOutput =>
  mamba1ForwardRef(m.inspection.config, (n) => m.table.get(n), ids);

/** Rows [from, to) of a [T, width] float64 matrix. */
const rows = (a: Float64Array, width: number, from: number, to: number) => a.subarray(from * width, to * width);

describe('Mamba-1 on the GPU vs the float64 reference', () => {
  for (const [which, maxTokens] of [[0, 64], [1, 16]] as const) {
    it(`model ${which}: logits, hidden states, Δ, B and C over 41 tokens (chunks of ${maxTokens})`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const m = loaded[which]!;
      const { dModel: D, dInner: Di, dState: N, dtRank: R, vocabSize: V, nLayer: L } = m.inspection.config;
      const T = 41;
      const ids = randomIds(T, V, seed + 100 + which);
      const model = buildModel(ctx, m.inspection, m.weights, maxTokens);
      const session = new Session(ctx, model);
      const f = (label: string, n: number) => storageBuffer(ctx!.device, `Test.${label}`, n * 4);
      const logits = f('logits', T * V);
      const taps = {
        delta: Array.from({ length: L }, (_, l) => f(`delta${l}`, T * Di)),
        dbc: Array.from({ length: L }, (_, l) => f(`dbc${l}`, T * (R + 2 * N))),
        hidden: Array.from({ length: L }, (_, l) => f(`hidden${l}`, T * D)),
      };
      for (const b of [logits, ...taps.delta, ...taps.dbc, ...taps.hidden]) ctx.device.queue.writeBuffer(b, 0, new Float32Array(b.size / 4).fill(NaN));
      session.prefill(ids, { allLogits: logits, taps });
      const ref = reference(m, ids);
      const gpuLogits = await readF32(ctx.device, logits, T * V);
      expect(gpuLogits.every(Number.isFinite)).toBe(true);
      expect(relativeError(gpuLogits, ref.logits)).toBeLessThanOrEqual(TOL);
      for (let l = 0; l < L; l++) {
        expect(relativeError(await readF32(ctx.device, taps.hidden[l]!, T * D), ref.hidden[l]!), `hidden ${l}`).toBeLessThanOrEqual(TOL);
        expect(relativeError(await readF32(ctx.device, taps.delta[l]!, T * Di), ref.delta[l]!), `delta ${l}`).toBeLessThanOrEqual(TOL);
        const dbc = await readF32(ctx.device, taps.dbc[l]!, T * (R + 2 * N));
        const B = Float32Array.from({ length: T * N }, (_, i) => dbc[Math.floor(i / N) * (R + 2 * N) + R + (i % N)]!);
        const C = Float32Array.from({ length: T * N }, (_, i) => dbc[Math.floor(i / N) * (R + 2 * N) + R + N + (i % N)]!);
        expect(relativeError(B, ref.B[l]!), `B ${l}`).toBeLessThanOrEqual(TOL);
        expect(relativeError(C, ref.C[l]!), `C ${l}`).toBeLessThanOrEqual(TOL);
      }
      // The last row also lands in session.logits when no allLogits buffer is given: checked below.
      for (const b of [logits, ...taps.delta, ...taps.dbc, ...taps.hidden]) b.destroy();
      session.destroy();
      model.destroy();
    });
  }

  it('prefill(t) then steps equals prefill of the whole sequence; fork continues; reset starts over', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const m = loaded[0]!;
    const V = m.inspection.config.vocabSize;
    const ids = randomIds(23, V, seed + 7);
    const model = buildModel(ctx, m.inspection, m.weights, 8);
    const fresh = model.newState();
    expect(stateBuffers(fresh).reduce((sum, b) => sum + b.size, 0)).toBe(model.stateBytes);
    stateBuffers(fresh).forEach((b) => b.destroy());
    const a = new Session(ctx, model);
    a.prefill(ids.slice(0, 17));
    const forked = a.fork();
    for (const id of ids.slice(17)) a.step(id);
    const ref = reference(m, ids);
    const last = (r: Mamba1RefOutput, t: number) => rows(r.logits, V, t - 1, t);
    expect(relativeError(await a.readLogits(), last(ref, 23))).toBeLessThanOrEqual(TOL);
    // The fork kept the state at 17 tokens: stepping it the same way reaches the same logits.
    for (const id of ids.slice(17, 20)) forked.step(id);
    expect(relativeError(await forked.readLogits(), last(ref, 20))).toBeLessThanOrEqual(TOL);
    expect(forked.tokens).toEqual(ids.slice(0, 20));
    a.reset();
    a.prefill(ids.slice(0, 5));
    expect(relativeError(await a.readLogits(), last(reference(m, ids.slice(0, 5)), 5))).toBeLessThanOrEqual(TOL);
    a.destroy();
    forked.destroy();
    model.destroy();
  });

  it('rejects token ids outside the vocabulary before touching the GPU', (test) => {
    if (!ctx) return test.skip(skipReason);
    const m = loaded[1]!;
    const model = buildModel(ctx, m.inspection, m.weights, 8);
    const s = new Session(ctx, model);
    expect(() => s.prefill([1, 2, 40])).toThrow('token id 40 at position 2 is outside the vocabulary 0..39');
    expect(s.tokens).toEqual([]);
    s.destroy();
    model.destroy();
  });
});
