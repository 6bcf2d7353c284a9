/**
 * Issue 14, item 7 (the built CLI, `npm run build:cli` first): `info` output over 64 KiB arrives
 * whole through a pipe, and malformed run options are usage errors (exit 2, the usage text),
 * reported before any model or GPU is opened.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TINY_CONFIG, writeTinyModel } from '../support/tiny-model';
import { benchDawnFlags } from '../../app/node/dawn';

const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'dist/cli/cli.js');

beforeAll(() => {
  if (!existsSync(cli)) throw new Error('dist/cli/cli.js is not built: run npm run build:cli first (npm test builds it)');
});

/**
 * Runs `cli info` with its stdout a pipe that this process reads slowly: after the first chunk it
 * stops reading until the child has exited (or 2 s have passed), as a busy `| consumer` would.
 * A CLI that exits without flushing loses what the pipe could not hold.
 */
function infoThroughSlowPipe(model: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'info', '--model', model], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let exited = false;
    let code: number | null = null;
    let paused = false;
    child.stdout.on('data', (chunk: Buffer) => {
      out.push(chunk);
      if (paused) return;
      paused = true;
      child.stdout.pause();
      const started = Date.now();
      const wait = setInterval(() => {
        if (exited || Date.now() - started > 2000) {
          clearInterval(wait);
          child.stdout.resume();
        }
      }, 20);
    });
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('exit', (c) => {
      exited = true;
      code = c;
    });
    child.on('error', reject);
    child.on('close', () => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

describe('cli info through a pipe', () => {
  it('a 64-layer model: the whole JSON (over 64 KiB) arrives and parses', async () => {
    const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'cli-64-')), { ...TINY_CONFIG, num_hidden_layers: 64 });
    const { code, stdout, stderr } = await infoThroughSlowPipe(dir);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(Buffer.byteLength(stdout)).toBeGreaterThan(65_536);
    const info = JSON.parse(stdout) as { config: { nLayer: number }; tensors: Record<string, unknown> };
    expect(info.config.nLayer).toBe(64);
    expect(Object.keys(info.tensors)).toHaveLength(2 + 64 * 10); // embedding, norm_f; per layer its norm and 9 mixer tensors
  });
});

describe('cli run: malformed options are usage errors, before the model is opened', () => {
  const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'cli-usage-')));
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'run', '--model', dir, ...args], { encoding: 'utf8', timeout: 30_000 });

  it.each([
    [['--input-ids', '1,,2'], 'error: --input-ids must be comma-separated token ids (whole numbers ≥ 0), got "1,,2"'],
    [['--input-ids', '1,2,'], 'error: --input-ids must be comma-separated token ids (whole numbers ≥ 0), got "1,2,"'],
    [['--input-ids', ''], 'error: --input-ids must be comma-separated token ids (whole numbers ≥ 0), got ""'],
    [['--input-ids', '1', '--max-tokens', '2.5'], 'error: --max-tokens must be a whole number from 0 to 2147483647, got "2.5"'],
    [['--input-ids', '1', '--max-tokens', '-1'], 'error: --max-tokens must be a whole number from 0 to 2147483647, got "-1"'],
    [['--input-ids', '1', '--top-k', '1e3'], 'error: --top-k must be a whole number from 0 to 4294967295, got "1e3"'],
    [['--input-ids', '1', '--top-p', '0'], 'error: --top-p must be a number in (0, 1], got "0"'],
    [['--input-ids', '1', '--temperature', ' '], 'error: --temperature must be a number ≥ 0, got " "'],
    [['--input-ids', '1', '--weights', 'f64'], 'error: --weights takes auto, f32, f16, got "f64"'],
    [['--input-ids', '1', '--prefill-matmul', 'int4'], 'error: --prefill-matmul takes fp32, int8, got "int4"'],
    [['--input-ids', '1', '--prefill-matmul', 'fp32,int8'], 'error: --prefill-matmul takes one of fp32, int8 here, got "fp32,int8"'],
    [['--input-ids', '1', '--seed', '0x10'], 'error: --seed must be a whole number from 0 to 4294967295, got "0x10"'],
    // --ignore-eos (issue 15, defect 13) is a flag: it takes no value, so the next option is read as itself.
    [['--ignore-eos', '--input-ids', '1', '--max-tokens', 'x'], 'error: --max-tokens must be a whole number from 0 to 2147483647, got "x"'],
    [['--input-ids', '1', '--ignore-eos', 'yes'], 'error: unknown argument "yes"'],
  ])('%j', (args, message) => {
    const r = run(...args);
    expectUsageError(r, message);
    expect(r.stderr).not.toContain('not a model-file error');
  });
});

/** `bench --shape tiny` with more arguments (a usage error stops it before any GPU is opened). */
const bench = (...args: string[]) => spawnSync(process.execPath, [cli, 'bench', '--shape', 'tiny', ...args], { encoding: 'utf8', timeout: 30_000 });

/** Exit status 2, `message` then the usage line on stderr, nothing on stdout. */
function expectUsageError(r: { status: number | null; stderr: string; stdout: string }, message: string): void {
  expect(r.status).toBe(2);
  const lines = r.stderr.split('\n');
  expect(lines[0]).toBe(message);
  expect(lines[1]).toMatch(/^usage: mamba-studio-cli <command>/);
  expect(r.stdout).toBe('');
}

