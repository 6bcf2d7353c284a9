/**
 * Whole models quantized to Q8_0 and Q4_K (issue 17, item 3): each checkpoint is written as GGUF
 * files in llama.cpp's layout and quantization policy (test/support/quantized-gguf.ts) — once all
 * F32, once quantized — loaded with the default weight choice ('auto': the blocks stay on the GPU
 * as stored, decoded inside the matmul / norm-matvec / embedding shaders; checked), and run on the
 * golden prompt: prefill, then greedy decode steps (the F32 run picks the tokens; the quantized run
 * is fed the same ones, so every position compares the same context).
 *
 * Models. Q8_0 (blocks of 32) on the golden fixtures whose d_model and d_inner are multiples of 32:
 * mamba1-bias-untied (64 / 128) and mamba2-groups (64 / 128); every matrix llama.cpp quantizes is
 * then Q8_0 (the Mamba-1 case's in/out_proj biases stay F32). No golden fixture has d_model and
 * d_inner multiples of 256 (Q4_K's super-block; the largest d_model is 64, checked below), so Q4_K
 * runs on two random checkpoints of d_model 256, d_inner 512 (test/support/random-model.ts, fixed
 * seeds), Mamba-1 and Mamba-2, under the 'Q4_K_M' mix llama.cpp gives a Mamba model: Q4_K for
 * token_embd, ssm_in, ssm_out and Q6_K for output. Their F32 run is anchored by (a) below against
 * the float64 CPU reference, which the golden tests check against transformers.
 * The F32 run is the F32 GGUF, not the safetensors: a GGUF Mamba-2 normalizes per group as
 * llama.cpp does (golden-gguf.test.ts), so all three runs share one convention.
 *
 * (a) Exactness: the quantized run's logits (prefill and decode steps) equal a float64 CPU
 * reference (app/arch/registry.ts referenceForward) of the model whose weights are the file's
 * blocks dequantized on the CPU (ggml-quants.ts dequantizeBlocks, through the loader's decoder),
 * within the golden tests' fp32 tolerance, 1e-3 (relative L2 error). This tolerance is also
 * required to be below half the quantization's own effect, so running unquantized weights, or
 * misreading the blocks, cannot pass. The F32 run meets the same tolerance against its reference.
 *
 * (b) The quantization's effect. Per weight, the format's precision: the test quantizers
 * (ggml-quantize.ts) keep every value within half its block's rounding step s, which is read back
 * from the blocks written (quantized-gguf.ts blockSteps) and checked here, per element:
 *   Q8_0  s = d ≤ (1 + 2⁻¹¹)·absmax/127 per block of 32: |err| ≤ 0.39 % of the block's absmax;
 *   Q4_K  s = d·sc_j, the 4-bit step of sub-block j (32 values) ≈ range_j/15 (6-bit scale codes
 *         round it up by ≤ 1/63 of the largest): |err| ≤ ~3.4 % of the sub-block's range;
 *   Q6_K  s = d·sc_j ≈ absmax_j/31 per sub-block of 16: |err| ≤ ~1.6 % of its absmax.
 * To first order the logits move by J·e (J: the logits' Jacobian in the weights, e: the rounding
 * errors). Rounding to a grid much finer than the values' spread leaves errors spread evenly over
 * [−s/2, s/2], independent from weight to weight: zero mean, variance s²/12. So the quantized
 * model is, to first order, one draw of "each weight plus uniform noise of ±s/2", and the size of
 * J·e is measured without knowing J: the CPU reference is run with DRAWS such random perturbations
 * (e_i uniform in [−s_i/2, s_i/2], the steps of the actual blocks) and their logit errors E_k
 * against the F32 reference are the sensitivity. The quantized run's error E_q (GPU, against the
 * GPU F32 run) must lie within a factor 2 of them: min E_k / 2 ≤ E_q ≤ 2·max E_k. The factor
 * allows for second-order terms and for rounding errors not being exactly independent within a
 * block (the block's largest value has a near-zero error); it was set before measuring, not tuned.
 * The lower side also proves the weights really were quantized.
 *
 * Greedy agreement: the fraction of positions (and of decode steps) where the quantized argmax is
 * the F32 one, reported. Asserted at the positions where the F32 top-1/top-2 margin exceeds twice
 * the logit change predicted there (2× the largest |Δlogit| any draw made at that position, the
 * same factor as above): a flip there needs a logit to move by more than the prediction allows.
 * (Twice the change measured in the quantized run itself would guarantee agreement by arithmetic
 * alone; the prediction is independent of the run it checks.)
 * Measured on SwiftShader: Q8_0 25 of 68 positions qualify on each golden case; with Q4_K's ~20×
 * larger logit error no position of the random models does, so there agreement is only reported.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { buildModel } from '../../app/arch/build';
import { referenceForward } from '../../app/arch/registry';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { QUANT_LAYOUT, type QuantType } from '../../app/formats/ggml-quants';
import type { WeightFormat } from '../../app/kernels/weight-format';
import { relativeError } from '../../app/kernels/self-test';
import { loadWeights } from '../../app/model/loader';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { seededRandom } from '../../app/random';
import { readGolden } from '../support/golden';
import { useTestGpu } from '../support/gpu';
import { checkpointToGguf, type QuantPolicy } from '../support/quantized-gguf';
import { writeRandomCheckpoint } from '../support/random-model';

const TOL = 1e-3;
/** Greedy decode steps after the prompt. */
const STEPS = 4;
/** Random perturbations of the weights measuring the logits' sensitivity. */
const DRAWS = 3;
/**
 * Prompt tokens: the golden prompt's first 64 (one prefill chunk; the whole prompts, 96–150 tokens,
 * tripled the run time on SwiftShader), 32 for the d_model-256 models (the CPU reference is plain loops).
 */
