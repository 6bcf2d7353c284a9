/**
 * Issue 14, item 7 (in-process): deep JSON nesting, duplicate keys and a byte order mark in a
 * safetensors header, a header of 600,000 empty tensors, FIFOs as model files, and config values
 * that passed `info` and failed later on the GPU (chunk_size 0, epsilon ≤ 0, Δ limits min > max).
 * Each case is a ModelFileError naming the file and the problem, within a time and heap budget.
 */
import { execFileSync } from 'node:child_process';
import { constants, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { MAX_CONFIG_DEPTH, parseConfigJson } from '../../app/formats/config';
import { ModelFileError } from '../../app/formats/errors';
import { MAX_HEADER_BYTES, MAX_HEADER_DEPTH, MAX_TENSORS, readSafetensorsHeader } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { folderModelFiles } from '../../app/node/folder';
import { memoryModelFiles, tinyModelBytes } from '../support/memory-model';
import { TINY_CONFIG, writeTinyModel } from '../support/tiny-model';
import { measure, MiB } from '../support/within-budget';

/** safetensors bytes with this header text (padded to 8) and `data` bytes after it. */
function safetensorsWithHeader(header: string | Uint8Array, data = 0): Uint8Array {
  const bytes = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + bytes.byteLength + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(bytes.byteLength), true);
  out.set(bytes, 8);
  return out;
}

async function headerError(bytes: Uint8Array, budget = { ms: 250, heap: 16 * MiB }): Promise<ModelFileError> {
  const m = await measure(() => readSafetensorsHeader(memorySource('m/model.safetensors', bytes)), true);
  if (!(m.error instanceof ModelFileError)) throw new Error(`expected a ModelFileError, got ${m.error === undefined ? 'a header' : String(m.error)}`);
  expect(m.ms).toBeLessThan(budget.ms);
  expect(m.heapGrowth).toBeLessThan(budget.heap);
  expect(m.error.file).toBe('m/model.safetensors');
  return m.error;
}

