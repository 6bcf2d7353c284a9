/**
 * Whole-model checks of the decode fast path and of fp16 weight storage:
 *  1. The fused one-token decode (plan(1) with no options: norm folded into in_proj, conv into its
 *     epilogue, dt_proj into the scan step, the residual add into out_proj, norm_f into an f16 LM
 *     head; an fp32 head runs norm_f and the matrix-vector kernel as two dispatches) gives the same logits and state as the unfused path (plan(1) with taps, which keeps
 *     every dispatch) over several steps — Mamba-1 on a fresh random model, Mamba-2 on the
 *     golden fixture — within the fp32 tolerance 1e-4; and it uses fewer dispatches.
 *  2. A model loaded with weightFormat 'f16' gives the same logits (prefill and decode) as the
 *     fp32 model whose big matrices were rounded to f16 first, within 1e-4: storage is the only
 *     difference, so fp32 arithmetic must agree as tightly as elsewhere.
 *  3. Against the unrounded fp32 model the f16 logits differ by the weights' rounding only:
 *     each weight moves by ≤ 2^-11 ≈ 4.9e-4 relative, and such independent errors add up through
 *     the layers to about 1e-3 of the logits' norm. The bound 2e-2 (40× the unit rounding) is a
 *     sanity check that catches a wrong unpack (errors of order 1); (2) is the exactness check.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectModel, type ModelInspection } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { roundToF16 } from '../../app/kernels/f16';
import { relativeError } from '../../app/kernels/self-test';
import { stateBuffers, type SequenceState } from '../../app/model/mixer';
import type { LanguageModel, PlanOptions } from '../../app/model/model';
import { loadWeights, type LoadedWeights } from '../../app/model/loader';
import { buildModel } from '../../app/arch/build';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { useTestGpu } from '../support/gpu';
import { stepLogits } from '../support/steps';
import { mulberry32, writeRandomMamba1 } from '../support/random-model';

const TOL = 1e-4;
const F16_SANITY = 2e-2;
let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));
const scratch = mkdtempSync(path.join(tmpdir(), 'decode-fast-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// d_model and d_inner multiples of 8 (the fused kernels' vec4 / f16 loads), the rest odd.
const MAMBA1 = { model_type: 'mamba', vocab_size: 53, hidden_size: 24, num_hidden_layers: 2, state_size: 6, time_step_rank: 5, conv_kernel: 3, tie_word_embeddings: true };
/** Falcon-Mamba: Mamba-1 plus the weightless RMS norm of dt_r, B and C (an eps large enough to matter). */
const FALCON = { ...MAMBA1, model_type: 'falcon_mamba', mixer_rms_eps: 0.02, tie_word_embeddings: false };
const MAMBA2_DIR = path.resolve(import.meta.dirname, '../fixtures/golden/mamba2-groups');

async function load(ctx: GpuContext, dir: string, weightFormat: 'f32' | 'f16' = 'f32'): Promise<{ inspection: ModelInspection; weights: LoadedWeights; table: Map<string, Float32Array> }> {
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  const weights = await loadWeights(ctx, files, inspection, { weightFormat });
  const table = await readAllTensorsF32(files, inspection);
  await files.close();
  return { inspection, weights, table };
}

function makeModel(ctx: GpuContext, inspection: ModelInspection, weights: LoadedWeights): LanguageModel {
  return buildModel(ctx, inspection, weights, 64);
}

async function readState(ctx: GpuContext, s: SequenceState): Promise<Float32Array> {
  const parts = await Promise.all(stateBuffers(s).map((b) => readF32(ctx.device, b, b.size / 4)));
  return Float32Array.from(parts.flatMap((p) => Array.from(p)));
}

/** A session prefilled with `prompt`, then `steps` through plan(1) with `options`: each step's logits (`after` runs after each step). */
async function prefillAndStep(ctx: GpuContext, model: LanguageModel, prompt: number[], steps: number[], options: PlanOptions, after?: () => void) {
  const session = new Session(ctx, model);
  session.prefill(prompt);
  const state = (session as unknown as { state: SequenceState }).state;
  const plan = model.plan(1, state, session.logits, options);
  const logits = await stepLogits(ctx, model, session, plan, steps, after);
  return { session, state, plan, logits };
}

/**
 * Prefill `prompt`, then `steps` decode steps through plan(1): fused (no options), unfused (the
 * general path with empty taps: the traced step before it took the fused decode), or
 * { unfused: true } (the general path untraced, as Session takes on a software adapter).
 */
