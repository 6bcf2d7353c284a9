/**
 * The acceptance gate for Mamba-1: every golden case made by transformers (test/fixtures/golden,
 * scripts/golden/make_golden.py) — logits at all positions, the hidden state after every block,
 * Δ, B and C per layer within relative error 1e-3, and the greedy continuation identical token for
 * token. Also the float64 CPU reference against the same fixtures (an independent check of it).
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { generate } from '../../app/model/generate';
import { buildModel } from '../../app/arch/build';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { cachedStepErrors, openGoldenModel, readGolden } from '../support/golden';
import { useTestGpu } from '../support/gpu';

const TOL = 1e-3;
const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden');
const cases = existsSync(goldenDir)
  ? readdirSync(goldenDir).filter((n) => n.startsWith('mamba1') && existsSync(path.join(goldenDir, n, 'golden.safetensors'))).sort()
  : [];

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

describe('Mamba-1 against transformers (golden fixtures)', () => {
  it('has the Mamba-1 golden cases', () => {
    expect(cases).toEqual(['mamba1-bias-untied', 'mamba1-odd', 'mamba1-tied']);
  });

  it.each(cases)('%s: the float64 CPU reference matches transformers', async (name) => {
    const dir = path.join(goldenDir, name);
    const files = await folderModelFiles(dir);
    const inspection = await inspectModel(files);
    const table = await readAllTensorsF32(files, inspection);
    await files.close();
    const golden = await readGolden(dir);
    const ids = await golden.ints('input_ids');
    const ref = mamba1ForwardRef(inspection.config, (n) => table.get(n), ids);
    expect(relativeError(await golden.f32('logits'), ref.logits)).toBeLessThanOrEqual(TOL);
    for (let l = 0; l < inspection.config.nLayer; l++) {
      expect(relativeError(await golden.f32(`hidden_states.${l}`), ref.hidden[l]!), `hidden ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(await golden.f32(`layers.${l}.delta`), ref.delta[l]!), `delta ${l}`).toBeLessThanOrEqual(TOL);
    }
  });

  // The channel prefill scan (a GPU's default; SwiftShader's is the serial scan above) in a whole
  // model: the prompt's logits and every layer's Δ against transformers, as the serial scan's are above.
  it.for(cases)("%s: GPU logits and Δ within 1e-3 with the channel prefill scan", async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights, golden, ids } = await openGoldenModel(ctx, path.join(goldenDir, name));
    const { dInner: Di, vocabSize: V, nLayer: L } = inspection.config;
    const T = ids.length;
    ctx.tuning = { prefillScan: 'channel' };
    try {
      const model = buildModel(ctx, inspection, weights, 512);
      const session = new Session(ctx, model);
      const logits = storageBuffer(ctx.device, 'Golden.logits', T * V * 4);
      const delta = Array.from({ length: L }, (_, l) => storageBuffer(ctx!.device, `Golden.delta${l}`, T * Di * 4));
      session.prefill(ids, { allLogits: logits, taps: { delta } });
      expect(relativeError(await readF32(ctx.device, logits, T * V), await golden.f32('logits')), 'logits').toBeLessThanOrEqual(TOL);
      for (let l = 0; l < L; l++) {
        expect(relativeError(await readF32(ctx.device, delta[l]!, T * Di), await golden.f32(`layers.${l}.delta`)), `delta ${l}`).toBeLessThanOrEqual(TOL);
      }
      for (const b of [logits, ...delta]) b.destroy();
      session.destroy();
      model.destroy();
    } finally {
      ctx.tuning = undefined;
      weights.destroy();
    }
  });

  // The one-token decode paths against transformers' cached steps (generated_logits): fused with x_proj
  // a dispatch of its own (4 a layer), fused with x_proj folded into in_proj (3), and the general
  // path. mamba1-bias-untied's in_proj and out_proj biases keep it on the general path throughout.
  it.for(cases)("%s: the fused decode, with x_proj separate or folded into in_proj, and the general path give transformers' cached-step logits", async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights, golden } = await openGoldenModel(ctx, path.join(goldenDir, name));
    const L = inspection.config.nLayer;
    const model = buildModel(ctx, inspection, weights, 64);
    const fuses = name !== 'mamba1-bias-untied';
    for (const [mode, options, tuning, perLayer] of [
      ['fused', {}, undefined, 4],
      ['folded', {}, { decodeXProj: 'folded' }, 3],
      ['general', { unfused: true }, undefined, null],
    ] as const) {
      const run = await cachedStepErrors(ctx, model, golden, options, tuning);
      if (fuses && perLayer !== null) expect(run.dispatches, `${mode}: embedding, ${perLayer} a layer, norm_f + LM head`).toBe(2 + perLayer * L);
      run.errors.forEach((e, i) => expect(e, `${mode}: ${i === 0 ? "prefill's last row" : `step ${i - 1}`}`).toBeLessThanOrEqual(TOL));
    }
    model.destroy();
    weights.destroy();
  });

  it.for(cases)('%s: GPU logits, hidden states, Δ, B, C within 1e-3; greedy continuation identical', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights, golden, ids } = await openGoldenModel(ctx, path.join(goldenDir, name));
    const { dModel: D, dInner: Di, dState: N, dtRank: R, vocabSize: V, nLayer: L } = inspection.config;
    const T = ids.length;
    const model = buildModel(ctx, inspection, weights, 512);
    const session = new Session(ctx, model);
    const f = (label: string, n: number) => storageBuffer(ctx!.device, `Golden.${label}`, n * 4);
    const logits = f('logits', T * V);
    const taps = {
      delta: Array.from({ length: L }, (_, l) => f(`delta${l}`, T * Di)),
      dbc: Array.from({ length: L }, (_, l) => f(`dbc${l}`, T * (R + 2 * N))),
      hidden: Array.from({ length: L }, (_, l) => f(`hidden${l}`, T * D)),
      x: Array.from({ length: L }, (_, l) => f(`x${l}`, T * Di)),
      y: Array.from({ length: L }, (_, l) => f(`y${l}`, T * Di)),
    };
    session.prefill(ids, { allLogits: logits, taps });
    const logitsError = relativeError(await readF32(ctx.device, logits, T * V), await golden.f32('logits'));
    console.info(`[golden] ${name}: GPU vs transformers, logits over ${T} positions: relative error ${logitsError.toExponential(2)}`);
    expect(logitsError, 'logits').toBeLessThanOrEqual(TOL);
    expect(relativeError(await readF32(ctx.device, model.normedBuffer, T * D), await golden.f32(`hidden_states.${L}`)), 'final norm').toBeLessThanOrEqual(TOL);
    for (let l = 0; l < L; l++) {
      expect(relativeError(await readF32(ctx.device, taps.hidden[l]!, T * D), await golden.f32(`hidden_states.${l}`)), `hidden ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(await readF32(ctx.device, taps.delta[l]!, T * Di), await golden.f32(`layers.${l}.delta`)), `delta ${l}`).toBeLessThanOrEqual(TOL);
      const dbc = await readF32(ctx.device, taps.dbc[l]!, T * (R + 2 * N));
      const col = (offset: number) => Float32Array.from({ length: T * N }, (_, i) => dbc[Math.floor(i / N) * (R + 2 * N) + offset + (i % N)]!);
      expect(relativeError(col(R), await golden.f32(`layers.${l}.B`)), `B ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(col(R + N), await golden.f32(`layers.${l}.C`)), `C ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(await readF32(ctx.device, taps.x[l]!, T * Di), await golden.f32(`layers.${l}.x`)), `x ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(await readF32(ctx.device, taps.y[l]!, T * Di), await golden.f32(`layers.${l}.out_proj_in`)), `y ${l}`).toBeLessThanOrEqual(TOL);
    }
    for (const b of [logits, ...taps.delta, ...taps.dbc, ...taps.hidden, ...taps.x, ...taps.y]) b.destroy();
    session.destroy();

    const expected = await golden.ints('generated_ids');
    const prompt = await golden.ints('generate.prompt_ids');
    const fresh = new Session(ctx, model);
    const result = await generate(ctx, fresh, prompt, { maxTokens: expected.length, temperature: 0 });
    expect(result.ids).toEqual(expected);
    fresh.destroy();
    model.destroy();
    weights.destroy();
  });
});