describe('safetensors headers the reference implementation refuses', () => {
  it('a duplicate "dtype" in an entry', async () => {
    const e = await headerError(safetensorsWithHeader('{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,2]}}', 2));
    expect(e.problem).toBe('key "dtype" appears twice in an entry of the header (at character 20)');
  });

  it('a duplicate tensor name, also when spelled with an escape', async () => {
    const entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    const e = await headerError(safetensorsWithHeader(`{"a":${entry},"\\u0061":${entry}}`, 4));
    expect(e.problem).toMatch(/^key "a" appears twice in the header \(at character \d+\)$/);
  });

  it('a UTF-8 byte order mark before the JSON', async () => {
    const json = new TextEncoder().encode('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
    const e = await headerError(safetensorsWithHeader(Uint8Array.from([0xef, 0xbb, 0xbf, ...json]), 4));
    expect(e.problem).toBe('header starts with a UTF-8 byte order mark; a safetensors header is plain JSON starting with "{"');
  });

  it('an empty header (a file of zeros) is not valid JSON, as before', async () => {
    const e = await headerError(new Uint8Array(64));
    expect(e.problem).toBe('header is not valid JSON (it is empty)');
  });

  it('keys that only look alike are not duplicates; keys inside strings are not keys', async () => {
    const header = await readSafetensorsHeader(
      memorySource('m.safetensors', safetensorsWithHeader('{"__metadata__":{"a":"\\",\\"a\\":","b":"a"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4)),
    );
    expect(header.metadata).toEqual({ a: '","a":', b: 'a' });
    expect([...header.tensors.keys()]).toEqual(['a']);
  });
});

describe('deep JSON nesting does not overflow the stack', () => {
  it('a safetensors shape nested 1,000,000 deep is refused by depth, before JSON.parse', async () => {
    const depth = 1_000_000;
    const header = `{"a":{"dtype":"F32","shape":${'['.repeat(depth)}${']'.repeat(depth)},"data_offsets":[0,0]}}`;
    const e = await headerError(safetensorsWithHeader(header), { ms: 500, heap: 16 * MiB });
    expect(e.problem).toBe(`header nests JSON deeper than ${MAX_HEADER_DEPTH} levels (a valid one nests 3)`);
  });

  it('a shape nested within the depth limit gets its own message, its value cut short', async () => {
    const e = await headerError(safetensorsWithHeader(`{"a":{"dtype":"F32","shape":[[[[[1,2,3]]]]],"data_offsets":[0,0]}}`));
    expect(e.problem).toBe('tensor "a": shape [[[[[1,2,3]]]]] is not a list of non-negative integers');
    const long = await headerError(safetensorsWithHeader(`{"a":{"dtype":"F32","shape":[${Array(100_000).fill('-1').join(',')}],"data_offsets":[0,0]}}`));
    expect(long.problem.length).toBeLessThan(200);
  });

  it('config.json nested 1,000,000 deep is a ModelFileError naming the file', async () => {
    const depth = 1_000_000;
    const text = `{"model_type":"mamba","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const m = await measure(() => inspectModel(memoryModelFiles('m', tinyModelBytes(text))), true);
    expect(m.error).toBeInstanceOf(ModelFileError);
    expect((m.error as ModelFileError).message).toBe(`m/config.json: JSON nested deeper than ${MAX_CONFIG_DEPTH} levels (at character 89)`);
    expect(m.ms).toBeLessThan(1000);
  });

  it('config.json nesting up to the limit still parses (and bare Infinity/NaN inside it)', () => {
    const depth = MAX_CONFIG_DEPTH - 1;
    const raw = parseConfigJson('c.json', `{"x":${'['.repeat(depth)}NaN${']'.repeat(depth)},"y":-Infinity}`);
    let x: unknown = raw.x;
    for (let i = 0; i < depth; i++) x = (x as unknown[])[0];
    expect(x).toBeNaN();
    expect(raw.y).toBe(-Infinity);
  });
});

describe('a header of hundreds of thousands of tensors is refused before any map is built', () => {
  const emptyTensors = (n: number) => {
    const parts = ['{'];
    for (let i = 0; i < n; i++) parts.push(`${i ? ',' : ''}"backbone.layers.${i}.mixer.empty":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
    parts.push('}');
    return parts.join('');
  };

  it('600,000 empty tensors in a 50 MB header (7.5 s and 1.1 GB before): refused by its length, nothing read', async () => {
    const header = emptyTensors(600_000);
    expect(header.length).toBeGreaterThan(50e6);
    const bytes = safetensorsWithHeader(header);
    const e = await headerError(bytes, { ms: 100, heap: 4 * MiB });
    expect(e.problem).toBe(`header length ${header.length} is larger than any real safetensors header (limit ${MAX_HEADER_BYTES} bytes)`);
  });

  it('more than MAX_TENSORS entries in a header under the length limit: refused while counting', async () => {
    const header = emptyTensors(MAX_TENSORS + 1);
    expect(header.length).toBeLessThan(MAX_HEADER_BYTES);
    // The header text itself is ~9 MB (decoded once); the maps of 100,001 entries would be far more.
    const e = await headerError(safetensorsWithHeader(header), { ms: 1500, heap: 4 * header.length });
    expect(e.problem).toBe(`header lists more than ${MAX_TENSORS} tensors, more than any real model file`);
  });
});

describe('config values that passed info and failed on the GPU are refused at info', () => {
  const MAMBA2 = { model_type: 'mamba2', hidden_size: 8, num_hidden_layers: 2, vocab_size: 16, num_heads: 4, head_dim: 4, n_groups: 2, state_size: 4 };
  const SSM2 = { d_model: 8, n_layer: 2, vocab_size: 16, ssm_cfg: { layer: 'Mamba2', headdim: 4, ngroups: 2, d_state: 4 } };

  it.each([
    ['chunk_size 0', { ...MAMBA2, chunk_size: 0 }, MAMBA2, '"chunk_size" is 0: tokens per chunk (chunk_size) must be an integer from 1 to 65536'],
    ['layer_norm_epsilon 0', { ...TINY_CONFIG, layer_norm_epsilon: 0 }, TINY_CONFIG, '"layer_norm_epsilon" is 0: the norm epsilon must be > 0 and ≤ 1'],
    ['layer_norm_epsilon −1e-5', { ...MAMBA2, layer_norm_epsilon: -1e-5 }, MAMBA2, '"layer_norm_epsilon" is -0.00001: the norm epsilon must be > 0 and ≤ 1'],
    ['time_step_limit [5, −5]', { ...MAMBA2, time_step_limit: [5, -5] }, MAMBA2, '"time_step_limit" is [5, -5]: Δ\'s limits must be [min, max] with 0 ≤ min ≤ max (max may be Infinity)'],
    ['mamba_ssm dt_limit [5, −5]', { ...SSM2, ssm_cfg: { ...SSM2.ssm_cfg, dt_limit: [5, -5] } }, SSM2, '"ssm_cfg.dt_limit" is [5, -5]: Δ\'s limits must be [min, max] with 0 ≤ min ≤ max (max may be Infinity)'],
    ['mamba_ssm dt_limit "wide"', { ...SSM2, ssm_cfg: { ...SSM2.ssm_cfg, dt_limit: 'wide' } }, SSM2, '"ssm_cfg.dt_limit" must be [min, max], got "wide"'],
    ['mamba_ssm chunk_size 0', { ...SSM2, ssm_cfg: { ...SSM2.ssm_cfg, chunk_size: 0 } }, SSM2, '"ssm_cfg.chunk_size" is 0: tokens per chunk (chunk_size) must be an integer from 1 to 65536'],
    ['mamba_ssm norm_epsilon −1', { ...SSM2, norm_epsilon: -1 }, SSM2, '"norm_epsilon" is -1: the norm epsilon must be > 0 and ≤ 1'],
  ])('%s', async (_, config, weights, problem) => {
    const m = await measure(() => inspectModel(memoryModelFiles('m', tinyModelBytes(config, weights))));
    expect(m.error).toBeInstanceOf(ModelFileError);
    expect((m.error as ModelFileError).message).toBe(`m/config.json: ${problem}`);
  });

  it('the same tiny models with valid values inspect fine (the weights match)', async () => {
    for (const config of [MAMBA2, SSM2, TINY_CONFIG, { ...MAMBA2, time_step_limit: [0.001, 100], chunk_size: 64 }]) {
      const inspection = await inspectModel(memoryModelFiles('m', tinyModelBytes(config, config)));
      expect(inspection.config.nLayer).toBe(2);
    }
  });
});

describe('a FIFO (or any non-regular file) as a model file is refused before it is opened', () => {
  let fifos: string[] = [];
  afterEach(() => {
    // Were a reader blocked in open() on one (the bug), a non-blocking writer's open frees it.
    for (const fifo of fifos) {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // ENXIO: nobody is blocked on it
      }
    }
    fifos = [];
  });

  const mkfifo = (file: string) => {
    execFileSync('mkfifo', [file]);
    fifos.push(file);
    return file;
  };

  /** inspectModel on `target`, given 2 s (the bug: forever). */
  async function inspectPath(target: string): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve('still waiting after 2 s'), 2000);
    });
    const attempt = (async () => {
      const files = await folderModelFiles(target);
      try {
        return await inspectModel(files);
      } finally {
        await files.close();
      }
    })().catch((error: unknown) => error);
    const outcome = await Promise.race([attempt, timeout]);
    clearTimeout(timer);
    return outcome;
  }

  it('the model path itself is a FIFO', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fifo-'));
    const fifo = mkfifo(path.join(dir, 'model.safetensors'));
    const outcome = await inspectPath(fifo);
    expect(outcome).toBeInstanceOf(ModelFileError);
    expect((outcome as ModelFileError).message).toBe(`${fifo}: is a named pipe (FIFO), not a regular file; a model's files must be regular files`);
    rmSync(dir, { recursive: true });
  });

  it('config.json beside a weights file is a FIFO', async () => {
    const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'fifo-')));
    rmSync(path.join(dir, 'config.json'));
    const fifo = mkfifo(path.join(dir, 'config.json'));
    const outcome = await inspectPath(path.join(dir, 'model.safetensors'));
    expect(outcome).toBeInstanceOf(ModelFileError);
    expect((outcome as ModelFileError).message).toBe(`${fifo}: is a named pipe (FIFO), not a regular file; a model's files must be regular files`);
    rmSync(dir, { recursive: true });
  });

  it('a device as the model path', async () => {
    const outcome = await inspectPath('/dev/zero');
    expect(outcome).toBeInstanceOf(ModelFileError);
    expect((outcome as ModelFileError).message).toBe("/dev/zero: is a device, not a regular file; a model's files must be regular files");
  });

  it('a regular model next to a FIFO still opens (the FIFO is not one of its files)', async () => {
    const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'fifo-')));
    mkfifo(path.join(dir, 'notes.txt'));
    writeFileSync(path.join(dir, 'README.md'), 'hello');
    const outcome = await inspectPath(dir);
    expect(outcome).toMatchObject({ architecture: 'mamba' });
    rmSync(dir, { recursive: true });
  });
});
