/**
 * Long traces (issue 18): a trace with detail 'windows' keeps GPU summaries and state checkpoints,
 * never Δ, B, C. Checked against the full trace of the same tokens (detail 'all', whose rows are
 * checked against the float64 reference in trace.test.ts and engine-analysis.test.ts):
 * - a prompt's long trace: the same ids and top next tokens (the same prefill and logits), the
 *   summaries equal the full trace's CPU float64 replay within the fp32 bound 1e-4, the focus score
 *   the mean of the full Δ's focus columns, and windows of one layer recomputed from the
 *   checkpoints — on a checkpoint, inside a piece, across two, at the end, one token — equal the
 *   full trace's rows (bound 1e-6 of each tensor's scale); Mamba-1 and Mamba-2;
 * - a generation's live trace with detail 'windows' (tokens through the prompt's prefill and then
 *   single steps, the tap ring wrapping and checkpoints taken after steps) streams rows whose
 *   summaries equal the 'all' live trace's of the same greedy generation, and its windows equal
 *   the 'all' trace's rows (a prefill recomputing what decode steps computed: bound 1e-5);
 * - the engine: `trace` with detail 'windows' (or 'auto' past FULL_TRACE_MAX_BYTES), `traceWindow`
 *   of both kinds of trace, and clear errors for windows that are not.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModelInspection } from '../../app/arch/inspect';
import { buildModel } from '../../app/arch/build';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import type { LoadedWeights } from '../../app/model/loader';
import type { LanguageModel } from '../../app/model/model';
import { generate } from '../../app/model/generate';
import { Session } from '../../app/model/session';
import { LongTraceSink, longTraceMemory, meanOverColumns, traceLongPrompt, TRACE_WINDOW_MAX } from '../../app/analysis/long-trace';
import { storedTraceBytes } from '../../app/analysis/trace-store';
import { PARTIALS_MAX_BYTES } from '../../app/kernels/trace-summary';
import { startLiveTrace, tracePrompt } from '../../app/analysis/trace';
import { appendTraceRows } from '../../app/analysis/trace-rows';
import { knockout, knockoutWork } from '../../app/analysis/knockout';
import type { StoredTrace, TraceResult, TraceRows } from '../../app/analysis/types';
import { Engine } from '../../app/engine/engine';
import type { EngineRequest, EngineRequestKind, EngineRequests } from '../../app/engine/protocol';
import { filesSource } from '../support/engine-source';
import { useNodeGpu, useRandomModelGpu } from '../support/gpu';
import { mulberry32 } from '../support/random-model';

/** fp32 GPU summaries against the CPU's float64 replay of the same Δ, B, x (the kernels' bound). */
const SUMMARY_TOL = 1e-4;
/** A window recomputed by the same prefill kernels from a checkpoint: the bound. */
const WINDOW_TOL = 1e-6;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
let scratch = '';
const golden2 = path.resolve(import.meta.dirname, '../fixtures/golden/mamba2-groups');
let m1: { inspection: ModelInspection; weights: LoadedWeights };
let m2: { inspection: ModelInspection; weights: LoadedWeights };
let navigatorGpu: GPU | null = null;
useNodeGpu((found) => (navigatorGpu = found.gpu));
useRandomModelGpu(
  { model_type: 'mamba', vocab_size: 31, hidden_size: 20, num_hidden_layers: 3, state_size: 5, time_step_rank: 3 },
  (gpu) => {
    ({ ctx, skipReason, seed, dir: scratch } = gpu);
    if (ctx) [m1, m2] = [gpu.model, gpu.fixtures[0] as typeof m2];
  },
  [golden2],
);

const rowsOf = (a: Float32Array, width: number, from: number, to: number) => a.subarray(from * width, to * width);

