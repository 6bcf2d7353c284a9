/**
 * Layers own their mixer: a model mixing Mamba-1 blocks with a mixer that is no state space model
 * (test/support/attention-mixer.ts: causal attention with a KV cache whose length lives on the
 * GPU) runs prefill in chunks, steps, fork and reset through the same Session code as any model,
 * and gives the float64 reference's logits (app/model/reference.ts with each layer's mixer
 * reference). The trace recorder traces only the layers whose mixer has a selection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIXERS } from '../../app/arch/build';
import { mamba1 } from '../../app/arch/mamba1/index';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import type { MixerFactory } from '../../app/model/mixer';
import { LanguageModel } from '../../app/model/model';
import { forwardRef } from '../../app/model/reference';
import { Session } from '../../app/model/session';
import { TraceRecorder } from '../../app/analysis/recorder';
import { AttentionTestMixer, attentionRef } from '../support/attention-mixer';
import { loadTestModel, testSeed, useTestGpu } from '../support/gpu';
import { writeRandomMamba1 } from '../support/random-model';

const TOL = 1e-4;
const scratch = mkdtempSync(path.join(tmpdir(), 'mixed-model-'));
let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const ATTENTION_LAYER = 1;
const attention: MixerFactory = (build) => new AttentionTestMixer(build, 64);

describe('a model mixing Mamba-1 blocks with an attention mixer', () => {
  it('prefill in chunks, steps, fork and reset give the reference logits; only SSM layers are traced', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const seed = testSeed();
    writeRandomMamba1(scratch, { model_type: 'mamba', vocab_size: 23, hidden_size: 16, num_hidden_layers: 3, state_size: 4, time_step_rank: 2 }, seed);
    const { inspection, weights, table } = await loadTestModel(ctx, scratch);
    const config = inspection.config;
    const V = config.vocabSize;
    const model = new LanguageModel(ctx, inspection, weights, { maxTokens: 5, name: 'Mixed', mixer: (l) => (l === ATTENTION_LAYER ? attention : MIXERS.mamba) });
    const reference = (ids: number[]) =>
      forwardRef(config, (n) => table.get(n), ids, (l) => (l === ATTENTION_LAYER ? attentionRef : mamba1.reference)).logits.subarray((ids.length - 1) * V, ids.length * V);
    const ids = Array.from({ length: 17 }, (_, t) => (t * 7 + (seed % 5)) % V);
    try {
      expect(model.traceableLayers).toEqual([0, 2]);
      const session = new Session(ctx, model);
      session.prefill(ids.slice(0, 12)); // chunks of 5, 5 and 2 through the cached plans
      expect(relativeError(await session.readLogits(), reference(ids.slice(0, 12))), `prefill (seed ${seed})`).toBeLessThanOrEqual(TOL);
      const forked = session.fork();
      for (const id of ids.slice(12)) session.step(id);
      expect(relativeError(await session.readLogits(), reference(ids)), `steps after prefill (seed ${seed})`).toBeLessThanOrEqual(TOL);
      // The fork holds the KV cache and SSM states as they were after the prefill.
      forked.step(3);
      expect(relativeError(await forked.readLogits(), reference([...ids.slice(0, 12), 3])), 'fork').toBeLessThanOrEqual(TOL);
      // Reset clears every mixer's state, the cache length included.
      session.reset();
      session.prefill(ids.slice(0, 4));
      expect(relativeError(await session.readLogits(), reference(ids.slice(0, 4))), 'after reset').toBeLessThanOrEqual(TOL);
      forked.destroy();
      session.destroy();

      const recorder = new TraceRecorder(ctx, model, { capacity: 8 });
      expect(recorder.layers).toEqual([0, 2]);
      expect(() => new TraceRecorder(ctx!, model, { layers: [ATTENTION_LAYER] })).toThrow(/layer 1's mixer has no Δ, B or C to trace/);
      const traced = new Session(ctx, model);
      traced.trace(recorder);
      traced.prefill(ids.slice(0, 6));
      traced.step(ids[6] as number);
      const window = await recorder.read();
      expect(window.delta).toHaveLength(2);
      expect(window.delta[0]).toHaveLength(7 * config.dInner);
      expect(relativeError(await traced.readLogits(), reference(ids.slice(0, 7))), 'traced').toBeLessThanOrEqual(TOL);
      traced.destroy();
      recorder.destroy();
    } finally {
      model.destroy();
      weights.destroy();
    }
  });
});
