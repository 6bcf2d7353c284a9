/**
 * The whole-model quantization helper (test/support/quantized-gguf.ts): llama.cpp's policy (which
 * tensors are quantized to what, the F32 fallback for rows that are not whole blocks), the steps it
 * reads back from the blocks, and a written file that the GGUF reader opens with those types.
 */
import { describe, expect, it } from 'vitest';
import { openGguf } from '../../app/arch/gguf';
import { dequantize } from '../../app/formats/ggml';
import { memorySource } from '../../app/formats/source';
import type { MambaConfig } from '../../app/model/config';
import { seededRandom } from '../../app/random';
import { quantize } from '../support/ggml-quantize';
import { blockSteps, checkpointToGguf, policyType } from '../support/quantized-gguf';

describe('quantized-gguf', () => {
  it('quantizes the big matrices only, Q6_K for the output under Q4_K_M, F32 where rows are not whole blocks', () => {
    expect(policyType('token_embd.weight', [300, 256], 'Q4_K', false)).toBe('Q4_K');
    expect(policyType('blk.3.ssm_in.weight', [1024, 256], 'Q8_0', false)).toBe('Q8_0');
    expect(policyType('blk.3.ssm_out.weight', [256, 512], 'Q4_K_M', false)).toBe('Q4_K');
    expect(policyType('output.weight', [300, 256], 'Q4_K_M', false)).toBe('Q6_K');
    expect(policyType('token_embd.weight', [300, 256], 'Q4_K_M', false)).toBe('Q4_K');
    expect(policyType('token_embd.weight', [300, 256], 'Q4_K_M', true)).toBe('Q6_K'); // tied: the embedding is the output
    for (const name of ['blk.0.ssm_x.weight', 'blk.0.ssm_dt.weight', 'blk.0.ssm_conv1d.weight', 'blk.0.ssm_a', 'blk.0.attn_norm.weight', 'output_norm.weight']) {
      expect(policyType(name, [256, 256], 'Q8_0', false), name).toBe('F32');
    }
    expect(policyType('blk.0.ssm_in.weight', [256, 64], 'Q4_K', false)).toBe('F32'); // 64 is not a whole 256-block
    expect(policyType('blk.0.ssm_in.weight', [256, 48], 'Q8_0', false)).toBe('F32');
    expect(policyType('blk.0.ssm_in.weight', [256, 64], 'F32', false)).toBe('F32');
  });

  it.each(['Q8_0', 'Q4_K', 'Q6_K'] as const)('%s: blockSteps gives each element’s step; every value is within half of it', (type) => {
    const rand = seededRandom(5);
    const values = Float32Array.from({ length: 1024 }, () => (rand() - 0.4) * (1 + 9 * rand()));
    const bytes = quantize(type, values);
    const steps = blockSteps(type, bytes);
    const back = dequantize('w.gguf', { name: 'w', dtype: type }, bytes);
    expect(steps.length).toBe(values.length);
    for (let i = 0; i < values.length; i++) {
      expect(steps[i]).toBeGreaterThan(0);
      expect(Math.abs((back[i] as number) - (values[i] as number))).toBeLessThanOrEqual((steps[i] as number) / 2 + 1e-6 * Math.abs(values[i] as number));
    }
    // The decoded values of one block (Q8_0) / sub-block (K) lie on a grid of that step.
    const grid = type === 'Q8_0' ? 32 : type === 'Q4_K' ? 32 : 16;
    for (let j = 1; j < grid; j++) {
      const k = ((back[j] as number) - (back[0] as number)) / (steps[0] as number);
      expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-3);
    }
  });

  it('writes a Mamba-1 checkpoint the GGUF reader opens with the policy’s types', async () => {
    const config = { architecture: 'mamba', dModel: 256, dInner: 512, dState: 4, dConv: 4, dtRank: 8, nLayer: 1, vocabSize: 40, normEps: 1e-5 } as MambaConfig;
    const rand = seededRandom(9);
    const t = (n: number) => Float32Array.from({ length: n }, () => rand() - 0.5);
    const m = 'backbone.layers.0.mixer.';
    const table = new Map<string, Float32Array>([
      ['backbone.embeddings.weight', t(40 * 256)],
      ['backbone.layers.0.norm.weight', t(256)],
      [`${m}in_proj.weight`, t(1024 * 256)],
      [`${m}conv1d.weight`, t(512 * 4)],
      [`${m}conv1d.bias`, t(512)],
      [`${m}x_proj.weight`, t(16 * 512)],
      [`${m}dt_proj.weight`, t(512 * 8)],
      [`${m}dt_proj.bias`, t(512)],
      [`${m}A_log`, t(512 * 4)],
      [`${m}D`, t(512)],
      [`${m}out_proj.weight`, t(256 * 512)],
      ['backbone.norm_f.weight', t(256)],
      ['lm_head.weight', t(40 * 256)],
    ]);
    const written = checkpointToGguf('tiny', config, table, 'Q4_K_M');
    const { table: read, check, config: back } = await openGguf(memorySource('tiny.gguf', written.bytes));
    expect(check.warnings).toEqual([]);
    expect(back).toMatchObject({ architecture: 'mamba', dModel: 256, dInner: 512, tieEmbeddings: false });
    const dtype = (n: string) => read.tensors.get(n)?.dtype;
    expect([dtype('backbone.embeddings.weight'), dtype(`${m}in_proj.weight`), dtype(`${m}out_proj.weight`), dtype('lm_head.weight')]).toEqual(['Q4_K', 'Q4_K', 'Q4_K', 'Q6_K']);
    expect([dtype(`${m}x_proj.weight`), dtype(`${m}dt_proj.weight`), dtype(`${m}conv1d.weight`), dtype(`${m}A_log`), dtype(`${m}D`)]).toEqual(['F32', 'F32', 'F32', 'F32', 'F32']);
    expect([...written.steps.keys()].sort()).toEqual(['backbone.embeddings.weight', `${m}in_proj.weight`, `${m}out_proj.weight`, 'lm_head.weight'].sort());
  });
});