const GOLDEN_PROMPT = 64;
const RANDOM_PROMPT = 32;

const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden');
const scratch = mkdtempSync(path.join(tmpdir(), 'golden-quantized-'));

interface Case {
  name: string;
  policy: QuantPolicy;
  /** Golden fixture folder, or a random checkpoint's config (transformers keys) and seed. */
  golden?: string;
  random?: { raw: Record<string, unknown>; seed: number };
}
const random256 = { hidden_size: 256, num_hidden_layers: 2, vocab_size: 256, state_size: 16, conv_kernel: 4, tie_word_embeddings: false };
const CASES: Case[] = [
  { name: 'mamba1-bias-untied', golden: 'mamba1-bias-untied', policy: 'Q8_0' },
  { name: 'mamba2-groups', golden: 'mamba2-groups', policy: 'Q8_0' },
  { name: 'random-mamba1-256', policy: 'Q4_K_M', random: { seed: 1701, raw: { model_type: 'mamba', ...random256, intermediate_size: 512, time_step_rank: 16, use_conv_bias: true } } },
  {
    name: 'random-mamba2-256',
    policy: 'Q4_K_M',
    random: { seed: 1702, raw: { model_type: 'mamba2', ...random256, expand: 2, num_heads: 16, head_dim: 32, n_groups: 2, chunk_size: 64, use_conv_bias: true } },
  },
];

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** GGUF name of a quantized matrix → its canonical name (test/support/quantized-gguf.ts `steps` keys). */
const canonicalOf = (gguf: string) =>
  gguf === 'token_embd.weight' ? 'backbone.embeddings.weight' : gguf === 'output.weight' ? 'lm_head.weight' : gguf.replace(/^blk\.(\d+)\.ssm_(in|out)\.weight$/, 'backbone.layers.$1.mixer.$2_proj.weight');
const argmax = (row: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
};
const rowsOf = (logits: ArrayLike<number>, V: number) => Array.from({ length: logits.length / V }, (_, t) => Array.prototype.slice.call(logits, t * V, (t + 1) * V) as number[]);
/** Largest per-position relative error ‖a_t − b_t‖ / ‖b_t‖. */
const worstRow = (a: ArrayLike<number>, b: ArrayLike<number>, V: number) => {
  const ra = rowsOf(a, V);
  return Math.max(...rowsOf(b, V).map((row, t) => relativeError(ra[t]!, row)));
};
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

