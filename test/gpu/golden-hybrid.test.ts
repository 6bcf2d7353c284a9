/**
 * Hybrid models against their own libraries (test/fixtures/golden-hybrid, made on the GPU machine
 * by scripts/golden/make_hybrid_golden.py): Nemotron-H and Granite-4.0-H from transformers and
 * mamba_ssm's MambaLMHeadModel with attention layers (attn_layer_idx, its MHA, with a qkv conv in
 * one case) and GatedMLPs. Per case, on the GPU: logits at every position, the residual stream
 * after every block, Δ, x, B and C of the Mamba-2 blocks, the attention probabilities of every
 * head of every attention block (from the q/k taps), all within relative error 1e-3 (the golden
 * tolerance); prefill then steps equals the whole prefill; the greedy continuation identical. The
 * float64 reference (written from the math, app/arch/hybrid/reference.ts) agrees with the golden
 * logits within 1e-4, as the other goldens' float64 self-checks do. Granite-4.0-H (dense) with
 * its multipliers, RoPE in one case and none in the other.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../app/arch/build';
import { referenceForward } from '../../app/arch/registry';
import { readSafetensorsHeader } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { attentionProbs } from '../../app/kernels/attention';
import { submitDispatches } from '../../app/kernels/dispatch';
import { relativeError } from '../../app/kernels/self-test';
import { configBlocks, modelPrefix } from '../../app/model/config';
import { generate } from '../../app/model/generate';
import { Session } from '../../app/model/session';
import { readGolden } from '../support/golden';
import { loadTestModel, useTestGpu } from '../support/gpu';

const TOL = 1e-3;
/** float64 reference vs the library's float32 forward: the golden scripts' self-check bound. */
const REF_TOL = 1e-4;
const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden-hybrid');
const all = existsSync(goldenDir) ? readdirSync(goldenDir).filter((n) => !n.includes('.')).sort() : [];
const supported = all;

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

async function metadata(dir: string): Promise<Record<string, string>> {
  const bytes = readFileSync(path.join(dir, 'golden.safetensors'));
  return (await readSafetensorsHeader(memorySource('golden.safetensors', new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)))).metadata;
}

