/**
 * The plain prefill's chunk apart from the analyses' (LanguageModel.maxTokens and analysisTokens,
 * Session's prefillChunk): a generating session prefills in the model's larger chunk, every other
 * session, a traced prefill and a knockout in the analyses' chunk, each against the float64
 * reference; every analysis (traces, long traces and their windows, knockout, patching, attribution, a
 * live trace's trail) runs chunks of at most the analyses' chunk and makes the buffers it makes on
 * a model of that chunk alone; allocateModel builds for the analyses' chunk where the larger does not fit (an
 * activation over the device's buffer limit, or out of memory).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { allocateModel, buildModel } from '../../app/arch/build';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { TraceRecorder } from '../../app/analysis/recorder';
import { tokenAttribution } from '../../app/analysis/attribution';
import { knockout } from '../../app/analysis/knockout';
import { traceLongPrompt } from '../../app/analysis/long-trace';
import { activationPatching } from '../../app/analysis/patching';
import { startLiveTrace, tracePrompt } from '../../app/analysis/trace';
import { generate } from '../../app/model/generate';
import { ActivationLimitError, type LanguageModel } from '../../app/model/model';
import { Session } from '../../app/model/session';
import { LONG_PREFILL_CHUNK, PREFILL_CHUNK } from '../../app/model/memory-plan';
import { loadTestModel, testSeed, useTestGpu } from '../support/gpu';
import { writeRandomMamba1 } from '../support/random-model';

/** Float32 GPU against the float64 reference through a whole model (as in plan-cache.test.ts). */
const TOL = 1e-4;
const scratch = mkdtempSync(path.join(tmpdir(), 'prefill-chunks-'));
let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function tinyModel(gpu: GpuContext) {
  writeRandomMamba1(scratch, { model_type: 'mamba', vocab_size: 29, hidden_size: 12, num_hidden_layers: 2, state_size: 3, time_step_rank: 2 }, testSeed());
  return loadTestModel(gpu, scratch);
}

