/**
 * Mamba-2 with 8 groups against the official mamba_ssm code (test/fixtures/golden-mamba-ssm, made
 * on the GPU machine by scripts/golden/make_mamba_ssm_golden.py): the per-group gated norm as
 * mamba_ssm, mistral-inference and llama.cpp run it. `mamba2-ssm-8groups` is read from mamba_ssm's
 * config.json convention, `codestral-tiny` from mistral's params.json + consolidated.safetensors
 * (BF16), as Mamba-Codestral ships. Logits at all positions, the hidden state after every block,
 * Δ [T, H], B and C [T, 8·N] within relative error 1e-3, the greedy continuation identical,
 * prefill of t tokens then steps equal to the longer prefill. Then the Codestral case with
 * transformers' files beside mistral's: mistral's are read (same logits); transformers' alone run
 * the norm over all of d_inner, as transformers does, and differ from mamba_ssm by what the
 * float64 reference says they should.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../app/arch/build';
import { inspectModel, type ModelInspection } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { readSafetensorsHeader } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { generate } from '../../app/model/generate';
import { loadWeights } from '../../app/model/loader';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { readGolden } from '../support/golden';
import { useTestGpu } from '../support/gpu';
import { writeSafetensors } from '../support/safetensors-writer';

const TOL = 1e-3;
const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden-mamba-ssm');
const cases = existsSync(goldenDir) ? readdirSync(goldenDir).filter((n) => !n.includes('.')).sort() : [];

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

async function open(dir: string) {
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  const weights = await loadWeights(ctx!, files, inspection);
  return { files, inspection, weights };
}

/** Logits at every position of `ids` (the model built from the inspection). */
async function allLogits(inspection: ModelInspection, weights: Awaited<ReturnType<typeof loadWeights>>, ids: number[]): Promise<Float32Array> {
  const model = buildModel(ctx!, inspection, weights, 512);
  const session = new Session(ctx!, model);
  const V = inspection.config.vocabSize;
  const out = storageBuffer(ctx!.device, 'GoldenSsm.logits', ids.length * V * 4);
  session.prefill(ids, { allLogits: out });
  const logits = await readF32(ctx!.device, out, ids.length * V);
  out.destroy();
  session.destroy();
  model.destroy();
  return logits;
}