async function decode(
  ctx: GpuContext,
  model: LanguageModel,
  prompt: number[],
  steps: number[],
  fused: boolean | 'general',
): Promise<{ logits: Float32Array[]; state: Float32Array; dispatches: number }> {
  const { session, state, plan, logits } = await prefillAndStep(ctx, model, prompt, steps, fused === 'general' ? { unfused: true } : fused ? {} : { unfused: true, taps: { row0: 0 } });
  const out = { logits, state: await readState(ctx, state), dispatches: plan.steps.filter((s) => s.kind === 'dispatch').length };
  plan.destroy();
  session.destroy();
  return out;
}

describe('fused one-token decode = unfused decode', () => {
  it('Mamba-1 (random model): logits of 5 steps and the state within 1e-4, fewer dispatches', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = path.join(scratch, 'm1');
    writeRandomMamba1(dir, MAMBA1, seed);
    const { inspection, weights } = await load(ctx, dir);
    const model = makeModel(ctx, inspection, weights);
    const rand = mulberry32(seed + 1);
    const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * MAMBA1.vocab_size));
    const prompt = ids(7);
    const steps = ids(5);
    const fused = await decode(ctx, model, prompt, steps, true);
    const unfused = await decode(ctx, model, prompt, steps, false);
    const general = await decode(ctx, model, prompt, steps, 'general');
    // embedding, 4 per layer, norm_f folded into the LM head.
    expect(fused.dispatches).toBe(2 + 4 * MAMBA1.num_hidden_layers);
    expect(unfused.dispatches).toBeGreaterThan(fused.dispatches);
    expect(general.dispatches).toBe(unfused.dispatches);
    steps.forEach((_, i) => expect(relativeError(fused.logits[i]!, unfused.logits[i]!), `step ${i}`).toBeLessThanOrEqual(TOL));
    expect(relativeError(fused.state, unfused.state), 'state').toBeLessThanOrEqual(TOL);
    steps.forEach((_, i) => expect(relativeError(general.logits[i]!, unfused.logits[i]!), `general step ${i}`).toBeLessThanOrEqual(TOL));
    model.destroy();
    weights.destroy();
  });

  it('Falcon-Mamba (random model): the norm of dt_r, B, C in the fused decode too — logits of 5 steps and the state within 1e-4', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = path.join(scratch, 'falcon');
    writeRandomMamba1(dir, FALCON, seed + 5);
    const { inspection, weights } = await load(ctx, dir);
    expect(inspection.config).toMatchObject({ architecture: 'falcon_mamba', mixerRmsEps: 0.02 });
    const model = makeModel(ctx, inspection, weights);
    const rand = mulberry32(seed + 6);
    const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * FALCON.vocab_size));
    const prompt = ids(7);
    const steps = ids(5);
    const fused = await decode(ctx, model, prompt, steps, true);
    const unfused = await decode(ctx, model, prompt, steps, false);
    const general = await decode(ctx, model, prompt, steps, 'general');
    // embedding, 5 per layer (the norm after x_proj), norm_f, lm_head.
    expect(fused.dispatches).toBe(2 + 5 * FALCON.num_hidden_layers);
    steps.forEach((_, i) => expect(relativeError(fused.logits[i]!, unfused.logits[i]!), `step ${i}`).toBeLessThanOrEqual(TOL));
    expect(relativeError(fused.state, unfused.state), 'state').toBeLessThanOrEqual(TOL);
    steps.forEach((_, i) => expect(relativeError(general.logits[i]!, unfused.logits[i]!), `general step ${i}`).toBeLessThanOrEqual(TOL));
    model.destroy();
    weights.destroy();
  });

  it.for([
    ['Mamba-1', MAMBA1, 11],
    ['Falcon-Mamba (its norm of dt_r, B, C in the step)', FALCON, 13],
  ] as const)('%s with x_proj folded into in_proj (tuning.decodeXProj): 3 dispatches a layer, logits of 5 steps and the state within 1e-4 of the unfused decode', async ([, config, salt], test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = path.join(scratch, `folded-${config.model_type}`);
    writeRandomMamba1(dir, config, seed + salt);
    const { inspection, weights } = await load(ctx, dir);
    const model = makeModel(ctx, inspection, weights);
    const rand = mulberry32(seed + salt + 1);
    const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * config.vocab_size));
    const prompt = ids(7);
    const steps = ids(5);
    const before = ctx.tuning;
    let folded: Awaited<ReturnType<typeof decode>>;
    try {
      ctx.tuning = { ...before, decodeXProj: 'folded' };
      folded = await decode(ctx, model, prompt, steps, true);
    } finally {
      ctx.tuning = before;
    }
    const separate = await decode(ctx, model, prompt, steps, true);
    const unfused = await decode(ctx, model, prompt, steps, false);
    // embedding, 3 per layer, norm_f folded into the LM head.
    expect(folded.dispatches).toBe(2 + 3 * config.num_hidden_layers);
    expect(separate.dispatches).toBeGreaterThan(folded.dispatches);
    steps.forEach((_, i) => expect(relativeError(folded.logits[i]!, unfused.logits[i]!), `step ${i}`).toBeLessThanOrEqual(TOL));
    expect(relativeError(folded.state, unfused.state), 'state').toBeLessThanOrEqual(TOL);
    model.destroy();
    weights.destroy();
  });

  // mamba2-groups: 2 norm groups (the gated group norm in out_proj's prologue); mamba2-one-group: the
  // gate and the norm weight applied in the SSD step, which also writes Σ u² in pieces (out_proj's
  // presummed RMSNorm, no prologue).
  for (const [fixture, what] of [
    ['mamba2-groups', '2 norm groups'],
    ['mamba2-one-group', 'one norm group: the gate and Σ u² in the SSD step'],
  ] as const) {
    it(`Mamba-2 (golden fixture ${fixture}, ${what}): logits of 5 steps and the state within 1e-4`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const dir = path.join(path.dirname(MAMBA2_DIR), fixture);
      if (!existsSync(dir)) return test.skip(`no ${fixture} fixture`);
      const { inspection, weights } = await load(ctx, dir);
      const model = makeModel(ctx, inspection, weights);
      const V = inspection.config.vocabSize;
      const rand = mulberry32(seed + 2);
      const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * V));
      const prompt = ids(9);
      const steps = ids(5);
      const fused = await decode(ctx, model, prompt, steps, true);
      const unfused = await decode(ctx, model, prompt, steps, false);
      expect(fused.dispatches).toBe(2 + 3 * inspection.config.nLayer);
      steps.forEach((_, i) => expect(relativeError(fused.logits[i]!, unfused.logits[i]!), `step ${i}`).toBeLessThanOrEqual(TOL));
      expect(relativeError(fused.state, unfused.state), 'state').toBeLessThanOrEqual(TOL);
      model.destroy();
      weights.destroy();
    });
  }
});