/** A GGUF file loaded ('auto') and run: prefill `ids`, then `steps` decode steps fed `feed` (or its own argmax). */
async function runGguf(file: string, ids: number[], steps: number, feed?: number[]) {
  const files = await folderModelFiles(file);
  const inspection = await inspectModel(files);
  expect(inspection.format).toBe('gguf');
  const weights = await loadWeights(ctx!, files, inspection, { weightFormat: 'auto', maxTokens: 64 });
  const table = await readAllTensorsF32(files, inspection);
  await files.close();
  const V = inspection.config.vocabSize;
  const model = buildModel(ctx!, inspection, weights, 64);
  const session = new Session(ctx!, model);
  const prefill = storageBuffer(ctx!.device, 'GoldenQuantized.logits', ids.length * V * 4);
  const logits = new Float32Array((ids.length + steps) * V);
  const fed: number[] = [];
  try {
    session.prefill(ids, { allLogits: prefill });
    logits.set(await readF32(ctx!.device, prefill, ids.length * V));
    for (let s = 0; s < steps; s++) {
      const t = ids.length + s;
      const id = feed ? (feed[s] as number) : argmax(logits.subarray((t - 1) * V, t * V));
      session.step(id);
      fed.push(id);
      logits.set(await session.readLogits(), t * V);
    }
  } finally {
    prefill.destroy();
    session.destroy();
    model.destroy();
  }
  const formats = new Map<string, WeightFormat>(weights.formats ?? []);
  const bytesOnGpu = weights.bytesOnGpu;
  weights.destroy();
  return { logits, fed, formats, bytesOnGpu, inspection, table };
}