describe('cli bench: malformed --matvec settings are usage errors, before a GPU is opened', () => {
  const usage = '(format: threads×rows×unroll @ workgroups)';

  it.each([
    ['32x2', `error: --matvec takes items like 32x2x4, q4_k:32x4x2 or q4_k:@512 ${usage}, got "32x2"`],
    ['q4_k:', `error: --matvec takes items like 32x2x4, q4_k:32x4x2 or q4_k:@512 ${usage}, got "q4_k:"`],
    ['32x2x4,@', `error: --matvec takes items like 32x2x4, q4_k:32x4x2 or q4_k:@512 ${usage}, got "@"`],
    ['q9_k:@512', 'error: --matvec: unknown storage format "q9_k" in "q9_k:@512" (known: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k)'],
    ['@0', 'error: --matvec: the workgroups after @ must be ≥ 1, got "@0"'],
  ])('--matvec %j', (value, message) => {
    expectUsageError(bench('--matvec', value), message);
  });
});

describe('cli bench: malformed --grid settings are usage errors, before a GPU is opened', () => {
  const grid = (g: string) => `error: --grid takes off, auto or N[:IxOxU] with N a power of two (at most 65536), got "${g}"`;
  const shape = (g: string) => `error: --grid: rows a group (I, O) take 1..8 and loads in flight (U) at least 1, with rows × U ≤ 16, got "${g}"`;

  it.each([
    ['3', grid('3')],
    ['0', grid('0')],
    ['on', grid('on')],
    ['off,256:4x2', grid('256:4x2')],
    ['131072', grid('131072')],
    ['256:9x1x1', shape('256:9x1x1')],
    ['256:4x2x0', shape('256:4x2x0')],
    ['auto,256:8x2x4', shape('256:8x2x4')],
  ])('--grid %j', (value, message) => {
    expectUsageError(bench('--grid', value), message);
  });
});


// The tuning lists a bench sweeps in turn (app/cli.ts sweepList, and --tc-kernel's and --conv's names).
describe('cli bench: a malformed tuning list is a usage error, before a GPU is opened', () => {
  const kernels = (got: string) => `error: --tc-kernel takes a list of single, double, wide, wide-deep, quad, big, got "${got}"`;
  it.each([
    ['--scan-chunk', '32', 'error: --scan-chunk takes 64..65536 tokens, got 32'],
    ['--scan-chunk', '64,70000', 'error: --scan-chunk takes 64..65536 tokens, got 70000'],
    ['--scan-chunk', '64,x', 'error: --scan-chunk takes positive integers, got "64,x"'],
    ['--scan-lanes', '3', 'error: --scan-lanes takes powers of two from 1 to 32, got 3'],
    ['--scan-lanes', '8,64', 'error: --scan-lanes takes powers of two from 1 to 32, got 64'],
    ['--scan-lanes', '8,x', 'error: --scan-lanes takes positive integers, got "8,x"'],
    ['--ssd-chunk', '8', 'error: --ssd-chunk takes 16..1024 tokens, got 8'],
    ['--ssd-chunk', '64,2048', 'error: --ssd-chunk takes 16..1024 tokens, got 2048'],
    ['--int8-split-groups', '512', "error: --int8-split-groups takes 1..256 workgroups (the partials of a larger target outgrow the model's split-K scratch), got 512"],
    ['--int8-split-groups', '0', 'error: --int8-split-groups takes positive integers, got "0"'],
    ['--tc-kernel', 'wide,huge', kernels('wide,huge')],
    ['--tc-kernel', 'toString', kernels('toString')],
    ['--tc-kernel', '', kernels('')],
    ['--conv', 'k4,k8', 'error: --conv takes a list of loop, k4, got "k4,k8"'],
    ['--conv', 'toString', 'error: --conv takes a list of loop, k4, got "toString"'],
    ['--ssd-tile', 'wide,square', 'error: --ssd-tile takes a list of narrow, wide, got "wide,square"'],
    ['--decode-xproj', 'folded,fused', 'error: --decode-xproj takes a list of separate, folded, got "folded,fused"'],
    ['--decode-loads', 'early,soon', 'error: --decode-loads takes a list of early, late, got "early,soon"'],
    ['--decode-depth', '3,17', 'error: --decode-depth takes 2..16 samplings, got 17'],
    ['--decode-depth', '1', 'error: --decode-depth takes 2..16 samplings, got 1'],
    ['--decode-batch', '2,9', 'error: --decode-batch takes 1..8 steps, got 9'],
    ['--prefill-scan', 'channel,lanes', 'error: --prefill-scan takes a list of parallel, channel, serial, got "channel,lanes"'],
    ['--split-groups', '0', 'error: --split-groups takes positive integers, got "0"'],
    ['--split-groups', '256,big', 'error: --split-groups takes positive integers, got "256,big"'],
  ])('%s %j', (flag, value, message) => {
    expectUsageError(bench(flag, value), message);
  });
});

describe('cli bench --dawn-features: Dawn toggles for a measurement', () => {
  it('merges the toggles with the unsafe APIs into one enable-dawn-features flag (Dawn reads one)', () => {
    expect(benchDawnFlags(false, [])).toEqual(['disable-dawn-features=timestamp_quantization']);
    expect(benchDawnFlags(true, [])).toEqual(['disable-dawn-features=timestamp_quantization', 'enable-dawn-features=allow_unsafe_apis']);
    expect(benchDawnFlags(true, ['disable_robustness'])).toEqual(['disable-dawn-features=timestamp_quantization', 'enable-dawn-features=allow_unsafe_apis,disable_robustness']);
    expect(benchDawnFlags(false, ['disable_robustness', 'skip_validation'])).toEqual(['disable-dawn-features=timestamp_quantization', 'enable-dawn-features=disable_robustness,skip_validation']);
  });

  it.each(['Disable', 'a,,b', 'x=y', ''])('refuses %j as a usage error, before a GPU is opened', (value) => {
    expectUsageError(bench('--dawn-features', value), `error: --dawn-features takes Dawn toggle names (e.g. disable_robustness), got "${value}"`);
  });
});
