/**
 * Smoke test of the benchmark harness on this machine's adapter with a tiny model: it runs and
 * writes the documented JSON fields. No timing is asserted (speed is judged from bench output).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'dist/cli/cli.js');

describe('npm run bench', () => {
  it('runs on a tiny model and writes the JSON fields', (test) => {
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first)');
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'bench-')), 'bench.json');
    const run = spawnSync(process.execPath, [cli, 'bench', '--shape', 'tiny', '--prefill', '16,40', '--decode', '8', '--repeats', '1', '--out', out], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    expect(result).toMatchObject({ arch: 'mamba', model: 'tiny', d_model: 64, n_layer: 2, dtype: 'f32' });
    expect(Object.keys(result.prefill_tok_s as object)).toEqual(['16', '40']);
    expect(result.decode_tok_s).toBeGreaterThan(0);
    expect(typeof result.adapter).toBe('string');
    expect(typeof result.date).toBe('string');
    expect(result.gpu_memory_bytes).toMatchObject({ weights: expect.any(Number), activations: expect.any(Number), state: expect.any(Number) });
    expect(result.ceilings).toMatchObject({ copy_gb_s: expect.any(Number), gemm_tflop_s: expect.any(Number) });
    expect(Array.isArray(result.kernels) || (result.notes as string[]).some((n) => /timestamp/.test(n))).toBe(true);
  });
});