describe('Mamba-2 with 8 groups against mamba_ssm (golden fixtures)', () => {
  it('has the mamba_ssm golden cases', () => {
    expect(cases).toEqual(['codestral-tiny', 'mamba2-ssm-8groups']);
  });

  it.for(cases)('%s: logits, hidden states, Δ, B, C within 1e-3; greedy identical; prefill then steps', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = path.join(goldenDir, name);
    const { files, inspection, weights } = await open(dir);
    await files.close();
    const c = inspection.config;
    expect(c.nGroups).toBe(8);
    // mamba_ssm's RMSNormGated(group_size = d_inner / ngroups)
    expect(c.normGroupSize).toBe(c.dInner / 8);
    expect(inspection.weightFiles).toEqual(name === 'codestral-tiny' ? ['consolidated.safetensors'] : ['model.safetensors']);
    const { f32, ints } = await readGolden(dir);
    const ids = await ints('input_ids');
    const { dModel: D, dInner: Di, dState: N, nGroups: G, nHeads: H, vocabSize: V, nLayer: L } = c;
    const T = ids.length;
    const W = Di + 2 * G * N;
    const model = buildModel(ctx, inspection, weights, 512);
    const session = new Session(ctx, model);
    const f = (label: string, n: number) => storageBuffer(ctx!.device, `GoldenSsm.${label}`, n * 4);
    const logits = f('logits', T * V);
    const taps = {
      delta: Array.from({ length: L }, (_, l) => f(`delta${l}`, T * H)),
      dbc: Array.from({ length: L }, (_, l) => f(`xbc${l}`, T * W)),
      hidden: Array.from({ length: L }, (_, l) => f(`hidden${l}`, T * D)),
    };
    session.prefill(ids, { allLogits: logits, taps });
    const logitsError = relativeError(await readF32(ctx.device, logits, T * V), await f32('logits'));
    console.info(`[golden] ${name}: GPU vs mamba_ssm, logits over ${T} positions: relative error ${logitsError.toExponential(2)}`);
    expect(logitsError, 'logits').toBeLessThanOrEqual(TOL);
    expect(relativeError(await readF32(ctx.device, model.normedBuffer, T * D), await f32(`hidden_states.${L}`)), 'final norm').toBeLessThanOrEqual(TOL);
    for (let l = 0; l < L; l++) {
      expect(relativeError(await readF32(ctx.device, taps.hidden[l]!, T * D), await f32(`hidden_states.${l}`)), `hidden ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(await readF32(ctx.device, taps.delta[l]!, T * H), await f32(`layers.${l}.delta`)), `delta ${l}`).toBeLessThanOrEqual(TOL);
      const xbc = await readF32(ctx.device, taps.dbc[l]!, T * W);
      const cols = (offset: number, width: number) => Float32Array.from({ length: T * width }, (_, i) => xbc[Math.floor(i / width) * W + offset + (i % width)]!);
      expect(relativeError(cols(0, Di), await f32(`layers.${l}.x`)), `x ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(cols(Di, G * N), await f32(`layers.${l}.B`)), `B ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(cols(Di + G * N, G * N), await f32(`layers.${l}.C`)), `C ${l}`).toBeLessThanOrEqual(TOL);
    }
    for (const b of [logits, ...taps.delta, ...taps.dbc, ...taps.hidden]) b.destroy();
    session.destroy();

    // Prefill of t tokens then steps equals the prefill of all of them (last row of the golden logits).
    const golden = await f32('logits');
    for (const steps of [1, 3]) {
      const split = new Session(ctx, model);
      split.prefill(ids.slice(0, T - steps));
      for (const id of ids.slice(T - steps)) split.step(id);
      expect(relativeError(await split.readLogits(), golden.subarray((T - 1) * V, T * V)), `prefill ${T - steps} + ${steps} steps`).toBeLessThanOrEqual(TOL);
      split.destroy();
    }

    const expected = await ints('generated_ids');
    const fresh = new Session(ctx, model);
    const result = await generate(ctx, fresh, await ints('generate.prompt_ids'), { maxTokens: expected.length, temperature: 0 });
    expect(result.ids).toEqual(expected);
    fresh.destroy();
    model.destroy();
    weights.destroy();
  });

  it("codestral-tiny with transformers' files beside mistral's reads mistral's; transformers' alone norm over all of d_inner", async (test) => {
    if (!ctx) return test.skip(skipReason);
    const source = path.join(goldenDir, 'codestral-tiny');
    const { f32, ints } = await readGolden(source);
    const ids = await ints('input_ids');
    const golden = await f32('logits');
    const bytes = readFileSync(path.join(source, 'golden.safetensors'));
    const header = await readSafetensorsHeader(memorySource('golden.safetensors', new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
    const selfCheck = JSON.parse(header.metadata.self_check ?? '{}') as { logits_rel_diff_if_norm_over_all_of_d_inner?: number };
    const normDiff = selfCheck.logits_rel_diff_if_norm_over_all_of_d_inner;
    expect(normDiff, 'the golden records what the norm over all of d_inner changes').toBeGreaterThan(1e-2);

    // The same weights in transformers' form: config.json (model_type mamba2, the Codestral defaults) + model.safetensors.
    const original = await open(source);
    const table = await readAllTensorsF32(original.files, original.inspection);
    await original.files.close();
    original.weights.destroy();
    const c = original.inspection.config;
    const hf = {
      model_type: 'mamba2', hidden_size: c.dModel, num_hidden_layers: c.nLayer, vocab_size: c.vocabSize, num_heads: c.nHeads, head_dim: c.headDim,
      n_groups: c.nGroups, state_size: c.dState, expand: 2, chunk_size: c.chunkSize, tie_word_embeddings: false, layer_norm_epsilon: 1e-5,
    };
    const hfTensors = Object.fromEntries(
      [...table].map(([name, data]) => [name.replace('backbone.embedding.', 'backbone.embeddings.'), { dtype: 'F32' as const, shape: original.inspection.tensors.get(name)!.shape, data }]),
    );
    const both = mkdtempSync(path.join(tmpdir(), 'codestral-both-'));
    for (const f of ['params.json', 'consolidated.safetensors']) copyFileSync(path.join(source, f), path.join(both, f));
    writeFileSync(path.join(both, 'config.json'), JSON.stringify(hf));
    writeFileSync(path.join(both, 'model.safetensors'), writeSafetensors(hfTensors));

    const mixed = await open(both);
    await mixed.files.close();
    expect(mixed.inspection.weightFiles).toEqual(['consolidated.safetensors']);
    expect(relativeError(await allLogits(mixed.inspection, mixed.weights, ids), golden)).toBeLessThanOrEqual(TOL);
    mixed.weights.destroy();

    const hfOnly = mkdtempSync(path.join(tmpdir(), 'codestral-hf-'));
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(path.join(both, f), path.join(hfOnly, f));
    const transformers = await open(hfOnly);
    await transformers.files.close();
    expect(transformers.inspection.config.normGroupSize).toBe(c.dInner);
    const diff = relativeError(await allLogits(transformers.inspection, transformers.weights, ids), golden);
    transformers.weights.destroy();
    console.info(`[golden] codestral-tiny read as transformers (norm over all of d_inner): ${diff.toExponential(3)} from mamba_ssm; float64 reference says ${normDiff!.toExponential(3)}`);
    expect(Math.abs(diff - normDiff!)).toBeLessThanOrEqual(TOL * normDiff!);
  });
});