/** Every window of `windows` of `long` equals the same rows of `full`, for every traced layer. */
async function expectWindows(long: StoredTrace, full: TraceResult, windows: [number, number][], tol: number, layers = full.layers) {
  const G = full.nGroups * full.dState;
  for (const layer of layers) {
    const i = full.layers.indexOf(layer);
    for (const [from, to] of windows) {
      const w = await long.recompute!({ layer, from, to });
      expect([w.layer, w.from, w.to]).toEqual([layer, from, to]);
      const scale = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const check = (got: Float32Array, all: Float32Array, width: number, what: string) => {
        const want = rowsOf(all, width, from, to);
        expect(got.length, `${what} L${layer} ${from}..${to}`).toBe(want.length);
        let worst = 0;
        for (let j = 0; j < want.length; j++) worst = Math.max(worst, Math.abs((got[j] as number) - (want[j] as number)));
        expect(worst / scale(all), `${what} L${layer} ${from}..${to}`).toBeLessThanOrEqual(tol);
      };
      check(w.delta, full.delta[i]!, full.deltaWidth, 'Δ');
      check(w.B, full.B[i]!, G, 'B');
      check(w.C, full.C[i]!, G, 'C');
    }
  }
}

function expectSummaries(long: TraceResult, full: TraceResult, tol: number) {
  full.layers.forEach((layer, i) => {
    expect(relativeError(long.deltaNorm[i]!, full.deltaNorm[i]!), `‖Δ‖ L${layer}`).toBeLessThanOrEqual(tol);
    expect(relativeError(long.writeGate[i]!, full.writeGate[i]!), `gate L${layer}`).toBeLessThanOrEqual(tol);
    expect(relativeError(long.stateNorm[i]!, full.stateNorm[i]!), `‖state‖ L${layer}`).toBeLessThanOrEqual(tol);
  });
}

