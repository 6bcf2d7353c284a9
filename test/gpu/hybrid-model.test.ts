/**
 * The attention mixer of app/arch/hybrid/ inside a whole model (a Mamba-1 model whose layer 1 is
 * run as grouped-query attention over the same tensors: in_proj [2·Di, D] as fused q | k | v,
 * out_proj [D, Di]), through the Session: prefill in chunks, steps, fork and reset give the
 * float64 reference's logits (app/model/reference.ts with attentionRef at layer 1) — the steps
 * through the model's fused decode, the attention block's encodeDecode in it — and a
 * knockout of a token (model.ts → MixerContext.knockRow) masks its key in the attention layer
 * while zeroing its Δ in the Mamba layers, as the reference does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIXERS } from '../../app/arch/build';
import { attentionMixer } from '../../app/arch/hybrid/attention';
import type { AttentionConfig } from '../../app/arch/hybrid/config';
import { attentionRef } from '../../app/arch/hybrid/reference';
import { mamba1 } from '../../app/arch/mamba1/index';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { generate } from '../../app/model/generate';
import type { MixerFactory } from '../../app/model/mixer';
import { LanguageModel } from '../../app/model/model';
import { forwardRef } from '../../app/model/reference';
import { Session } from '../../app/model/session';
import { LongTraceSink } from '../../app/analysis/long-trace';
import { tracePrompt } from '../../app/analysis/trace';
import { loadTestModel, useTestGpu } from '../support/gpu';
import { writeRandomMamba1 } from '../support/random-model';

const TOL = 1e-4;
const scratch = mkdtempSync(path.join(tmpdir(), 'hybrid-model-'));
let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const ATTENTION_LAYER = 1;
// D = 16, Di = 32: q 2 heads × 16, k and v 1 kv head × 16 = in_proj's 64 rows; out_proj [16, 32].
const cfg: AttentionConfig = { nHeads: 2, nKvHeads: 1, headDim: 16, rotaryDim: 8, ropeTheta: 10000, ropeInterleaved: false, scale: 0.25, names: { qkv: 'in_proj.weight', out: 'out_proj.weight' }, dConv: 0, capacity: 32 };
const attention: MixerFactory = (build) => attentionMixer(build, cfg);

describe('a model with an attention layer of app/arch/hybrid', () => {
  it('chunks, steps, fork, reset and a knockout through the Session give the reference logits', async (test) => {
    if (!ctx) return test.skip(skipReason);
    writeRandomMamba1(scratch, { model_type: 'mamba', vocab_size: 23, hidden_size: 16, num_hidden_layers: 3, state_size: 4, time_step_rank: 2 }, seed);
    const { inspection, weights, table } = await loadTestModel(ctx, scratch);
    const config = inspection.config;
    const V = config.vocabSize;
    const model = new LanguageModel(ctx, inspection, weights, { maxTokens: 6, name: 'Hybrid', mixer: (l) => (l === ATTENTION_LAYER ? attention : MIXERS.mamba) });
    const reference = (ids: number[], knockout?: { token: number; layers: readonly number[] | null }) =>
      forwardRef(config, (n) => table.get(n), ids, (l) => (l === ATTENTION_LAYER ? attentionRef(cfg) : mamba1.reference), 'backbone.', knockout).logits.subarray((ids.length - 1) * V, ids.length * V);
    const ids = Array.from({ length: 17 }, (_, t) => (t * 7 + (seed % 5)) % V);
    const sessions: Session[] = [];
    try {
      // Every mixer fuses its decode, so the model's one-token plan is the fused one (the attention block's norm in it).
      const probe = model.newState();
      const logits = ctx.device.createBuffer({ size: V * 4, usage: GPUBufferUsage.STORAGE });
      const plan = model.plan(1, probe, logits);
      expect(plan.steps.some((step) => step.kind === 'dispatch' && step.dispatch.label === `Attention.L${ATTENTION_LAYER}.norm`)).toBe(true);
      plan.destroy();
      [...probe.layers.flat(), logits].forEach((b) => b.destroy());
      const session = new Session(ctx, model);
      sessions.push(session);
      session.prefill(ids.slice(0, 13)); // chunks of 6, 6 and 1
      expect(relativeError(await session.readLogits(), reference(ids.slice(0, 13))), `prefill (seed ${seed})`).toBeLessThanOrEqual(TOL);
      const forked = session.fork();
      sessions.push(forked);
      for (const id of ids.slice(13)) session.step(id);
      expect(relativeError(await session.readLogits(), reference(ids)), `steps (seed ${seed})`).toBeLessThanOrEqual(TOL);
      forked.step(3);
      expect(relativeError(await forked.readLogits(), reference([...ids.slice(0, 13), 3])), 'fork').toBeLessThanOrEqual(TOL);
      session.reset();
      session.prefill(ids.slice(0, 4));
      expect(relativeError(await session.readLogits(), reference(ids.slice(0, 4))), 'after reset').toBeLessThanOrEqual(TOL);
      // Token 7 knocked out in every layer (chunk 2, row 1), then steps: the key stays masked.
      for (const layers of [null, [ATTENTION_LAYER]]) {
        const knocked = new Session(ctx, model);
        sessions.push(knocked);
        knocked.prefill(ids.slice(0, 14), { knockout: { token: 7, layers } });
        for (const id of ids.slice(14)) knocked.step(id);
        const expected = reference(ids, { token: 7, layers });
        expect(relativeError(await knocked.readLogits(), expected), `knockout in ${layers ? 'the attention layer' : 'every layer'} (seed ${seed})`).toBeLessThanOrEqual(TOL);
        expect(relativeError(expected, reference(ids)), 'the knockout changes the logits').toBeGreaterThan(1e-3);
      }
      // The KV cache holds 32 tokens: the session refuses more, and generation stops when it is full.
      expect(model.contextCapacity).toBe(32);
      const full = new Session(ctx, model);
      sessions.push(full);
      full.prefill(ids.slice(0, 17));
      expect(() => full.prefill(ids)).toThrow(/keep 32 tokens in their KV cache; 17 are in and 17 more would not fit/);
      expect(full.position, 'a refused prefill consumes nothing').toBe(17);
      const result = await generate(ctx, full, ids.slice(0, 13), { maxTokens: 10, temperature: 0 });
      // 30 tokens in after the prompt: tokens 1–3 need steps 31 and 32, no more.
      expect(result.stopReason).toBe('context-full');
      expect(result.ids.length).toBe(3);
      expect(full.position).toBe(32);
      expect(() => full.step(1)).toThrow(/KV cache/);
    } finally {
      sessions.forEach((s) => s.destroy());
      model.destroy();
      weights.destroy();
    }
  });

  it("a long trace's steps summarised by the fused decode skip the attention layer and equal the prompt trace's summaries", async (test) => {
    if (!ctx) return test.skip(skipReason);
    writeRandomMamba1(scratch, { model_type: 'mamba', vocab_size: 23, hidden_size: 16, num_hidden_layers: 3, state_size: 4, time_step_rank: 2 }, seed + 1);
    const { inspection, weights } = await loadTestModel(ctx, scratch);
    const model = new LanguageModel(ctx, inspection, weights, { maxTokens: 6, name: 'Hybrid', mixer: (l) => (l === ATTENTION_LAYER ? attention : MIXERS.mamba) });
    const target = { model, weights, tokenizer: null };
    const ids = Array.from({ length: 20 }, (_, t) => (t * 5 + (seed % 7)) % inspection.config.vocabSize);
    const session = new Session(ctx, model);
    const sink = new LongTraceSink(ctx, target, session, { capacity: 4, every: 12, topNext: 2, stepSummaries: true });
    try {
      expect(model.traceableLayers).toEqual([0, 2]);
      expect(sink.stepSummaries).toBe(true);
      session.trace(sink);
      session.prefill(ids.slice(0, 9)); // chunks of 6 and 3, then 11 steps
      for (const id of ids.slice(9)) session.step(id);
      sink.flush();
      const rows = await sink.summary.read(0, ids.length);
      const full = (await tracePrompt(ctx, target, ids, { traceId: 'full', modelId: 'm' })).result;
      expect(full.layers).toEqual([0, 2]);
      for (const [i, layer] of full.layers.entries()) {
        expect(relativeError(rows.deltaNorm[i]!, full.deltaNorm[i]!), `‖Δ‖ L${layer}`).toBeLessThanOrEqual(TOL);
        expect(relativeError(rows.writeGate[i]!, full.writeGate[i]!), `gate L${layer}`).toBeLessThanOrEqual(TOL);
        expect(relativeError(rows.stateNorm![i]!, full.stateNorm[i]!), `‖state‖ L${layer}`).toBeLessThanOrEqual(TOL);
      }
    } finally {
      session.trace(null);
      sink.destroyTracing();
      sink.checkpoints.destroy();
      session.destroy();
      model.destroy();
      weights.destroy();
    }
  });
});