/**
 * The grid decode (app/kernels/layer-grid.ts): each one-group Mamba-2 layer as one dispatch whose
 * three steps are separated by grid barriers. A software adapter does not run workgroups side by
 * side, so here it runs with one workgroup (tuning.gridDecode = 1): every virtual workgroup of
 * every step, the atomics and the barrier counters, but no two workgroups at once (the H200 bench
 * checks that, bench/RESULTS.md). Against the three-dispatch fused decode of the same weights,
 * fp32 and f16, within the fp32 tolerance.
 */
describe('grid decode = fused decode', () => {
  for (const format of ['f32', 'f16'] as const) {
    it(`Mamba-2 (golden fixture mamba2-one-group, ${format} weights): logits of 6 steps and the state within 1e-4, one dispatch a layer`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const c0 = ctx;
      const dir = path.join(path.dirname(MAMBA2_DIR), 'mamba2-one-group');
      const { inspection, weights } = await load(c0, dir, format);
      const V = inspection.config.vocabSize;
      const rand = mulberry32(seed + 11);
      const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * V));
      const prompt = ids(7);
      const steps = ids(6);
      const before = c0.tuning;
      try {
        c0.tuning = { ...before, gridDecode: false };
        const fusedModel = makeModel(c0, inspection, weights);
        const fused = await decode(c0, fusedModel, prompt, steps, true);
        fusedModel.destroy();
        expect(fused.dispatches).toBe(2 + 3 * inspection.config.nLayer);
        // The op's own matrix-vector shape, then forced ones: odd rows a group, up to 8, with the unrolled loads and without.
        for (const gridShape of [undefined, { inRows: 3, outRows: 5, unroll: 3 }, { inRows: 8, outRows: 1, unroll: 2 }]) {
          c0.tuning = { ...before, gridDecode: 1, ...(gridShape ? { gridShape } : {}) };
          const gridModel = makeModel(c0, inspection, weights);
          const grid = await decode(c0, gridModel, prompt, steps, true);
          expect(await gridModel.gridDecodeFailed()).toBe(false);
          gridModel.destroy();
          const what = gridShape ? JSON.stringify(gridShape) : 'default shape';
          expect(grid.dispatches).toBe(2 + inspection.config.nLayer);
          steps.forEach((_, i) => expect(relativeError(grid.logits[i]!, fused.logits[i]!), `${what} step ${i}`).toBeLessThanOrEqual(TOL));
          expect(relativeError(grid.state, fused.state), `${what} state`).toBeLessThanOrEqual(TOL);
        }
      } finally {
        c0.tuning = before;
        weights.destroy();
      }
    });
  }
});