describe('hybrid models against transformers and mamba_ssm (golden fixtures)', () => {
  it('has the hybrid golden cases', () => {
    expect(all).toEqual(['granite-h-nope', 'granite-h-rope', 'mamba2-attn-conv-ssm', 'mamba2-attn-ssm', 'nemotron-h-odd', 'nemotron-h-tiny']);
  });

  it.for(supported)('%s: blocks as the library runs them; logits, residual stream, Δ/x/B/C, attention probabilities within 1e-3; float64 reference; steps; greedy', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = path.join(goldenDir, name);
    const meta = await metadata(dir);
    const { inspection, weights, table } = await loadTestModel(ctx, dir);
    const c = inspection.config;
    const blocks = configBlocks(c);
    const expectedBlocks = JSON.parse(meta.blocks ?? '[]') as { kind: string; layer: number; norm: string; mixer: string }[];
    expect(blocks.map((b) => [b.kind, b.layer, b.norm, b.mixer])).toEqual(expectedBlocks.map((b) => [b.kind, b.layer, b.norm, b.mixer]));

    const { f32, ints } = await readGolden(dir);
    const ids = await ints('input_ids');
    const T = ids.length;
    const { dModel: D, dInner: Di, dState: N, nGroups: G, nHeads: H, vocabSize: V, nLayer: L } = c;
    const W = Di + 2 * G * N;
    const goldenLogits = await f32('logits');
    const goldenV = goldenLogits.length / T;
    const cols = (data: Float32Array, width: number, stride: number, offset: number, rows = T) => Float32Array.from({ length: rows * width }, (_, i) => data[Math.floor(i / width) * stride + offset + (i % width)]!);

    // float64 reference, from the same files.
    const ref = referenceForward(c, (n) => table.get(n), ids, modelPrefix(inspection.embeddingName));
    const refError = relativeError(Float32Array.from(cols(Float32Array.from(ref.logits), goldenV, V, 0)), goldenLogits);
    expect(refError, 'float64 reference vs the library').toBeLessThanOrEqual(REF_TOL);

    const model = buildModel(ctx, inspection, weights, 128);
    const session = new Session(ctx, model);
    const f = (label: string, n: number) => storageBuffer(ctx!.device, `GoldenHybrid.${label}`, n * 4);
    const logits = f('logits', T * V);
    const a = c.hybrid?.attention;
    const qDim = a ? a.nHeads * a.headDim : 0;
    const kvDim = a ? a.nKvHeads * a.headDim : 0;
    const kinds = blocks.map((b) => b.kind);
    const per = <T,>(kind: string, make: (l: number) => T) => kinds.map((k, l) => (k === kind ? make(l) : undefined));
    const taps = {
      delta: per('ssm', (l) => f(`delta${l}`, T * H)),
      dbc: per('ssm', (l) => f(`xbc${l}`, T * W)),
      hidden: kinds.map((_, l) => f(`hidden${l}`, T * D)),
      attnQ: per('attention', (l) => f(`q${l}`, T * qDim)),
      attnK: per('attention', (l) => f(`k${l}`, T * kvDim)),
    };
    session.prefill(ids, { allLogits: logits, taps });
    const gpuLogits = await readF32(ctx.device, logits, T * V);
    const logitsError = relativeError(cols(gpuLogits, goldenV, V, 0), goldenLogits);
    console.info(`[golden] ${name}: GPU vs ${meta.form}, logits over ${T} positions: ${logitsError.toExponential(2)}; float64 reference ${refError.toExponential(2)}`);
    expect(logitsError, 'logits').toBeLessThanOrEqual(TOL);
    const probs = f('probs', T * T);
    for (let l = 0; l < L; l++) {
      expect(relativeError(await readF32(ctx.device, taps.hidden[l]!, T * D), await f32(`hidden.${l}`)), `hidden ${l}`).toBeLessThanOrEqual(TOL);
      if (kinds[l] === 'ssm') {
        expect(relativeError(await readF32(ctx.device, taps.delta[l]!, T * H), await f32(`layers.${l}.delta`)), `delta ${l}`).toBeLessThanOrEqual(TOL);
        const xbc = await readF32(ctx.device, taps.dbc[l]!, T * W);
        expect(relativeError(cols(xbc, Di, W, 0), await f32(`layers.${l}.x`)), `x ${l}`).toBeLessThanOrEqual(TOL);
        expect(relativeError(cols(xbc, G * N, W, Di), await f32(`layers.${l}.B`)), `B ${l}`).toBeLessThanOrEqual(TOL);
        expect(relativeError(cols(xbc, G * N, W, Di + G * N), await f32(`layers.${l}.C`)), `C ${l}`).toBeLessThanOrEqual(TOL);
      }
      if (kinds[l] === 'attention' && a) {
        const expected = await f32(`layers.${l}.attn_probs`);
        for (let head = 0; head < a.nHeads; head++) {
          const d = attentionProbs(ctx, { tokens: T, nHeads: a.nHeads, nKvHeads: a.nKvHeads, headDim: a.headDim, head, scale: a.scale }, { q: taps.attnQ[l]!, k: taps.attnK[l]!, probs });
          submitDispatches(ctx.device, 'GoldenHybrid.probs', [d]);
          const got = await readF32(ctx.device, probs, T * T);
          d.destroy();
          expect(relativeError(got, expected.subarray(head * T * T, (head + 1) * T * T)), `attention probabilities, block ${l} head ${head}`).toBeLessThanOrEqual(TOL);
        }
      }
    }
    for (const b of [logits, probs, ...Object.values(taps).flat()]) b?.destroy();
    session.destroy();

    // Prefill of t tokens then steps equals the prefill of all of them (the KV caches and SSM states as state).
    for (const steps of [3]) {
      const split = new Session(ctx, model);
      split.prefill(ids.slice(0, T - steps));
      for (const id of ids.slice(T - steps)) split.step(id);
      const last = await split.readLogits();
      expect(relativeError(last.subarray(0, goldenV), goldenLogits.subarray((T - 1) * goldenV, T * goldenV)), `prefill ${T - steps} + ${steps} steps`).toBeLessThanOrEqual(TOL);
      split.destroy();
    }

    const expected = await ints('generated_ids');
    const fresh = new Session(ctx, model);
    const result = await generate(ctx, fresh, ids, { maxTokens: expected.length, temperature: 0 });
    expect(result.ids).toEqual(expected);
    fresh.destroy();
    model.destroy();
    weights.destroy();
  });
});
