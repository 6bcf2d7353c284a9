/**
 * Issue 17, item 2 (the built CLI, `npm run build:cli` first): `info` prints the memory plan of the
 * model (app/model/memory-plan.ts) next to its existing fields, for --weights and --max-tokens, and
 * says when loading would be refused (here: --memory, a device memory given in decimal GB).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TINY_PARAMETERS, writeTinyModel } from '../support/tiny-model';

const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'dist/cli/cli.js');

beforeAll(() => {
  if (!existsSync(cli)) throw new Error('dist/cli/cli.js is not built: run npm run build:cli first (npm test builds it)');
});

const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'cli-info-memory-')));
const info = (...args: string[]) => spawnSync(process.execPath, [cli, 'info', '--model', dir, ...args], { encoding: 'utf8', timeout: 30_000 });

interface InfoJson {
  architecture: string;
  parameters: number;
  tensors: Record<string, unknown>;
  memory: {
    weightChoice: string;
    maxTokens: number;
    weights: { total: number; byFormat: { format: string; bytes: number; tensors: number }[] };
    state: number;
    activations: number;
    trace: { tokens: number; gpu: number; cpu: number } | null;
    total: number;
    limits: unknown;
    fits: boolean | null;
    summary: string;
    refused: string | null;
  };
}

describe('cli info: the memory plan', () => {
  it('the existing fields stay; "memory" has the weights (4 bytes per parameter in fp32), state, activations per chunk and the total', () => {
    const r = info('--weights', 'f32', '--max-tokens', '64');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const json = JSON.parse(r.stdout) as InfoJson;
    expect(json.architecture).toBe('mamba');
    expect(json.parameters).toBe(TINY_PARAMETERS);
    expect(Object.keys(json.tensors).length).toBeGreaterThan(0);
    const m = json.memory;
    expect(m).toMatchObject({ weightChoice: 'f32', maxTokens: 64, trace: null, limits: null, fits: null, refused: null });
    expect(m.weights.total).toBe(4 * TINY_PARAMETERS);
    expect(m.weights.byFormat).toEqual([{ format: 'f32', bytes: 4 * TINY_PARAMETERS, tensors: Object.keys(json.tensors).length }]);
    expect(m.total).toBe(m.weights.total + m.state + m.activations);
    expect(m.summary).toMatch(/^needs [\d.]+ (KB|MB): weights [\d.]+, state [\d.]+, activations [\d.]+$/);
    // A larger prefill chunk needs more activations; a trace adds its buffers.
    const bigger = (JSON.parse(info('--weights', 'f32', '--max-tokens', '1024').stdout) as InfoJson).memory;
    expect(bigger.activations).toBeGreaterThan(m.activations);
    const traced = (JSON.parse(info('--weights', 'f32', '--max-tokens', '64', '--trace-tokens', '500').stdout) as InfoJson).memory;
    expect(traced.trace).toMatchObject({ tokens: 500, gpu: expect.any(Number), cpu: expect.any(Number) });
    expect(traced.total).toBe(m.total + (traced.trace?.gpu ?? 0));
  });

  it('--prefill-matmul int8: the projections\' int8 codes and a chunk of activation codes, padded to 64, in the total and the summary', () => {
    const plain = (JSON.parse(info('--weights', 'f32', '--max-tokens', '100').stdout) as InfoJson).memory;
    const r = info('--weights', 'f32', '--max-tokens', '100', '--prefill-matmul', 'int8');
    expect(r.stderr).toBe('');
    const json = JSON.parse(r.stdout) as InfoJson & { config: { dModel: number; dInner: number }; tensors: Record<string, { shape: number[] }> };
    const m = json.memory as InfoJson['memory'] & { prefillMatmul: string; int8Prefill: number };
    const pad = (v: number) => Math.ceil(v / 64) * 64;
    const codes = (rows: number, cols: number) => pad(rows) * pad(cols) + 4 * pad(rows);
    let expected = codes(100, Math.max(json.config.dModel, json.config.dInner));
    const projections = Object.entries(json.tensors).filter(([name]) => /\.mixer\.(in|x|dt|out)_proj\.weight$/.test(name));
    expect(projections.length).toBeGreaterThan(0);
    for (const [, t] of projections) expected += codes(t.shape[0] as number, t.shape[1] as number);
    expect(m).toMatchObject({ prefillMatmul: 'int8', int8Prefill: expected });
    expect(m.total).toBe(plain.total + expected);
    expect(m.summary).toMatch(/, int8 prefill [\d.]+$/);
    expect(info('--prefill-matmul', 'int4').stderr.split('\n')[0]).toBe('error: --prefill-matmul takes fp32, int8, got "int4"');
  });

  it('without --max-tokens: the chunk run and the app build for, 8,192 tokens for this small model (memory unknown here), 2,048 or 256 under a budget that holds only those', () => {
    const plan = (...args: string[]) => (JSON.parse(info('--weights', 'f32', ...args).stdout) as InfoJson).memory;
    const chosen = plan();
    const long = plan('--max-tokens', '8192');
    const large = plan('--max-tokens', '2048');
    const small = plan('--max-tokens', '256');
    // A small model: its activations for 8,192 tokens are under a gigabyte (memory-plan.ts LONG_CHUNK_ACTIVATIONS).
    expect(long.activations).toBeLessThan(1e9);
    expect(chosen).toEqual(long);
    expect(chosen.maxTokens).toBe(8192);
    expect(long.total).toBeGreaterThan(large.total);
    expect(large.total).toBeGreaterThan(small.total);
    // A budget between two plans: the larger chunk that fits.
    expect(plan('--memory', String((long.total + large.total) / 2 / 1e9))).toMatchObject({ maxTokens: 2048, activations: large.activations, fits: true, refused: null });
    const between = plan('--memory', String((large.total + small.total) / 2 / 1e9));
    expect(between).toMatchObject({ maxTokens: 256, activations: small.activations, fits: true, refused: null });
  });

  it('--memory below the total: "refused" has the message loading would give; above it, fits', () => {
    const m = (JSON.parse(info('--memory', '0.000001').stdout) as InfoJson).memory;
    expect(m.fits).toBe(false);
    expect(m.refused).toMatch(/ needs [\d.]+ MB: weights [\d.]+, state [\d.]+, activations [\d.]+ — more than the budget of 1 KB \(gpuMemoryBudget\)$/);
    expect((JSON.parse(info('--memory', '1').stdout) as InfoJson).memory).toMatchObject({ fits: true, refused: null });
  });

  const swiftShader = '/usr/lib/chromium/vk_swiftshader_icd.json';
  it.runIf(existsSync(swiftShader))('--gpu: the adapter\'s limits (no tensor over them here) and its memory, unknown for SwiftShader: not refused', () => {
    const r = spawnSync(process.execPath, [cli, 'info', '--model', dir, '--gpu'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, VK_ICD_FILENAMES: swiftShader } });
    expect(r.status).toBe(0);
    const m = (JSON.parse(r.stdout) as InfoJson).memory as InfoJson['memory'] & { oversize: unknown[]; device: { bytes: number | null; source: string }; adapter: string };
    expect(m.limits).toEqual({ maxStorageBufferBindingSize: expect.any(Number), maxBufferSize: expect.any(Number) });
    expect(m.oversize).toEqual([]);
    expect(m.device).toMatchObject({ bytes: null, source: 'unknown' });
    expect(m.adapter).toMatch(/swiftshader/i);
    expect(m).toMatchObject({ fits: null, refused: null });
  });

  it.each([
    [['--weights', 'f64'], 'error: --weights takes auto, f32, f16, got "f64"'],
    [['--max-tokens', '0'], 'error: --max-tokens must be a whole number from 1 to 65536, got "0"'],
    [['--memory', '-4'], 'error: --memory must be a positive number of GB, got "-4"'],
  ])('usage error %j', (args, message) => {
    const r = info(...args);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(message);
    expect(r.stdout).toBe('');
  });
});