describe('prefill chunks: plain prefills in maxTokens, analyses in analysisTokens', () => {
  it('a generating session takes the larger chunk (and its fork); a default session, a knockout and a traced prefill the analyses\' chunk; all match the reference', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights, table } = await tinyModel(ctx);
    const V = inspection.config.vocabSize;
    const last = (ids: number[]) => mamba1ForwardRef(inspection.config, (n) => table.get(n), ids).logits.subarray((ids.length - 1) * V, ids.length * V);
    const model = buildModel(ctx, inspection, weights, 12, { analysisTokens: 5 });
    expect([model.maxTokens, model.analysisTokens]).toEqual([12, 5]);
    const cached = vi.spyOn(model, 'cachedPlan');
    const planned = vi.spyOn(model, 'plan');
    const lengths = (spy: typeof cached | typeof planned) => spy.mock.calls.map((c) => c[0]);
    const ids = Array.from({ length: 29 }, (_, t) => (t * 7 + 3) % V);
    const sessions: Session[] = [];
    try {
      const gen = new Session(ctx, model, undefined, { prefillChunk: model.maxTokens });
      sessions.push(gen);
      gen.prefill(ids);
      expect(lengths(cached), 'generating: chunks of 12').toEqual([12, 12, 5]);
      expect(relativeError(await gen.readLogits(), last(ids)), 'generating').toBeLessThanOrEqual(TOL);

      cached.mockClear();
      const analysis = new Session(ctx, model);
      sessions.push(analysis);
      expect(analysis.prefillChunk).toBe(5);
      analysis.prefill(ids);
      expect(lengths(cached), 'default: chunks of 5').toEqual([5, 5, 5, 5, 5, 4]);
      expect(relativeError(await analysis.readLogits(), last(ids)), 'default').toBeLessThanOrEqual(TOL);

      cached.mockClear();
      const forked = gen.fork();
      sessions.push(forked);
      expect(forked.prefillChunk).toBe(12);
      const more = Array.from({ length: 13 }, (_, t) => (t * 5 + 1) % V);
      forked.prefill(more);
      expect(lengths(cached), 'fork: chunks of 12').toEqual([12, 1]);
      expect(relativeError(await forked.readLogits(), last([...ids, ...more])), 'fork').toBeLessThanOrEqual(TOL);

      // A knockout on a generating session: the analyses' chunks (the knocked one's plan built, the rest cached).
      planned.mockClear();
      cached.mockClear();
      const knocked = new Session(ctx, model, undefined, { prefillChunk: 12 });
      sessions.push(knocked);
      knocked.prefill(ids, { knockout: { token: 7, layers: null } });
      expect(lengths(cached), 'knockout: the other chunks of 5').toEqual([5, 5, 5, 5, 4]);
      expect(lengths(planned), 'knockout: the knocked chunk of 5').toEqual([5]);

      // A traced prefill on a generating session: chunks of 5 (the recorder's rows), logits as the reference's.
      planned.mockClear();
      cached.mockClear();
      const traced = new Session(ctx, model, undefined, { prefillChunk: 12 });
      sessions.push(traced);
      const recorder = new TraceRecorder(ctx, model, { capacity: 40 });
      try {
        traced.trace(recorder);
        traced.prefill(ids);
        expect(lengths(cached)).toEqual([]);
        expect(new Set(lengths(planned)), 'traced: plans for 5 and the last 4').toEqual(new Set([5, 4]));
        expect(recorder.length).toBe(29);
        expect(relativeError(await traced.readLogits(), last(ids)), 'traced').toBeLessThanOrEqual(TOL);
        traced.trace(null);
      } finally {
        recorder.destroy();
      }
    } finally {
      for (const s of sessions) s.destroy();
      model.destroy();
      weights.destroy();
    }
  });

  it('every analysis on a model of chunks 12 / 5 runs chunks of at most 5, and gives what it gives on a model of chunks 5 / 5, bit for bit', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const gpu = ctx;
    const { inspection, weights } = await tinyModel(gpu);
    const V = inspection.config.vocabSize;
    const two = buildModel(gpu, inspection, weights, 12, { analysisTokens: 5 });
    const one = buildModel(gpu, inspection, weights, 5);
    const largest = { plan: 0, cachedPlan: 0 };
    const spies = (['plan', 'cachedPlan'] as const).map((name) => {
      const original = two[name].bind(two) as (tokens: number, ...rest: unknown[]) => unknown;
      return vi.spyOn(two, name).mockImplementation(((tokens: number, ...rest: unknown[]) => {
        largest[name] = Math.max(largest[name], tokens);
        return original(tokens, ...rest);
      }) as never);
    });
    const ids = Array.from({ length: 23 }, (_, t) => (t * 11 + 2) % V);
    const corrupt = ids.map((id, t) => (t === 4 ? (id + 1) % V : id));
    // Every buffer an analysis makes (label and size): the same on both models, none sized by the larger chunk.
    const device = gpu.device as unknown as { createBuffer: (d: GPUBufferDescriptor) => GPUBuffer };
    const createBuffer = device.createBuffer.bind(gpu.device);
    const made: string[] = [];
    const run = async (model: LanguageModel) => {
      made.length = 0;
      device.createBuffer = (d) => {
        made.push(`${d.label ?? ''} ${d.size}`);
        return createBuffer(d);
      };
      const target = { model, weights, tokenizer: null };
      const traced = (await tracePrompt(gpu, target, ids, { traceId: 't', modelId: 'm' })).result;
      const long = await traceLongPrompt(gpu, target, ids, { traceId: 'l', modelId: 'm', every: 10 });
      // From 17: the analyses' chunk holding it starts at 15 (a checkpoint at 10).
      const window = await long.recompute!({ layer: 1, from: 17, to: 20 });
      const knocked = await knockout(gpu, target, ids, { token: 6 });
      const patched = await activationPatching(gpu, target, ids, corrupt, { answer: 1, foil: 2 });
      const residual = await activationPatching(gpu, target, ids, corrupt, { answer: 1, foil: 2, site: 'residual', layers: [0, 1] });
      // Without `every`: the checkpoints' interval from the model's chunk (checkpointInterval).
      const interval = await traceLongPrompt(gpu, target, ids, { traceId: 'i', modelId: 'm' });
      interval.release?.();
      const attributed = await tokenAttribution(gpu, target, ids.slice(0, 9));
      // A live trace followed by a trail session (the default on a GPU).
      const session = new Session(gpu, model);
      const live = await startLiveTrace(gpu, target, session, ids.length + 4, { traceId: 'g', modelId: 'm', detail: 'all', gpuSummaries: true, trail: true, intervalMs: 0, onRows: () => undefined });
      let generated: number[];
      let kept;
      try {
        generated = (await generate(gpu, session, ids, { maxTokens: 3, temperature: 0 }, () => live.flushSoon())).ids;
        kept = (await live.finish())!.result;
      } finally {
        await live.stop();
        session.destroy();
      }
      const followed = { ids: generated, delta: kept.delta, B: kept.B, C: kept.C, topNext: kept.topNext };
      device.createBuffer = createBuffer;
      long.release?.();
      return { delta: traced.delta, B: traced.B, C: traced.C, window: [window.delta, window.B, window.C], knocked, patched, residual, every: interval.result.checkpointEvery, attributed, followed, buffers: [...made].sort() };
    };
    try {
      const got = await run(two);
      expect(largest, 'the largest chunk any analysis ran').toEqual({ plan: 5, cachedPlan: 5 });
      for (const spy of spies) spy.mockRestore();
      expect(got).toEqual(await run(one));
    } finally {
      device.createBuffer = createBuffer;
      for (const spy of spies) spy.mockRestore();
      two.destroy();
      one.destroy();
      weights.destroy();
    }
  });

  it('refuses a session chunk over the model\'s maxTokens and an analysis chunk over it, naming the bounds', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights } = await tinyModel(ctx);
    const model = buildModel(ctx, inspection, weights, 12, { analysisTokens: 5 });
    try {
      for (const bad of [0, 13, 2.5]) {
        expect(() => new Session(ctx!, model, undefined, { prefillChunk: bad })).toThrow(new RangeError(`Session: prefillChunk must be an integer in 1..12 (the model's maxTokens), got ${bad}`));
      }
      expect(() => buildModel(ctx!, inspection, weights, 12, { analysisTokens: 13 })).toThrow(/: analysisTokens must be an integer in 1\.\.12 \(maxTokens\), got 13$/);
    } finally {
      model.destroy();
      weights.destroy();
    }
  });

  it('allocateModel: chunks whose activations exceed one buffer, or run out of memory, build for PREFILL_CHUNK, then the analyses\' chunk; without a smaller chunk the error names the activation', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const gpu = ctx;
    const { inspection, weights } = await tinyModel(gpu);
    const D = inspection.config.dModel;
    const limit = Math.min(gpu.device.limits.maxStorageBufferBindingSize, gpu.device.limits.maxBufferSize);
    const over = Math.floor(limit / (4 * D)) + 1; // the hidden stream [tokens, D] of this many is one float over
    const options = { weightFormat: 'auto' as const, prefillMatmul: 'fp32' as const, what: 'tiny' };
    const models = [];
    try {
      const fallback = await allocateModel(gpu, inspection, weights, { ...options, maxTokens: over, analysisTokens: 6 });
      models.push(fallback);
      // Between the chunk asked and the analyses': PREFILL_CHUNK (2,048), which fits.
      expect(over).toBeGreaterThan(PREFILL_CHUNK);
      expect([fallback.maxTokens, fallback.analysisTokens]).toEqual([PREFILL_CHUNK, 6]);
      const refused = allocateModel(gpu, inspection, weights, { ...options, maxTokens: over });
      await expect(refused).rejects.toBeInstanceOf(ActivationLimitError);
      await expect(refused).rejects.toThrow(
        new ActivationLimitError(`Mamba: activation over the buffer limit: hidden for chunks of ${over} tokens needs ${over * D * 4} bytes, more than this GPU binds in one buffer (${limit})`),
      );
      // Out of memory at the larger chunk (the device's error scope says so once): the smaller.
      const device = gpu.device as unknown as { popErrorScope: () => Promise<unknown> };
      const pop = device.popErrorScope.bind(gpu.device);
      let pretend = 1;
      device.popErrorScope = async () => {
        const real = await pop();
        return pretend-- > 0 ? { message: 'pretend' } : real;
      };
      try {
        const smaller = await allocateModel(gpu, inspection, weights, { ...options, maxTokens: 12, analysisTokens: 5 });
        models.push(smaller);
        expect([smaller.maxTokens, smaller.analysisTokens]).toEqual([5, 5]);
        expect(pretend).toBe(-1); // two scopes: the refused and the kept
        // From LONG_PREFILL_CHUNK: out of memory once, PREFILL_CHUNK; twice, the analyses' chunk.
        pretend = 1;
        const middle = await allocateModel(gpu, inspection, weights, { ...options, maxTokens: LONG_PREFILL_CHUNK, analysisTokens: 5 });
        models.push(middle);
        expect([middle.maxTokens, middle.analysisTokens]).toEqual([PREFILL_CHUNK, 5]);
        pretend = 2;
        const last = await allocateModel(gpu, inspection, weights, { ...options, maxTokens: LONG_PREFILL_CHUNK, analysisTokens: 5 });
        models.push(last);
        expect([last.maxTokens, last.analysisTokens]).toEqual([5, 5]);
        expect(pretend).toBe(-1); // three scopes: two refused and the kept
      } finally {
        device.popErrorScope = pop;
      }
      const fits = await allocateModel(gpu, inspection, weights, { ...options, maxTokens: 12, analysisTokens: 5 });
      models.push(fits);
      expect([fits.maxTokens, fits.analysisTokens]).toEqual([12, 5]);
    } finally {
      for (const m of models) m.destroy();
      weights.destroy();
    }
  });
});