describe.each([
  { arch: 'Mamba-1', get: () => m1, chunk: 16, every: 32, focus: [0, 7, 39] },
  { arch: 'Mamba-2', get: () => m2, chunk: 32, every: 32, focus: [1, 6] },
])('long traces, $arch', ({ get, chunk, every, focus }) => {
  it("a prompt's trace keeps summaries and checkpoints; its windows equal the full trace's rows", async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights } = get();
    const model: LanguageModel = buildModel(ctx, inspection, weights, chunk);
    const target = { model, weights, tokenizer: null };
    const r = mulberry32(seed + 3);
    const T = 2 * every + Math.max(every, 48) + 11;
    const ids = Array.from({ length: T }, () => Math.floor(r() * inspection.config.vocabSize));
    try {
      const full = (await tracePrompt(ctx, target, ids, { traceId: 'full', modelId: 'm' })).result;
      let progress = 0;
      let sink: LongTraceSink | null = null;
      let held = { ring: 0, summaries: 0, checkpoints: 0 };
      const long = await traceLongPrompt(ctx, target, ids, {
        traceId: 'long',
        modelId: 'm',
        focusChannels: focus,
        every,
        onSink: (s) => (sink = s),
        onProgress: (done) => {
          progress = done;
          held = { ring: sink!.recorder.bytes, summaries: sink!.summary.bytes, checkpoints: sink!.checkpoints.bytes };
        },
      });
      try {
        expect(progress).toBe(T);
        // The memory plan (longTraceMemory) is what was allocated: exact for the ring and the
        // checkpoints, an upper bound within the kernel's partials budget for the summaries.
        const plan = longTraceMemory(inspection.config, { tokens: T, chunk, stateBytes: model.stateBytes, focus: true, every });
        expect(held.ring).toBe(plan.ring);
        expect(held.checkpoints).toBe(plan.checkpoints);
        expect(long.gpuBytes).toBe(plan.gpuKept);
        expect(held.summaries).toBeLessThanOrEqual(plan.summaries);
        expect(plan.summaries - held.summaries).toBeLessThanOrEqual(PARTIALS_MAX_BYTES + 8192);
        expect(storedTraceBytes(long)).toBe(plan.heap);
        const res = long.result;
        expect(res.detail).toBe('windows');
        expect(res.checkpointEvery).toBe(every);
        expect(res.ids).toEqual(ids);
        expect(res.layers).toEqual(full.layers);
        for (const list of [res.delta, res.B, res.C]) expect(list.every((a) => a.length === 0)).toBe(true);
        // The same prefill chunks and logits: the same top next tokens, bit for bit.
        expect([...res.topNext.ids]).toEqual([...full.topNext.ids]);
        expect([...res.topNext.probs]).toEqual([...full.topNext.probs]);
        expectSummaries(res, full, SUMMARY_TOL);
        full.layers.forEach((layer, i) => {
          expect(relativeError(res.focusScore![i]!, meanOverColumns(full.delta[i]!, full.deltaWidth, focus)), `focus L${layer}`).toBeLessThanOrEqual(SUMMARY_TOL);
        });
        // On a checkpoint, inside a piece, across two checkpoints, up to the end, one token, all.
        // (Every layer for two windows, the last layer for the rest: SwiftShader is slow.)
        await expectWindows(long, full, [[every - 3, 2 * every + 5], [T - 13, T]], WINDOW_TOL);
        await expectWindows(long, full, [[every, 2 * every], [5, 9], [2 * every + 1, 2 * every + 2], [0, T]], WINDOW_TOL, [full.layers.at(-1)!]);
        expect(long.gpuBytes).toBeGreaterThan(0);
        // A knockout of the long trace starts from its last checkpoint before the token (two
        // checkpoints in), and equals the knockout run from the first token.
        const token = 2 * every + 3;
        const params = { token, layers: [0] };
        const fromStart = await knockout(ctx, target, ids, params);
        let work: [number, number] = [0, 0];
        const fromCheckpoint = await knockout(ctx, target, ids, params, { onProgress: (done, total) => (work = [done, total]) }, long.restore);
        expect(work).toEqual([knockoutWork(T, token, 2 * every), knockoutWork(T, token, 2 * every)]);
        expect(fromCheckpoint.baseline.ids).toEqual(fromStart.baseline.ids);
        expect(fromCheckpoint.klByPosition).toHaveLength(T - token);
        expect(relativeError(Float64Array.from(fromCheckpoint.klByPosition), Float64Array.from(fromStart.klByPosition))).toBeLessThanOrEqual(1e-3);
        expect(relativeError(Float64Array.from(fromCheckpoint.baseline.probs), Float64Array.from(fromStart.baseline.probs))).toBeLessThanOrEqual(1e-5);
      } finally {
        long.release?.();
      }
    } finally {
      model.destroy();
    }
  });

  it("a generation's live trace with windows streams the 'all' trace's summaries, and recomputes its rows", async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights } = get();
    const model: LanguageModel = buildModel(ctx, inspection, weights, chunk);
    const target = { model, weights, tokenizer: null };
    const r = mulberry32(seed + 5);
    const prompt = Array.from({ length: chunk + 5 }, () => Math.floor(r() * inspection.config.vocabSize));
    const steps = every + 7; // past a checkpoint taken after single steps, the ring wrapping
    const run = async (detail: 'all' | 'windows', gpuSummaries?: boolean, trail?: boolean, stepSummaries?: boolean) => {
      const session = new Session(ctx!, model);
      const streamed: TraceRows[] = [];
      const live = await startLiveTrace(ctx!, target, session, prompt.length + steps + 1, {
        traceId: detail,
        modelId: 'm',
        detail,
        focusChannels: focus,
        intervalMs: 0,
        ...(gpuSummaries !== undefined ? { gpuSummaries } : {}),
        ...(trail !== undefined ? { trail } : {}),
        ...(stepSummaries !== undefined ? { stepSummaries } : {}),
        onRows: (rows) => streamed.push(rows),
      });
      const mode = live.mode;
      try {
        let n = 0;
        // Flush now and then, as the engine's LIVE_TRACE_MS would (here every 9 tokens).
        const out = await generate(ctx!, session, prompt, { maxTokens: steps + 1, temperature: 0 }, () => {
          if (++n % 9 === 0) live.flushSoon();
        });
        const kept = await live.finish();
        return { out, kept: kept!, streamed, mode };
      } finally {
        await live.stop();
        session.destroy();
      }
    };
    try {
      // 'all' with the CPU replay (float64), traced in the generating session's own steps, as the
      // reference; 'all' with the GPU summaries and 'windows' (always the GPU's), traced by a
      // trail session in prefill pieces (the default on a GPU), against it.
      const all = await run('all', false, false);
      const allGpu = await run('all', true, true);
      const win = await run('windows', undefined, true);
      expect([all.mode, allGpu.mode, win.mode]).toEqual(['taps', 'trail', 'trail']);
      expect(allGpu.out.ids).toEqual(all.out.ids);
      expectSummaries(allGpu.kept.result, all.kept.result, SUMMARY_TOL);
      all.kept.result.layers.forEach((layer, i) => {
        expect(relativeError(allGpu.kept.result.focusScore![i]!, all.kept.result.focusScore![i]!), `focus L${layer}`).toBeLessThanOrEqual(SUMMARY_TOL);
      });
      try {
        expect(win.out.ids).toEqual(all.out.ids);
        const merged = win.streamed.reduce<TraceResult | null>((t, rows) => appendTraceRows(t, rows), null)!;
        expect(merged.detail).toBe('windows');
        expect(merged.ids).toEqual([...prompt, ...win.out.ids.slice(0, -1)]);
        expect(merged.ids).toEqual(win.kept.result.ids);
        expectSummaries(merged, all.kept.result, SUMMARY_TOL);
        // The top next tokens of every row, from the trail's prefill logits: those of a prompt trace
        // of the same tokens (the same chunks: the trail's pieces are the model's chunk here).
        const reference = await tracePrompt(ctx!, target, merged.ids, { traceId: 'reference', modelId: 'm' });
        expect([...merged.topNext.ids]).toEqual([...reference.result.topNext.ids]);
        expect(relativeError(merged.topNext.probs, reference.result.topNext.probs)).toBeLessThanOrEqual(1e-6);
        // Where the generation traced in place had logits (after the prompt, after each step): its
        // decode's probabilities, to fp32 rounding (ids may swap on a near tie, the ranked values not).
        const from = (prompt.length - 1) * merged.topNext.k;
        expect(relativeError(merged.topNext.probs.subarray(from), all.kept.result.topNext.probs.subarray(from))).toBeLessThanOrEqual(1e-5);
        const T = merged.ids.length;
        await expectWindows(win.kept, all.kept.result, [[every - 2, T]], 1e-5, [0, all.kept.result.layers.at(-1)!]);
      } finally {
        win.kept.release?.();
      }
      // Traced in place, every step's summaries computed by the fused decode itself (the default
      // on a GPU): the same summaries, top next tokens where the decode had logits, and windows.
      const fused = await run('windows', undefined, false, true);
      try {
        expect(fused.mode).toBe('step-summaries');
        expect(fused.out.ids).toEqual(all.out.ids);
        const merged = fused.streamed.reduce<TraceResult | null>((t, rows) => appendTraceRows(t, rows), null)!;
        expect(merged.detail).toBe('windows');
        expect(merged.ids).toEqual(all.kept.result.ids);
        expect(merged.ids).toEqual(fused.kept.result.ids);
        expectSummaries(merged, all.kept.result, SUMMARY_TOL);
        all.kept.result.layers.forEach((layer, i) => {
          expect(relativeError(merged.focusScore![i]!, all.kept.result.focusScore![i]!), `focus L${layer}`).toBeLessThanOrEqual(SUMMARY_TOL);
        });
        const from = (prompt.length - 1) * merged.topNext.k;
        expect(relativeError(merged.topNext.probs.subarray(from), all.kept.result.topNext.probs.subarray(from))).toBeLessThanOrEqual(1e-5);
        await expectWindows(fused.kept, all.kept.result, [[every - 2, merged.ids.length]], 1e-5, [0, all.kept.result.layers.at(-1)!]);
      } finally {
        fused.kept.release?.();
      }
    } finally {
      model.destroy();
    }
  });

  it('steps that summarise themselves, a second prompt, more steps: every row equals the prompt trace of all the tokens', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights } = get();
    const model: LanguageModel = buildModel(ctx, inspection, weights, chunk);
    const target = { model, weights, tokenizer: null };
    const r = mulberry32(seed + 9);
    const V = inspection.config.vocabSize;
    const token = () => Math.floor(r() * V);
    // Prompt, steps, a prompt (the replay goes on from the session's state), steps past a checkpoint.
    const parts: { prompt?: number[]; steps?: number[] }[] = [
      { prompt: Array.from({ length: 7 }, token) },
      { steps: Array.from({ length: 5 }, token) },
      { prompt: Array.from({ length: chunk + 3 }, token) },
      { steps: Array.from({ length: every }, token) },
    ];
    const ids = parts.flatMap((p) => p.prompt ?? p.steps ?? []);
    const session = new Session(ctx, model);
    // Steps' logits wait 4 at a time for their top-k (the last steps' batches wrap several times).
    const sink = new LongTraceSink(ctx, target, session, { capacity: 8, every, topNext: 3, focusChannels: focus, stepSummaries: true, stepLogitsRows: 4 });
    try {
      expect(sink.stepSummaries).toBe(true);
      session.trace(sink);
      for (const p of parts) {
        if (p.prompt) session.prefill(p.prompt);
        for (const id of p.steps ?? []) session.step(id);
      }
      sink.flush();
      expect(sink.rows).toBe(ids.length);
      const rows = await sink.summary.read(0, ids.length);
      const full = (await tracePrompt(ctx, target, ids, { traceId: 'full', modelId: 'm' })).result;
      expectSummaries({ ...full, ...rows } as TraceResult, full, SUMMARY_TOL);
      full.layers.forEach((layer, i) => {
        expect(relativeError(rows.focusScore![i]!, meanOverColumns(full.delta[i]!, full.deltaWidth, focus)), `focus L${layer}`).toBeLessThanOrEqual(SUMMARY_TOL);
      });
      // The top next tokens where the session had logits (each prompt's last token, every step):
      // the prompt trace's, to fp32 rounding (its logits come from prefill chunks; ids may swap on a
      // near tie, the ranked probabilities not).
      const top = await sink.readTopNext(0, ids.length);
      const K = top.k;
      let start = 0;
      const rowsWithLogits: number[] = [];
      for (const p of parts) {
        const n = (p.prompt ?? p.steps ?? []).length;
        if (p.prompt) rowsWithLogits.push(start + n - 1);
        else rowsWithLogits.push(...Array.from({ length: n }, (_, j) => start + j));
        start += n;
      }
      // (The prompt trace keeps more of them per row: its first K.)
      const pick = (a: Float32Array, k: number) => Float32Array.from(rowsWithLogits.flatMap((row) => [...a.subarray(row * k, row * k + K)]));
      expect(K).toBe(3);
      expect(relativeError(pick(top.probs, K), pick(full.topNext.probs, full.topNext.k))).toBeLessThanOrEqual(1e-5);
      // Checkpoints at multiples of `every` where a step or a chunk starts: every one in the last steps.
      const last = Array.from({ length: every }, (_, k) => ids.length - every + k).filter((t) => t > 0 && t % every === 0);
      expect(last.length).toBe(1);
      expect(sink.checkpoints.tokens).toEqual(expect.arrayContaining(last));
      expect(sink.checkpoints.tokens.every((t) => t % every === 0)).toBe(true);
    } finally {
      session.trace(null);
      sink.destroyTracing();
      sink.checkpoints.destroy();
      session.destroy();
      model.destroy();
    }
  });
});