/**
 * Prefill `prompt`, then decode `steps` as traced steps (taps Δ, dbc, hidden and, where the mixer
 * has them, x and y; the row each step writes read at encode time, as Session's traced step does),
 * fused or through the general path: the taps, the logits and the dispatch count.
 */
async function tracedDecode(ctx: GpuContext, model: LanguageModel, prompt: number[], steps: number[], fused: boolean, extra: boolean) {
  const { nLayer: L, dModel: D, dInner: Di } = model.config;
  const rows = steps.length;
  const buffers: GPUBuffer[] = [];
  const make = (width: number) => {
    const b = storageBuffer(ctx.device, 'Test.tap', rows * width * 4);
    ctx.device.queue.writeBuffer(b, 0, new Float32Array(rows * width).fill(Number.NaN));
    buffers.push(b);
    return b;
  };
  const layouts = Array.from({ length: L }, (_, l) => model.traceLayout(l)!);
  let row = 0;
  const taps = {
    delta: layouts.map((t) => make(t.deltaWidth)),
    dbc: layouts.map((t) => make(t.rowWidth)),
    hidden: layouts.map(() => make(D)),
    ...(extra ? { x: layouts.map(() => make(Di)), y: layouts.map(() => make(Di)) } : {}),
    row0: 0,
    rowOf: () => row,
  };
  const { session, plan, logits } = await prefillAndStep(ctx, model, prompt, steps, fused ? { taps } : { taps, unfused: true }, () => row++);
  const read = async (list: GPUBuffer[] | undefined) => (list ? Promise.all(list.map((b) => readF32(ctx.device, b, b.size / 4))) : []);
  const out = {
    logits,
    dispatches: plan.steps.filter((s) => s.kind === 'dispatch').length,
    // Copies right after a kernel: each ends a compute pass.
    passBreaks: plan.steps.filter((s, k) => s.kind === 'copy' && plan.steps[k - 1]?.kind === 'dispatch').length,
    taps: { delta: await read(taps.delta), dbc: await read(taps.dbc), hidden: await read(taps.hidden), x: await read(taps.x), y: await read(taps.y) },
  };
  plan.destroy();
  session.destroy();
  for (const b of buffers) b.destroy();
  return out;
}

