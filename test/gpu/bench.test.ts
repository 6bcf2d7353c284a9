/**
 * Smoke test of the benchmark harness on this machine's adapter with a tiny model: it runs and
 * writes the documented JSON fields, for a list of storage formats too (random weights made on the
 * GPU), each with the memory plan. No timing is asserted (speed is judged from bench output).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomWeights, runBench, shapeConfig } from '../../app/bench/bench';
import type { GpuContext } from '../../app/gpu/context';
import { useTestGpu } from '../support/gpu';

const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'dist/cli/cli.js');
let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

describe('npm run bench', () => {
  it('runs on a tiny model and writes the JSON fields', (test) => {
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first)');
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'bench-')), 'bench.json');
    const run = spawnSync(process.execPath, [cli, 'bench', '--shape', 'tiny', '--prefill', '16,40', '--decode', '8', '--repeats', '1', '--out', out], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    expect(result).toMatchObject({ arch: 'mamba', model: 'tiny', d_model: 64, n_layer: 2, dtype: 'f32', weight_formats: 'fp32' });
    // The plan made before allocating counts the weights the random model then allocates.
    expect(result.memory_plan).toMatchObject({ source: 'planMemory (app/model/memory-plan.ts)', weights: { total: (result.gpu_memory_bytes as { weights: number }).weights }, trace: null });
    expect(Object.keys(result.prefill_tok_s as object)).toEqual(['16', '40']);
    expect(result.decode_tok_s).toBeGreaterThan(0);
    expect(result.decode_sampled_tok_s, "decode with the app's sampling").toBeGreaterThan(0);
    // The CPU a step takes (encoding it is never free), and its share of a token in the log.
    expect(result.decode_step_cpu_ms).toBeGreaterThan(0);
    expect(Number.isFinite(result.decode_step_cpu_ms)).toBe(true);
    expect(run.stderr).toMatch(/the CPU encodes and submits a step in \d+\.\d{3} ms, \d+ % of a token's time/);
    // The GPU time of a step where the adapter has timestamps (SwiftShader's Dawn has them), else a note why not.
    if (result.decode_step_gpu_ms === undefined) expect(result.notes).toContain('no timestamp-query on this adapter (or no valid timestamps): no decode_step_gpu_ms');
    else {
      expect(result.decode_step_gpu_ms).toBeGreaterThan(0);
      expect(run.stderr).toMatch(/decode step on the GPU \(timestamps of its passes\): \d+\.\d{3} ms a step, \d+ % of a token's \d+\.\d{3} ms/);
    }
    // A sampling's GPU time with the first stage and over the whole vocabulary (app's sampling and greedy), or a note why not.
    if (result.sampler_gpu_ms === undefined) expect(result.notes).toContain('no timestamp-query on this adapter (or no valid timestamps): no sampler_gpu_ms');
    else {
      const positive = { candidates: expect.any(Number), whole_vocabulary: expect.any(Number) };
      expect(result.sampler_gpu_ms).toMatchObject({ default_sampling: positive, greedy: positive });
      const ms = result.sampler_gpu_ms as Record<string, Record<string, number>>;
      for (const m of Object.values(ms)) for (const v of Object.values(m)) expect(v).toBeGreaterThan(0);
      expect(run.stderr).toMatch(/a sampling of \d+ logits on the GPU: app's sampling \d+\.\d{3} ms with candidates, \d+\.\d{3} ms over the whole vocabulary; greedy /);
    }
    expect(typeof result.adapter).toBe('string');
    expect(typeof result.date).toBe('string');
    expect(result.gpu_memory_bytes).toMatchObject({ weights: expect.any(Number), activations: expect.any(Number), state: expect.any(Number) });
    expect(result.ceilings).toMatchObject({ copy_gb_s: expect.any(Number), gemm_tflop_s: expect.any(Number) });
    expect(Array.isArray(result.kernels) || (result.notes as string[]).some((n) => /timestamp/.test(n))).toBe(true);
  });

  it('runs a list of storage formats, each with its dtype, the formats it got and the memory plan', (test) => {
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first)');
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'bench-')), 'bench.json');
    const args = ['bench', '--shape', 'tiny-k', '--weights', 'f16,q4_k_m', '--prefill', '8', '--decode', '4', '--repeats', '1', '--warmup', '0', '--no-ceilings', '--no-breakdown', '--out', out];
    const run = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const [f16, q4km] = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>[];
    expect(f16).toMatchObject({ model: 'tiny-k', dtype: 'f16', weight_formats: 'f16' });
    // Q4_K for the matrices, Q6_K for the (tied) embedding, dt_proj fp32 (the scan's fused step reads it).
    expect(q4km).toMatchObject({ model: 'tiny-k', dtype: 'q4_k_m', weight_formats: 'q4_k + q6_k + fp32' });
    for (const r of [f16, q4km] as { gpu_memory_bytes: { weights: number }; memory_plan: { weights: { total: number }; total: number } }[]) {
      expect(r.memory_plan.weights.total).toBe(r.gpu_memory_bytes.weights);
      expect(r.memory_plan.total).toBeGreaterThan(r.memory_plan.weights.total);
    }
    const bad = spawnSync(process.execPath, [cli, 'bench', '--shape', 'tiny', '--weights', 'f16,q3_k'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr.split('\n')[0]).toBe(`error: --weights takes 'all' or a list of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, got "q3_k"`);
  });

  it('sweeps every combination of the tuning lists, the first list outermost, each result naming its setting', (test) => {
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first)');
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'bench-')), 'bench.json');
    const args = ['bench', '--shape', 'tiny', '--weights', 'f32,f16', '--scan-lanes', '8,4', '--prefill', '8', '--decode', '2', '--repeats', '1', '--warmup', '0', '--no-ceilings', '--no-breakdown', '--out', out];
    const run = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const results = JSON.parse(readFileSync(out, 'utf8')) as { dtype: string; scan_lanes?: number }[];
    expect(results.map((r) => [r.dtype, r.scan_lanes])).toEqual([
      ['f32', 8],
      ['f32', 4],
      ['f16', 8],
      ['f16', 4],
    ]);
  });

  it('--decode-xproj separate,folded: the Mamba-1 decode kernels of each (x_proj a kernel of its own, or folded into in_proj and the step)', (test) => {
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first)');
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'bench-')), 'bench.json');
    const args = ['bench', '--shape', 'tiny', '--decode-xproj', 'separate,folded', '--prefill', '8', '--decode', '2', '--repeats', '1', '--warmup', '0', '--no-ceilings', '--out', out];
    const run = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const results = JSON.parse(readFileSync(out, 'utf8')) as { decode_xproj?: string; decode_xproj_check?: { tokens: number; tokens_equal: number }; decode_tok_s: number; kernels: { name: string }[] }[];
    const decodeKernels = (r: { kernels: { name: string }[] }) => r.kernels.map((k) => k.name).filter((n) => n.startsWith('decode ') && !n.includes('Mamba.')).sort();
    expect(results.map((r) => r.decode_xproj)).toEqual(['separate', 'folded']);
    expect(decodeKernels(results[0]!)).toEqual(['decode dt_proj_scan', 'decode norm_in_proj_conv', 'decode out_proj_residual', 'decode x_proj']);
    expect(decodeKernels(results[1]!)).toEqual(['decode norm_in_proj_conv_x_proj', 'decode out_proj_residual', 'decode x_proj_dt_proj_scan']);
    for (const r of results) expect(r.decode_tok_s).toBeGreaterThan(0);
    // The folded run's greedy tokens against the separate x_proj's (here both take the general
    // decode path, as every session on a software adapter does: the check's plumbing, not the GPU's).
    expect(results[0]!.decode_xproj_check).toBeUndefined();
    expect(results[1]!.decode_xproj_check).toEqual({ tokens: 64, tokens_equal: 64 });
  });

  it('--prefill-matmul int8: refused by the CLI without int8 tensor cores; runBench reports its kernel, bytes and accuracy against fp32', async (test) => {
    if (!ctx) return test.skip(skipReason);
    if (existsSync(cli) && ctx.adapter.software) {
      const refused = spawnSync(process.execPath, [cli, 'bench', '--shape', 'tiny', '--prefill', '8', '--prefill-matmul', 'fp32,int8'], { encoding: 'utf8' });
      expect(refused.status).toBe(2);
      expect(refused.stderr).toMatch(/^error: --prefill-matmul int8 needs int8 tensor cores through WebGPU \(the subgroup-matrix feature\), which .+ does not offer$/m);
    }
    // The op itself runs anywhere (the portable kernel here): the bench's int8 fields on a tiny model, chunks of 70 tokens.
    const prepared = randomWeights(ctx, shapeConfig('tiny'), 1, 'f16');
    try {
      const settings = { prefillTokens: [70], decodeTokens: 2, repeats: 1, warmup: 0, chunk: 70, ceilings: false, breakdown: false, weightChoice: 'auto' as const };
      const r = await runBench(ctx, 'tiny', prepared.inspection, prepared.weights, { ...settings, prefillMatmul: 'int8' }, () => undefined);
      expect(r.prefill_matmul).toBe('int8');
      expect(r.int8_prefill).toMatchObject({ kernel: ctx.adapter.software ? 'portable' : expect.any(String), bytes: r.memory_plan.int8Prefill, accuracy: { tokens: 70, prompts: 3 } });
      const a = r.int8_prefill!.accuracy;
      expect(a.logit_rel_err_median, 'int8 moves the logits').toBeGreaterThan(0);
      expect(a.logit_rel_err_max).toBeGreaterThanOrEqual(a.logit_rel_err_median);
      expect(a.logit_rel_err_max, 'by a quantization error, not garbage').toBeLessThan(0.3);
      expect(r.memory_plan).toMatchObject({ prefillMatmul: 'int8' });
      const fp32 = await runBench(ctx, 'tiny', prepared.inspection, prepared.weights, settings, () => undefined);
      expect(fp32.prefill_matmul).toBe('fp32');
      expect(fp32.int8_prefill).toBeUndefined();
      expect(fp32.memory_plan.total).toBe(r.memory_plan.total - r.memory_plan.int8Prefill);
    } finally {
      prepared.weights.destroy();
    }
  });
});