describe('whole models quantized to Q8_0 and Q4_K against their fp32 run', () => {
  it('uses the golden fixtures whose dims fit Q8_0; none fits Q4_K', () => {
    const dims = readdirSync(goldenDir)
      .filter((n) => existsSync(path.join(goldenDir, n, 'config.json')))
      .map((n) => {
        const c = JSON.parse(readFileSync(path.join(goldenDir, n, 'config.json'), 'utf8')) as { hidden_size: number; intermediate_size?: number; expand?: number };
        return { n, D: c.hidden_size, Di: c.intermediate_size ?? (c.expand ?? 2) * c.hidden_size };
      });
    expect(dims.filter((d) => d.D % 256 === 0 && d.Di % 256 === 0)).toEqual([]);
    for (const c of CASES.filter((k) => k.golden)) expect(dims.find((d) => d.n === c.golden), c.name).toMatchObject({ D: 64, Di: 128 });
  });

  it.for(CASES)('$name ($policy): exact against the dequantized model, within the format’s sensitivity of fp32', async (c, test) => {
    if (!ctx) return test.skip(skipReason);
    // The checkpoint, as float32 tensors with canonical names, and the prompt.
    let dir: string;
    let ids: number[];
    if (c.golden) {
      dir = path.join(goldenDir, c.golden);
      ids = [...(await (await readGolden(dir)).ints('input_ids'))].slice(0, GOLDEN_PROMPT);
    } else {
      dir = path.join(scratch, c.name);
      writeRandomCheckpoint(dir, c.random!.raw, c.random!.seed);
      ids = [...(await (await readGolden(path.join(goldenDir, 'mamba1-tied'))).ints('input_ids'))].slice(0, RANDOM_PROMPT);
    }
    const files = await folderModelFiles(dir);
    const inspection = await inspectModel(files);
    const checkpoint = await readAllTensorsF32(files, inspection);
    await files.close();
    const write = (policy: QuantPolicy) => {
      const written = checkpointToGguf(c.name, inspection.config, checkpoint, policy);
      const file = path.join(scratch, `${c.name}.${policy}.gguf`);
      writeFileSync(file, written.bytes);
      return { file, ...written };
    };
    const f32File = write('F32');
    const quant = write(c.policy);
    const V = inspection.config.vocabSize;
    const matrices = ['token_embd.weight', 'blk.0.ssm_in.weight', 'blk.1.ssm_out.weight', ...(inspection.config.tieEmbeddings ? [] : ['output.weight'])];
    const wanted = c.policy === 'Q8_0' ? ['Q8_0', 'Q8_0', 'Q8_0', 'Q8_0'] : ['Q4_K', 'Q4_K', 'Q4_K', 'Q6_K'];
    expect(matrices.map((m) => quant.types.get(m))).toEqual(wanted.slice(0, matrices.length));
    for (const [name, type] of quant.types) if (!matrices.includes(name) && !/ssm_(in|out)\.weight$/.test(name)) expect(type, name).toBe('F32');

    const f32 = await runGguf(f32File.file, ids, STEPS);
    const q = await runGguf(quant.file, ids, STEPS, f32.fed);
    // The weights on the GPU are the file's blocks, as stored (the kernels decode them).
    const gpuFormats = ['backbone.embeddings.weight', 'backbone.layers.0.mixer.in_proj.weight', 'backbone.layers.1.mixer.out_proj.weight', 'lm_head.weight'].map((n) => q.formats.get(n));
    expect(gpuFormats.slice(0, matrices.length)).toEqual(wanted.slice(0, matrices.length).map((t) => t.toLowerCase()));
    expect(f32.formats.get('backbone.layers.0.mixer.in_proj.weight')).toBe('f32');
    // And their buffers hold the blocks: the weights' GPU bytes shrink by the matrices' share.
    const matrixElements = [...quant.steps.values()].reduce((n, s) => n + s.length, 0);
    const blockBytes = [...quant.types].filter(([, t]) => t !== 'F32').reduce((n, [name, t]) => n + (quant.steps.get(canonicalOf(name))!.length / QUANT_LAYOUT[t as QuantType].blockSize) * QUANT_LAYOUT[t as QuantType].typeSize, 0);
    expect(f32.bytesOnGpu - q.bytesOnGpu, 'GPU bytes saved').toBeGreaterThanOrEqual(4 * matrixElements - blockBytes - 4096);

    // Per weight: within half of its block's step (the format's precision), and really rounded.
    for (const [name, steps] of quant.steps) {
      const exact = f32.table.get(name)!;
      const rounded = q.table.get(name)!;
      let worst = 0;
      let moved = 0;
      for (let i = 0; i < exact.length; i++) {
        const err = Math.abs((rounded[i] as number) - (exact[i] as number));
        worst = Math.max(worst, err / (0.5 * (steps[i] as number) + 2 ** -23 * Math.abs(exact[i] as number)));
        if (err > 0) moved++;
      }
      expect(worst, `${name}: |error| / (step/2)`).toBeLessThanOrEqual(1);
      expect(moved, name).toBeGreaterThan(exact.length / 2);
    }

    // (a) Each GPU run against the float64 reference of its own weights, on the same tokens.
    const all = [...ids, ...f32.fed];
    const cfg = q.inspection.config;
    const reference = (table: ReadonlyMap<string, Float32Array>) => referenceForward(cfg, (n) => table.get(n), all).logits;
    const refF32 = reference(f32.table);
    const refQ = reference(q.table);
    const exactF32 = relativeError(f32.logits, refF32);
    const exactQ = relativeError(q.logits, refQ);
    const decodeRows = (x: ArrayLike<number>) => Array.prototype.slice.call(x, ids.length * V) as number[];
    const exactQDecode = relativeError(decodeRows(q.logits), decodeRows(refQ));

    // (b) The quantization's effect and the sensitivity to weight noise of the format's size.
    const errQ = relativeError(q.logits, f32.logits);
    const worstQ = worstRow(q.logits, f32.logits, V);
    const maxAbs = maxAbsDiff(q.logits, f32.logits);
    const draws: { err: number; worst: number }[] = [];
    /** Per position, the largest logit change any draw made. */
    const drawMaxAbs = new Float64Array(all.length);
    for (let k = 0; k < DRAWS; k++) {
      const rand = seededRandom(9000 + k);
      const perturbed = new Map(f32.table);
      for (const [name, steps] of quant.steps) {
        const w = f32.table.get(name)!;
        perturbed.set(name, Float32Array.from(w, (v, i) => v + (rand() - 0.5) * (steps[i] as number)));
      }
      const logits = reference(perturbed);
      draws.push({ err: relativeError(logits, refF32), worst: worstRow(logits, refF32, V) });
      for (let t = 0; t < all.length; t++) drawMaxAbs[t] = Math.max(drawMaxAbs[t]!, maxAbsDiff(logits.subarray(t * V, (t + 1) * V), refF32.subarray(t * V, (t + 1) * V)));
    }
    const drawErr = draws.map((d) => d.err);
    const drawWorst = draws.map((d) => d.worst);

    // Greedy agreement, same context at every position.
    const fRows = rowsOf(f32.logits, V);
    const qRows = rowsOf(q.logits, V);
    const same = fRows.map((row, t) => argmax(row) === argmax(qRows[t]!));
    const decodeSame = same.slice(ids.length - 1);
    const margin = (row: number[]) => {
      const top = argmax(row);
      return row[top]! - Math.max(...row.filter((_, i) => i !== top));
    };
    // Where the fp32 margin exceeds twice the predicted bound on the logit change (2× the draws' largest there).
    const confident = fRows.map((row, t) => ({ t, clear: margin(row) > 2 * 2 * drawMaxAbs[t]! })).filter((r) => r.clear).map((r) => r.t);
    const fmt = (x: number) => x.toExponential(2);
    console.info(
      `[quantized] ${c.name} ${c.policy} (${[...new Set(quant.types.values())].join('/')}; GPU ${[...new Set(q.formats.values())].join('/')}), ${ids.length} prompt + ${STEPS} steps: ` +
        `exact vs dequantized ref ${fmt(exactQ)} (decode rows ${fmt(exactQDecode)}), fp32 vs ref ${fmt(exactF32)}; ` +
        `vs fp32: rel L2 ${fmt(errQ)}, worst position ${fmt(worstQ)}, max |Δlogit| ${fmt(maxAbs)}; ` +
        `random ±s/2 draws: rel L2 ${drawErr.map(fmt).join(', ')}, worst position ${drawWorst.map(fmt).join(', ')}; ` +
        `greedy agreement ${same.filter(Boolean).length}/${same.length} positions, ${decodeSame.filter(Boolean).length}/${decodeSame.length} decode steps; ` +
        `asserted at ${confident.length} positions (fp32 margin > 2·predicted |Δlogit|)`,
    );

    expect(exactF32, 'fp32 GPU run vs its float64 reference').toBeLessThanOrEqual(TOL);
    expect(exactQ, 'quantized GPU run vs the float64 reference of the dequantized weights').toBeLessThanOrEqual(TOL);
    expect(exactQDecode, 'decode steps alone').toBeLessThanOrEqual(TOL);
    expect(TOL, 'the exactness tolerance is below half the quantization’s effect').toBeLessThan(errQ / 2);
    expect(errQ, 'quantized vs fp32: at most 2× the random-perturbation error').toBeLessThanOrEqual(2 * Math.max(...drawErr));
    expect(errQ, 'quantized vs fp32: at least half the random-perturbation error').toBeGreaterThanOrEqual(Math.min(...drawErr) / 2);
    expect(worstQ, 'worst position: at most 2× the draws’').toBeLessThanOrEqual(2 * Math.max(...drawWorst));
    for (const t of confident) expect(same[t], `argmax at position ${t} (fp32 margin > 2·predicted |Δlogit|)`).toBe(true);
  });
});