describe('a traced decode step takes the fused decode', () => {
  // breaksPerLayer: copies between the kernels of a layer (the hidden state's after its block;
  // Falcon-Mamba's dt_r|B|C after its norm); the rest wait for the end of the step, in one break.
  // The checkpoint in `dir`, loaded and built: traced steps fused and general alike.
  const check = async (ctx: GpuContext, dir: string, extra: boolean, perLayer: number, s: number, breaksPerLayer = 1) => {
    const { inspection, weights } = await load(ctx, dir);
    const model = makeModel(ctx, inspection, weights);
    const V = inspection.config.vocabSize;
    const rand = mulberry32(s);
    const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * V));
    const prompt = ids(6);
    const steps = ids(3);
    const fused = await tracedDecode(ctx, model, prompt, steps, true, extra);
    const general = await tracedDecode(ctx, model, prompt, steps, false, extra);
    expect(fused.dispatches, 'the fused decode: embedding, its kernels per layer, the LM head').toBe(2 + perLayer * model.config.nLayer);
    expect(general.dispatches).toBeGreaterThan(fused.dispatches);
    expect(fused.passBreaks, 'compute passes the copies end').toBe(breaksPerLayer * model.config.nLayer + 1);
    steps.forEach((_, i) => expect(relativeError(fused.logits[i]!, general.logits[i]!), `logits, step ${i}`).toBeLessThanOrEqual(TOL));
    for (const kind of ['delta', 'dbc', 'hidden', 'x', 'y'] as const) {
      expect(fused.taps[kind].length, kind).toBe(extra || (kind !== 'x' && kind !== 'y') ? model.config.nLayer : 0);
      fused.taps[kind].forEach((tap, l) => {
        expect(tap.every(Number.isFinite), `${kind} L${l}: every row written`).toBe(true);
        expect(relativeError(tap, general.taps[kind][l]!), `${kind} L${l}`).toBeLessThanOrEqual(TOL);
      });
    }
    model.destroy();
    weights.destroy();
  };

  it('Mamba-1 (random model): Δ, dt_r|B|C, x, y and the hidden states equal the general path\'s, and the logits', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = path.join(scratch, 'm1-traced');
    writeRandomMamba1(dir, MAMBA1, seed + 5);
    await check(ctx, dir, true, 4, seed + 6);
  });

  it('Falcon-Mamba (random model): dt_r|B|C tapped after its norm, as in the general path', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = path.join(scratch, 'falcon-traced');
    writeRandomMamba1(dir, FALCON, seed + 7);
    await check(ctx, dir, false, 5, seed + 8, 2);
  });

  for (const fixture of ['mamba2-groups', 'mamba2-one-group']) {
    it(`Mamba-2 (golden fixture ${fixture}): Δ per head, the xBC row and the hidden states`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const dir = path.join(path.dirname(MAMBA2_DIR), fixture);
      if (!existsSync(dir)) return test.skip(`no ${fixture} fixture`);
      await check(ctx, dir, false, 3, seed + 9);
    });
  }
});

describe('fp16 weight storage', () => {
  for (const arch of ['mamba', 'mamba2'] as const) {
    it(`${arch}: f16 logits = fp32-with-f16-rounded-weights logits within 1e-4 (prefill and fused decode); vs plain fp32 within ${F16_SANITY}`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      let dir = MAMBA2_DIR;
      if (arch === 'mamba') {
        dir = path.join(scratch, 'm1-f16');
        writeRandomMamba1(dir, MAMBA1, seed + 3);
      } else if (!existsSync(dir)) return test.skip('no mamba2-groups fixture');
      const half = await load(ctx, dir, 'f16');
      const full = await load(ctx, dir, 'f32');
      const rounded = await load(ctx, dir, 'f32');
      const halves = [...(half.weights.formats ?? new Map())].filter(([, f]) => f === 'f16').map(([name]) => name);
      expect(halves.length, 'matrices stored as f16').toBeGreaterThanOrEqual(1 + 2 * half.inspection.config.nLayer);
      expect(half.weights.bytesOnGpu).toBeLessThan(full.weights.bytesOnGpu);
      // The same values the f16 model sees, kept in fp32.
      for (const name of halves) {
        const values = roundToF16(half.table.get(name)!);
        ctx.device.queue.writeBuffer(rounded.weights.buffers.get(name)!, 0, values);
      }
      const V = half.inspection.config.vocabSize;
      const rand = mulberry32(seed + 4);
      const prompt = Array.from({ length: 11 }, () => Math.floor(rand() * V));
      const steps = Array.from({ length: 3 }, () => Math.floor(rand() * V));
      const run = async (w: typeof half) => {
        const model = makeModel(ctx!, w.inspection, w.weights);
        const session = new Session(ctx!, model);
        const all = storageBuffer(ctx!.device, 'Test.allLogits', prompt.length * V * 4);
        session.prefill(prompt, { allLogits: all });
        const out = [await readF32(ctx!.device, all, prompt.length * V)];
        for (const id of steps) {
          session.step(id);
          out.push(await session.readLogits());
        }
        all.destroy();
        session.destroy();
        model.destroy();
        return out;
      };
      const [h, r, f] = [await run(half), await run(rounded), await run(full)];
      h.forEach((logits, i) => expect(relativeError(logits, r[i]!), i === 0 ? 'prefill' : `step ${i}`).toBeLessThanOrEqual(TOL));
      const drift = Math.max(...h.map((logits, i) => relativeError(logits, f[i]!)));
      console.info(`[f16] ${arch}: logits vs unrounded fp32 weights: relative error ${drift.toExponential(2)}`);
      expect(drift).toBeLessThanOrEqual(F16_SANITY);
      for (const w of [half, full, rounded]) w.weights.destroy();
    });
  }
});
