/**
 * Issue 15, defect 13: the end-of-sequence ids a model declares — `eos_token_id` of config.json
 * and generation_config.json (an integer or a list), GGUF `tokenizer.ggml.eos_token_id` — read,
 * checked against the vocabulary, and ignored with a warning naming the file and key when they
 * are not token ids (app/formats/eos.ts); generation_config.json is one of a model's own files.
 * Before the fix nothing read them (ModelInspection had no eosTokenIds).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectModel, summarizeInspection } from '../../app/arch/inspect';
import { MAX_EOS_IDS, readEosTokenIds } from '../../app/formats/eos';
import { isModelFileName, modelOwnFiles } from '../../app/library/model-files';
import { folderModelFiles } from '../../app/node/folder';
import { seededRandom } from '../../app/random';
import { GT, tinyModel } from '../support/gguf-writer';
import { memoryModelFiles } from '../support/memory-model';
import { TINY_CONFIG, writeTinyModel } from '../support/tiny-model';
import { stopReasonText } from '../../renderer/src/components/stop-reason';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('readEosTokenIds', () => {
  const read = (value: unknown, vocab = 100) => readEosTokenIds('m/config.json', 'eos_token_id', value, vocab);

  it('reads an integer and a list of integers (distinct, in order)', () => {
    expect(read(0)).toEqual({ ids: [0] });
    expect(read(99)).toEqual({ ids: [99] });
    expect(read([2, 7, 2, 5])).toEqual({ ids: [2, 7, 5] });
  });

  it('absent, null and an empty list mean none, without a warning', () => {
    expect(read(undefined)).toEqual({ ids: [] });
    expect(read(null)).toEqual({ ids: [] });
    expect(read([])).toEqual({ ids: [] });
  });

  it('refuses an id outside the vocabulary, naming the file, the key and the range', () => {
    expect(read(100)).toEqual({
      ids: [],
      warning: 'm/config.json: "eos_token_id" names token 100, outside the vocabulary 0..99, so it is ignored: generation will not stop at an end-of-sequence token (it runs to the token limit)',
    });
    // One bad id refuses the whole list (a half-read list would stop at some ends and not others).
    expect(read([1, 100])).toMatchObject({ ids: [], warning: expect.stringMatching(/names token 100, outside the vocabulary 0\.\.99/) });
  });

  it.each([['"2"', '2'], ['-1', -1], ['1.5', 1.5], ['true', true], ['[[1]]', [[1]]], ['{"id":1}', { id: 1 }], ['NaN', NaN], ['Infinity', Infinity], ['2^53', 2 ** 53]])(
    'refuses garbage: %s',
    (shown, value) => {
      const got = read(value);
      expect(got.ids).toEqual([]);
      expect(got.warning).toMatch(/^m\/config\.json: "eos_token_id" must be a token id \(an integer ≥ 0\) or a list of them, got /);
      expect(got.warning).toContain(`got ${shown === '2^53' ? String(2 ** 53) : shown}`);
    },
  );

  it(`refuses a list longer than ${MAX_EOS_IDS}`, () => {
    expect(read(Array.from({ length: MAX_EOS_IDS }, (_, i) => i)).ids).toHaveLength(MAX_EOS_IDS);
    expect(read(Array.from({ length: MAX_EOS_IDS + 1 }, (_, i) => i))).toMatchObject({ ids: [], warning: expect.stringMatching(new RegExp(`lists ${MAX_EOS_IDS + 1} ids \\(at most ${MAX_EOS_IDS}`)) });
  });

  it('property: any JSON value gives either ids that are token ids of the vocabulary, or none and a warning', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 1, max: 1000 }), (value, vocab) => {
        const got = read(value, vocab);
        if (got.warning !== undefined) expect(got.ids).toEqual([]);
        for (const id of got.ids) expect(Number.isInteger(id) && id >= 0 && id < vocab).toBe(true);
        expect(new Set(got.ids).size).toBe(got.ids.length);
      }),
    );
  });
});

async function inspectFolder(extra: Record<string, string>, config: Record<string, unknown> = TINY_CONFIG) {
  const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'eos-')), config);
  dirs.push(dir);
  for (const [name, text] of Object.entries(extra)) writeFileSync(path.join(dir, name), text);
  const files = await folderModelFiles(dir);
  try {
    return { dir, inspection: await inspectModel(files) };
  } finally {
    await files.close();
  }
}

describe('a safetensors model: config.json and generation_config.json', () => {
  it('config.json alone: its eos_token_id (int or list); none when absent', async () => {
    expect((await inspectFolder({}, { ...TINY_CONFIG, eos_token_id: 3 })).inspection.eosTokenIds).toEqual([3]);
    expect((await inspectFolder({}, { ...TINY_CONFIG, eos_token_id: [3, 9] })).inspection.eosTokenIds).toEqual([3, 9]);
    const none = (await inspectFolder({})).inspection;
    expect(none.eosTokenIds).toEqual([]);
    expect(none.warnings.join('\n')).not.toMatch(/eos_token_id/);
    expect(summarizeInspection(none).eosTokenIds).toEqual([]);
  });

  it('generation_config.json wins over config.json (as transformers generates)', async () => {
    const { inspection } = await inspectFolder({ 'generation_config.json': JSON.stringify({ eos_token_id: [5, 6] }) }, { ...TINY_CONFIG, eos_token_id: 3 });
    expect(inspection.eosTokenIds).toEqual([5, 6]);
    expect(summarizeInspection(inspection).eosTokenIds).toEqual([5, 6]);
    // Without the key there, config.json's.
    const other = await inspectFolder({ 'generation_config.json': JSON.stringify({ max_new_tokens: 5 }) }, { ...TINY_CONFIG, eos_token_id: 3 });
    expect(other.inspection.eosTokenIds).toEqual([3]);
  });

  it('an out-of-range or garbage value is a warning naming the file; config.json is used instead; the model still opens', async () => {
    const { dir, inspection } = await inspectFolder({ 'generation_config.json': JSON.stringify({ eos_token_id: 16 }) }, { ...TINY_CONFIG, eos_token_id: 2 });
    expect(inspection.eosTokenIds).toEqual([2]);
    expect(inspection.warnings).toContain(
      `${path.join(dir, 'generation_config.json')}: "eos_token_id" names token 16, outside the vocabulary 0..15, so it is ignored: generation will not stop at an end-of-sequence token (it runs to the token limit)`,
    );
    const garbage = await inspectFolder({}, { ...TINY_CONFIG, eos_token_id: 'eos' });
    expect(garbage.inspection.eosTokenIds).toEqual([]);
    expect(garbage.inspection.warnings.some((w) => w.startsWith(`${path.join(garbage.dir, 'config.json')}: "eos_token_id" must be a token id`))).toBe(true);
  });

  it('a generation_config.json that is not JSON is a warning naming it, not an error', async () => {
    const { dir, inspection } = await inspectFolder({ 'generation_config.json': '{"eos_token_id": 1,' }, { ...TINY_CONFIG, eos_token_id: 4 });
    expect(inspection.eosTokenIds).toEqual([4]);
    expect(inspection.warnings.some((w) => w.startsWith(`${path.join(dir, 'generation_config.json')}: not valid JSON`) && w.endsWith('its end-of-sequence token is ignored'))).toBe(true);
  });

  it('generation_config.json is one of the model files the library records and serves', () => {
    expect(isModelFileName('generation_config.json')).toBe(true);
    expect(modelOwnFiles({ format: 'safetensors', weightFiles: ['model.safetensors'] }, ['config.json', 'generation_config.json', 'notes.txt', 'model.safetensors'])).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
    ]);
  });
});

describe('a GGUF model: tokenizer.ggml.eos_token_id', () => {
  const gguf = async (kv: { key: string; type: number; value: number | string }[]) => {
    const model = tinyModel({ arch: 'mamba', vocab: 16, extraKv: kv }, seededRandom(7));
    return inspectModel(memoryModelFiles('g', { 'm.gguf': model.bytes }));
  };

  it('reads it; none without it', async () => {
    expect((await gguf([{ key: 'tokenizer.ggml.eos_token_id', type: GT.U32, value: 11 }])).eosTokenIds).toEqual([11]);
    expect((await gguf([])).eosTokenIds).toEqual([]);
  });

  it('out of range or not an integer: ignored with a warning naming the file and key', async () => {
    const out = await gguf([{ key: 'tokenizer.ggml.eos_token_id', type: GT.U32, value: 16 }]);
    expect(out.eosTokenIds).toEqual([]);
    expect(out.warnings).toContain('g/m.gguf: "tokenizer.ggml.eos_token_id" names token 16, outside the vocabulary 0..15, so it is ignored: generation will not stop at an end-of-sequence token (it runs to the token limit)');
    const text = await gguf([{ key: 'tokenizer.ggml.eos_token_id', type: GT.STRING, value: '</s>' }]);
    expect(text.eosTokenIds).toEqual([]);
    expect(text.warnings.some((w) => w.startsWith('g/m.gguf: "tokenizer.ggml.eos_token_id" must be a token id'))).toBe(true);
  });
});

describe('the app says why a generation stopped', () => {
  it('"end of text" for the eos stop; the other reasons by their names', () => {
    expect(stopReasonText('end-of-text')).toBe('end of text');
    expect(stopReasonText('max-tokens')).toBe('max-tokens');
  });
});