describe('engine: long traces and windows', () => {
  it('traces with windows, serves windows of both kinds of trace, and refuses windows that are not', async (test) => {
    if (!ctx) return test.skip(skipReason);
    if (!navigatorGpu) return test.skip(skipReason);
    const engine = new Engine(navigatorGpu, () => undefined, 'node');
    let id = 1;
    const send = async <K extends EngineRequestKind>(kind: K, params: EngineRequests[K]['params']): Promise<EngineRequests[K]['result']> => {
      const reply = await engine.handle({ id: id++, kind, params } as EngineRequest);
      if (!reply.ok) throw new Error(reply.error);
      return reply.result as EngineRequests[K]['result'];
    };
    await send('loadModel', { modelId: 'm', source: filesSource(scratch) });
    const V = m1.inspection.config.vocabSize;
    const ids = Array.from({ length: 270 }, (_, t) => (t * 11 + 5) % V);
    const full = await send('trace', { modelId: 'm', prompt: { ids }, detail: 'all' });
    const long = await send('trace', { modelId: 'm', prompt: { ids }, detail: 'windows', focusChannels: [2, 3] });
    expect(full.detail).toBe('all');
    expect(long.detail).toBe('windows');
    expect(long.focusScore).toHaveLength(long.layers.length);
    for (const [from, to] of [[0, 270], [255, 257]] as const) {
      const a = await send('traceWindow', { modelId: 'm', traceId: full.traceId, layer: 1, from, to });
      const b = await send('traceWindow', { modelId: 'm', traceId: long.traceId, layer: 1, from, to });
      expect([...a.delta]).toEqual([...rowsOf(full.delta[1]!, full.deltaWidth, from, to)]);
      expect(relativeError(b.delta, a.delta)).toBeLessThanOrEqual(WINDOW_TOL);
      expect(relativeError(b.B, a.B)).toBeLessThanOrEqual(WINDOW_TOL);
      expect(relativeError(b.C, a.C)).toBeLessThanOrEqual(WINDOW_TOL);
    }
    // Hidden attention of a long trace: one row over the whole context, equal to the full trace's row.
    for (const unit of ['mean', 4] as const) {
      const rowOf = (traceId: string) => send('hiddenAttention', { modelId: 'm', traceId, layer: 1, unit, row: 233 });
      const [a, b] = [await rowOf(full.traceId), await rowOf(long.traceId)];
      expect(b.alpha).toHaveLength(270);
      expect(relativeError(b.alpha, a.alpha), `row of unit ${unit}`).toBeLessThanOrEqual(1e-5);
    }
    await expect(send('hiddenAttention', { modelId: 'm', traceId: long.traceId, layer: 1, unit: 'mean' })).rejects.toThrow('ask for one row of hidden attention, not the whole matrix');
    const bad = (p: { layer: number; from: number; to: number }) => send('traceWindow', { modelId: 'm', traceId: long.traceId, ...p });
    await expect(bad({ layer: 7, from: 0, to: 3 })).rejects.toThrow(`Trace ${long.traceId} has no layer 7`);
    await expect(bad({ layer: 0, from: 5, to: 5 })).rejects.toThrow('Tokens 5..5 are not a window');
    await expect(bad({ layer: 0, from: 260, to: 271 })).rejects.toThrow('Tokens 260..271 are not a window');
    await expect(bad({ layer: 0, from: -1, to: 3 })).rejects.toThrow('Tokens -1..3 are not a window');
    await expect(send('trace', { modelId: 'm', prompt: { ids }, focusChannels: [1e6] })).rejects.toThrow('Focus channel 1000000 is not a Δ column');
    expect(TRACE_WINDOW_MAX).toBeGreaterThanOrEqual(4096);
    await send('unloadModel', {});
  });
});
