/**
 * The engine's `attentionPattern` request on a hybrid (test/fixtures/golden-hybrid/nemotron-h-tiny:
 * blocks M * − M − * M, 4 query heads over 2 KV heads), end to end through `Engine.handle`: a
 * trace of a random-length prefix of the fixture's prompt, then each head and the mean over heads
 * of both attention blocks, against transformers' attention probabilities (`layers.<b>.attn_probs`,
 * whose top-left T × T block is the prefix's: attention is causal) within 1e-3; the loaded model's
 * info names its blocks by kind and its KV cache; clear errors for SSM / MLP blocks, heads that do
 * not exist; a cancelled request fails with "Cancelled.".
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../app/engine/engine';
import { relativeError } from '../../app/kernels/self-test';
import { readGolden } from '../support/golden';
import { testSeed, useNodeGpu } from '../support/gpu';
import { engineCaller, filesSource } from '../support/engine-source';

/** fp32 on the GPU against transformers' fp32 (the issue's bound). */
const TOL = 1e-3;
const dir = path.resolve(import.meta.dirname, '../fixtures/golden-hybrid/nemotron-h-tiny');
let gpu: GPU | null = null;
let skipReason = '';
useNodeGpu((found) => ({ gpu, skipReason } = found));

describe('engine: attention pattern of a hybrid’s attention blocks', () => {
  it('equals transformers’ attention probabilities per head and their mean; info names the blocks', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const engine = new Engine(gpu, () => undefined, 'node');
    const send = engineCaller(engine);
    const info = await send('loadModel', { modelId: 'h', source: filesSource(dir) });
    expect(info.blocks.map((b) => b.kind)).toEqual(['ssm', 'attention', 'mlp', 'ssm', 'mlp', 'attention', 'ssm']);
    expect(info.blocks.map((b) => b.layer)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(info.attentionHeads).toBe(4);
    // max_position_embeddings 512; keys and values of 2 KV heads × 16 dims and a mask word, in 2 attention blocks.
    expect(info.kvCache).toMatchObject({ capacity: 512, bytesPerToken: 2 * 4 * (2 * 2 * 16 + 1) });
    expect(info.ssmStateBytes).toBeGreaterThan(0);

    const golden = await readGolden(dir);
    const all = [...(await golden.ints('input_ids'))];
    const full = all.length;
    // A fresh odd prefix length each run (13 … 41).
    const T = 13 + 2 * (testSeed() % 15);
    const ids = all.slice(0, T);
    const trace = await send('trace', { modelId: 'h', prompt: { ids } });
    expect(trace.layers).toEqual([0, 3, 6]);
    const block = (probs: Float32Array, head: number) => {
      const out = new Float32Array(T * T);
      for (let i = 0; i < T; i++) out.set(probs.subarray(head * full * full + i * full, head * full * full + i * full + T), i * T);
      return out;
    };
    for (const layer of [1, 5]) {
      const expected = await golden.f32(`layers.${layer}.attn_probs`);
      const mean = new Float64Array(T * T);
      for (let head = 0; head < 4; head++) {
        const want = block(expected, head);
        want.forEach((v, i) => (mean[i] = (mean[i] as number) + v / 4));
        const got = await send('attentionPattern', { modelId: 'h', traceId: trace.traceId, layer, head });
        expect(got).toMatchObject({ layer, head, heads: 4, tokens: T });
        expect(relativeError(got.probs, want), `block ${layer} head ${head}, T ${T}`).toBeLessThanOrEqual(TOL);
      }
      const got = await send('attentionPattern', { modelId: 'h', traceId: trace.traceId, layer, head: 'mean' });
      expect(relativeError(got.probs, Float32Array.from(mean)), `block ${layer} mean over heads`).toBeLessThanOrEqual(TOL);
      // Rows are distributions over the keys j ≤ i.
      for (let i = 0; i < T; i++) {
        let sum = 0;
        for (let j = 0; j < T; j++) {
          const p = got.probs[i * T + j] as number;
          if (j > i) expect(p, `p[${i}, ${j}] above the diagonal`).toBe(0);
          sum += p;
        }
        expect(Math.abs(sum - 1), `row ${i} sums to 1`).toBeLessThan(1e-5);
      }
    }

    await expect(send('attentionPattern', { modelId: 'h', traceId: trace.traceId, layer: 0, head: 0 })).rejects.toThrow('layer 0 is an SSM (Mamba) block, not an attention block');
    await expect(send('attentionPattern', { modelId: 'h', traceId: trace.traceId, layer: 2, head: 0 })).rejects.toThrow('layer 2 is an MLP block, not an attention block');
    await expect(send('attentionPattern', { modelId: 'h', traceId: trace.traceId, layer: 7, head: 0 })).rejects.toThrow('there is no layer 7 (the model has 7)');
    await expect(send('attentionPattern', { modelId: 'h', traceId: trace.traceId, layer: 1, head: 4 })).rejects.toThrow('there is no head 4 (layer 1 has 4)');

    // Cancelled between submits: "Cancelled.", and the engine still answers afterwards.
    const running = engine.handle({ id: 900, kind: 'attentionPattern', params: { modelId: 'h', traceId: trace.traceId, layer: 1, head: 'mean' } });
    await engine.handle({ id: 901, kind: 'cancel', params: { requestId: 900 } });
    const reply = await running;
    expect(reply.ok ? 'finished' : reply.error).toBe('Cancelled.');
    const again = await send('attentionPattern', { modelId: 'h', traceId: trace.traceId, layer: 5, head: 2 });
    expect(relativeError(again.probs, block(await golden.f32('layers.5.attn_probs'), 2))).toBeLessThanOrEqual(TOL);
    await send('unloadModel', {});
  });
});
