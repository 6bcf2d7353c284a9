/**
 * The acceptance gate for Falcon-Mamba: the golden cases made by transformers'
 * FalconMambaForCausalLM (test/fixtures/golden/falcon-mamba-*, scripts/golden/make_golden.py).
 *  - the float64 CPU reference (the registry's, built from the Mamba-1 mixer reference with the
 *    mixer norm) gives transformers' logits, hidden states, Δ, B and C within 1e-3 — and with the
 *    norm left out, or run with the other epsilon, it does not (so the comparison can fail);
 *  - the GPU model: logits at every position, hidden states, Δ, B and C (as the scan uses them:
 *    after the norm) within 1e-3; the greedy continuation identical token for token;
 *  - the trace (TraceRecorder, the app's one trace path) shows B and C after the norm, for the
 *    prompt and for traced decode steps;
 *  - prefill(t) then step(id_t) = prefill(t + 1);
 *  - the fused one-token decode (5 dispatches per layer: the norm after x_proj; 3 with x_proj folded
 *    into in_proj, the norm in the step) and the general path all give transformers' cached-step
 *    logits (generated_logits) within 1e-3.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TraceRecorder } from '../../app/analysis/recorder';
import { buildModel } from '../../app/arch/build';
import { inspectModel, type ModelInspection } from '../../app/arch/inspect';
import { referenceForward } from '../../app/arch/registry';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { generate } from '../../app/model/generate';
import { loadWeights, type LoadedWeights } from '../../app/model/loader';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { cachedStepErrors, readGolden } from '../support/golden';
import { useTestGpu } from '../support/gpu';

const TOL = 1e-3;
const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden');
const cases = existsSync(goldenDir) ? readdirSync(goldenDir).filter((n) => n.startsWith('falcon-mamba') && existsSync(path.join(goldenDir, n, 'golden.safetensors'))).sort() : [];

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

const rowsOf = (a: ArrayLike<number>, width: number, from: number, to: number) => Float32Array.from({ length: (to - from) * width }, (_, i) => a[from * width + i] as number);

async function open(name: string) {
  const dir = path.join(goldenDir, name);
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  const table = await readAllTensorsF32(files, inspection);
  await files.close();
  return { dir, inspection, table, golden: await readGolden(dir) };
}

async function gpuModel(ctx: GpuContext, dir: string): Promise<{ inspection: ModelInspection; weights: LoadedWeights }> {
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  const weights = await loadWeights(ctx, files, inspection);
  await files.close();
  return { inspection, weights };
}

describe('Falcon-Mamba against transformers (golden fixtures)', () => {
  it('has the Falcon-Mamba golden cases', () => {
    expect(cases).toEqual(['falcon-mamba-odd', 'falcon-mamba-tiny']);
  });

  it.each(cases)('%s: config read as Falcon-Mamba; the float64 reference matches transformers, and would not without the norm or with another eps', async (name) => {
    const { inspection, table, golden } = await open(name);
    const c = inspection.config;
    expect(c.architecture).toBe('falcon_mamba');
    expect(c.mixerRmsEps).toBeGreaterThan(0);
    const ids = await golden.ints('input_ids');
    const ref = referenceForward(c, (n) => table.get(n), ids);
    const logits = await golden.f32('logits');
    expect(relativeError(Float32Array.from(ref.logits), logits), 'logits').toBeLessThanOrEqual(TOL);
    for (let l = 0; l < c.nLayer; l++) {
      const taps = ref.layers[l]!;
      expect(relativeError(Float32Array.from(ref.hidden[l]!), await golden.f32(`hidden_states.${l}`)), `hidden ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(Float32Array.from(taps.delta!), await golden.f32(`layers.${l}.delta`)), `Δ ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(Float32Array.from(taps.B!), await golden.f32(`layers.${l}.B`)), `B ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(Float32Array.from(taps.C!), await golden.f32(`layers.${l}.C`)), `C ${l}`).toBeLessThanOrEqual(TOL);
    }
    // The comparison has teeth: plain Mamba-1 math, or the norm with the layer norm's eps (or 1e-6), misses by far more than 1e-3.
    const plain = referenceForward({ ...c, mixerRmsEps: 0 }, (n) => table.get(n), ids);
    expect(relativeError(Float32Array.from(plain.logits), logits), 'without the mixer norm').toBeGreaterThan(10 * TOL);
    const otherEps = c.normEps !== c.mixerRmsEps ? c.normEps : 1e-6;
    const other = referenceForward({ ...c, mixerRmsEps: otherEps }, (n) => table.get(n), ids);
    expect(relativeError(Float32Array.from(other.logits), logits), `with eps ${otherEps}`).toBeGreaterThan(10 * TOL);
  });

  it.for(cases)('%s: GPU logits, hidden states, Δ, B and C (after the norm) within 1e-3; greedy continuation identical', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const { dir, golden } = await open(name);
    const { inspection, weights } = await gpuModel(ctx, dir);
    const ids = await golden.ints('input_ids');
    const { dModel: D, dInner: Di, dState: N, dtRank: R, vocabSize: V, nLayer: L } = inspection.config;
    const T = ids.length;
    const CHUNK = 40; // prefill in chunks of 40: the state carried across
    const model = buildModel(ctx, inspection, weights, CHUNK);
    const session = new Session(ctx, model);
    const f = (label: string, n: number) => storageBuffer(ctx!.device, `GoldenFalcon.${label}`, n * 4);
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
    // The final norm's buffer holds the last chunk's rows.
    const last = T - Math.floor((T - 1) / CHUNK) * CHUNK;
    expect(relativeError(await readF32(ctx.device, model.normedBuffer, last * D), rowsOf(await golden.f32(`hidden_states.${L}`), D, T - last, T)), 'final norm').toBeLessThanOrEqual(TOL);
    for (let l = 0; l < L; l++) {
      expect(relativeError(await readF32(ctx.device, taps.hidden[l]!, T * D), await golden.f32(`hidden_states.${l}`)), `hidden ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(await readF32(ctx.device, taps.delta[l]!, T * Di), await golden.f32(`layers.${l}.delta`)), `Δ ${l}`).toBeLessThanOrEqual(TOL);
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
    const fresh = new Session(ctx, model);
    const result = await generate(ctx, fresh, await golden.ints('generate.prompt_ids'), { maxTokens: expected.length, temperature: 0 });
    expect(result.ids).toEqual(expected);
    fresh.destroy();
    model.destroy();
    weights.destroy();
  });

  it.for(cases)('%s: the trace shows B and C after the norm, for the prompt and for traced decode steps', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const { dir, table, golden } = await open(name);
    const { inspection, weights } = await gpuModel(ctx, dir);
    const c = inspection.config;
    const prompt = [...(await golden.ints('input_ids'))];
    const generated = [...(await golden.ints('generated_ids'))].slice(0, 6);
    const model = buildModel(ctx, inspection, weights, 64);
    const session = new Session(ctx, model);
    const recorder = new TraceRecorder(ctx, model, { capacity: prompt.length + generated.length });
    session.trace(recorder);
    session.prefill(prompt);
    for (const id of generated) session.step(id);
    const window = await recorder.read();
    const all = [...prompt, ...generated];
    const T = all.length;
    const ref = referenceForward(c, (n) => table.get(n), all);
    for (let l = 0; l < c.nLayer; l++) {
      const taps = ref.layers[l]!;
      expect(relativeError(rowsOf(window.B[l]!, c.dState, 0, prompt.length), await golden.f32(`layers.${l}.B`)), `prompt B ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(rowsOf(window.C[l]!, c.dState, 0, prompt.length), await golden.f32(`layers.${l}.C`)), `prompt C ${l}`).toBeLessThanOrEqual(TOL);
      // The traced steps' rows: against the float64 reference over prompt + steps (checked against transformers above).
      expect(relativeError(rowsOf(window.B[l]!, c.dState, prompt.length, T), rowsOf(taps.B!, c.dState, prompt.length, T)), `step B ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(rowsOf(window.C[l]!, c.dState, prompt.length, T), rowsOf(taps.C!, c.dState, prompt.length, T)), `step C ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(rowsOf(window.delta[l]!, c.dInner, prompt.length, T), rowsOf(taps.delta!, c.dInner, prompt.length, T)), `step Δ ${l}`).toBeLessThanOrEqual(TOL);
    }
    recorder.destroy();
    session.destroy();
    model.destroy();
    weights.destroy();
  });

  it.for(cases)('%s: prefill(t) then step(id_t) = prefill(t + 1) = transformers at t', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const { dir, golden } = await open(name);
    const { inspection, weights } = await gpuModel(ctx, dir);
    const V = inspection.config.vocabSize;
    const ids = [...(await golden.ints('input_ids'))];
    const logits = await golden.f32('logits');
    const model = buildModel(ctx, inspection, weights, 32);
    for (const t of [1, 33, ids.length - 1]) {
      const a = new Session(ctx, model);
      a.prefill(ids.slice(0, t));
      a.step(ids[t]!);
      const stepped = await a.readLogits();
      const b = new Session(ctx, model);
      b.prefill(ids.slice(0, t + 1));
      const whole = await b.readLogits();
      expect(relativeError(stepped, whole), `t = ${t}: step vs prefill`).toBeLessThanOrEqual(1e-4);
      expect(relativeError(stepped, rowsOf(logits, V, t, t + 1)), `t = ${t}: vs transformers`).toBeLessThanOrEqual(TOL);
      a.destroy();
      b.destroy();
    }
    model.destroy();
    weights.destroy();
  });

  it.for(cases)('%s: the fused one-token decode (norm after x_proj, or in the step with x_proj folded into in_proj) and the general path give transformers\' cached-step logits', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const { dir, golden } = await open(name);
    const { inspection, weights } = await gpuModel(ctx, dir);
    const L = inspection.config.nLayer;
    const model = buildModel(ctx, inspection, weights, 64);
    // Dispatches a step: embedding, then per layer 5 fused (norm+in_proj+conv, x_proj, dt/B/C norm,
    // dt_proj+scan, out_proj+residual) or 3 folded (norm+in_proj+conv+x_proj's partial sums, their
    // sum + the norm + dt_proj + scan, out_proj+residual), then norm_f + LM head.
    for (const [mode, options, tuning, dispatches] of [
      ['fused', {}, undefined, 2 + 5 * L],
      ['folded', {}, { decodeXProj: 'folded' }, 2 + 3 * L],
      ['general', { unfused: true }, undefined, null],
    ] as const) {
      const run = await cachedStepErrors(ctx, model, golden, options, tuning);
      if (dispatches !== null) expect(run.dispatches, mode).toBe(dispatches);
      run.errors.forEach((e, i) => expect(e, `${mode}: ${i === 0 ? "prefill's last row" : `step ${i - 1}`}`).toBeLessThanOrEqual(TOL));
    }
    model.destroy();
    weights.destroy();
  });

});
