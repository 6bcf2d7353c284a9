/**
 * The tokenizer embedded in a GGUF file's metadata (app/tokenizer/gguf.ts), checked against the
 * real GPT-NeoX tokenizer.json (shared/data) run through the same BpeTokenizer, and against the
 * ids of the Rust `tokenizers` library (the golden file), as independent references: a GGUF whose
 * tokenizer.ggml.* keys hold that tokenizer.json, written the way llama.cpp's converter writes
 * them, must give the same ids and the same text.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../../app/formats/errors';
import { readGgufHeader } from '../../app/formats/gguf-reader';
import { inspectModel, tokenizerSource, type ModelInspection } from '../../app/arch/inspect';
import type { ModelFiles } from '../../app/formats/model-files';
import { memorySource } from '../../app/formats/source';
import { ggufTokenizerJson, ggufTokenizerText } from '../../app/tokenizer/gguf';
import { BpeTokenizer, TokenizerError, tokenizerFor, type Tokenizer } from '../../app/tokenizer/index';
import { GT, tinyModel, writeGguf, type WriterKv } from '../support/gguf-writer';
import { modelError } from '../support/model-error';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NEOX_PATH = path.resolve(repoRoot, '../shared/data/gpt-neox-20b-tokenizer.json');
const GOLDEN_PATH = path.resolve(repoRoot, 'test/fixtures/golden/tokenizer.json');
const neoxJson = existsSync(NEOX_PATH) ? readFileSync(NEOX_PATH, 'utf8') : null;
const NO_NEOX = `needs ${NEOX_PATH} (the GPT-NeoX tokenizer.json, kept in shared/data, not in the repo)`;
const golden = existsSync(GOLDEN_PATH)
  ? (JSON.parse(readFileSync(GOLDEN_PATH, 'utf8')) as { cases: { name: string; text: string; ids: number[]; decoded: string; decoded_skip_special: string }[] })
  : null;

// ---------------------------------------------------------------------------------------------
// Helpers

/** A model's files held in memory (a GGUF file, and maybe a tokenizer.json beside it). */
function memoryFiles(folder: string, files: Record<string, Uint8Array | string>): ModelFiles {
  const bytes = (file: string) => {
    const f = files[file];
    if (f === undefined) throw new ModelFileError(`${folder}/${file}`, 'no such file');
    return typeof f === 'string' ? new TextEncoder().encode(f) : f;
  };
  return {
    name: folder,
    list: async () => Object.keys(files),
    pathOf: (file) => `${folder}/${file}`,
    open: async (file) => memorySource(`${folder}/${file}`, bytes(file)),
    readText: async (file) => new TextDecoder().decode(bytes(file)),
  };
}

/** A tiny Mamba GGUF with `vocab` embedding rows whose tokenizer.* keys are exactly `tokenizerKv`. */
function ggufWithTokenizer(vocab: number, tokenizerKv: WriterKv[]): Uint8Array {
  const { spec } = tinyModel({ arch: 'mamba', vocab, dModel: 4, nLayer: 1 }, () => 0.5);
  spec.kv = [...spec.kv.filter((kv) => !kv.key.startsWith('tokenizer.')), ...tokenizerKv];
  return writeGguf(spec);
}

const str = (key: string, value: string): WriterKv => ({ key, type: GT.STRING, value });
const strings = (key: string, value: string[]): WriterKv => ({ key, type: GT.ARRAY, itemType: GT.STRING, value });
const ints = (key: string, value: number[]): WriterKv => ({ key, type: GT.ARRAY, itemType: GT.I32, value });
const u32 = (key: string, value: number): WriterKv => ({ key, type: GT.U32, value });
const bool = (key: string, value: boolean): WriterKv => ({ key, type: GT.BOOL, value });


async function inspect(folder: string, files: Record<string, Uint8Array | string>): Promise<{ inspection: ModelInspection; files: ModelFiles }> {
  const model = memoryFiles(folder, files);
  return { inspection: await inspectModel(model), files: model };
}

/** The tokenizer the engine would make (app/engine/engine.ts loadModel), or null. */
async function engineTokenizer(inspection: ModelInspection, files: ModelFiles): Promise<Tokenizer | null> {
  if (inspection.tokenizer === 'none') return null;
  const { json, file } = await tokenizerSource(files, inspection);
  return tokenizerFor(inspection.config.vocabSize, json, file);
}

// ---------------------------------------------------------------------------------------------
// GPT-NeoX: tokenizer.json → GGUF keys, as llama.cpp's converter writes them (convert_hf_to_gguf.py
// `get_vocab_base`: every id in order; added tokens by content, special ones CONTROL, the others
// USER_DEFINED; the merges as "a b" strings).

interface TokenizerJsonFile {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: { vocab: Record<string, number>; merges: string[] };
}

function neoxKv(count?: number, extra: WriterKv[] = []): WriterKv[] {
  const json = JSON.parse(neoxJson as string) as TokenizerJsonFile;
  const tokens: string[] = [];
  const types: number[] = [];
  for (const [token, id] of Object.entries(json.model.vocab)) {
    tokens[id] = token;
    types[id] = 1;
  }
  for (const t of json.added_tokens) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? 3 : 4;
  }
  const n = count ?? tokens.length;
  expect(tokens.slice(0, n).every((t) => typeof t === 'string')).toBe(true); // no holes
  return [
    str('tokenizer.ggml.model', 'gpt2'),
    str('tokenizer.ggml.pre', 'olmo'),
    strings('tokenizer.ggml.tokens', tokens.slice(0, n)),
    ints('tokenizer.ggml.token_type', types.slice(0, n)),
    strings('tokenizer.ggml.merges', json.model.merges),
    u32('tokenizer.ggml.bos_token_id', 0),
    u32('tokenizer.ggml.eos_token_id', 0),
    u32('tokenizer.ggml.unknown_token_id', 0),
    ...extra,
  ];
}

const TEXTS = [
  'Hello, world!',
  'The quick brown fox jumps over the lazy dog.',
  '',
  ' ',
  '\n',
  'emoji 😀🎉 and a family 👨‍👩‍👧‍👦 and a flag 🇯🇵, skin 👍🏽, 🏳️‍🌈',
  '日本語のテキスト 中文字符和标点，。！ 한국어 Ελληνικά русский עברית مرحبا हिन्दी',
  'combining e\u0301 vs é, Z͑̇a̐l͒g͆o, ﬁ ligature, \u00a0nbsp\u200bzero-width, \uFEFFbom',
  '  two leading, trailing   ',
  'x' + ' '.repeat(24) + 'y' + ' '.repeat(30) + 'z' + ' '.repeat(7) + '!',
  'tabs\tand\t\ttabs\r\nwindows\n\n\nthree newlines\n        indented',
  'numbers 1234567890 3.14159 -42 1e-10 0x1F 1,000,000.00 2024-11-28 12:34:56',
  'def f(x):\n    return x ** 2  # square\n\nclass A:\n\tpass\n',
  'if (a && b) { console.log(`${a}`); } // <html><body class="x">&amp;</body></html>',
  "don't won't I'm you're they'll CAPS MiXeD",
  'before<|endoftext|>after <|padding|> and <|endoftext|><|endoftext|>',
  '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello',
  'math: ∑ ∫ √ ∞ ≤ ≥ ≠ ± × ÷ — “quotes” ‘single’ … €£¥',
  'repeated !!!!!!!!!! ????? ........ ------',
  'https://example.com/path?q=1&r=2#frag email@example.com @mention #hashtag',
  'Tokyo東京Москва🚀 mix',
];

function expectSameTokenizer(gguf: Tokenizer, reference: Tokenizer, texts: readonly string[]) {
  expect(gguf.kind).toBe('bpe');
  expect(gguf.vocabSize).toBe(reference.vocabSize);
  expect([...gguf.specialIds].sort((a, b) => a - b)).toEqual([...reference.specialIds].sort((a, b) => a - b));
  for (const text of texts) {
    const ids = reference.encode(text);
    expect(gguf.encode(text), JSON.stringify(text)).toEqual(ids);
    expect(gguf.decode(ids), JSON.stringify(text)).toBe(reference.decode(ids));
    expect(gguf.decode(ids, { skipSpecialTokens: true })).toBe(reference.decode(ids, { skipSpecialTokens: true }));
  }
}

describe('GGUF tokenizer from GPT-NeoX-20B keys', () => {
  let cached: { inspection: ModelInspection; tokenizer: Tokenizer; reference: BpeTokenizer } | null = null;
  /** One GGUF with all 50281 tokens and a padded embedding of 50288 rows, opened as the engine opens it. */
  async function neox() {
    if (cached) return cached;
    const { inspection, files } = await inspect('neox', { 'neox.gguf': ggufWithTokenizer(50288, neoxKv()) });
    const tokenizer = (await engineTokenizer(inspection, files)) as Tokenizer;
    cached = { inspection, tokenizer, reference: BpeTokenizer.fromJson(neoxJson as string, NEOX_PATH) };
    return cached;
  }

  it('is found by inspection and gives the ids and text of the tokenizer.json', async (test) => {
    if (!neoxJson) return test.skip(NO_NEOX);
    const { inspection, tokenizer, reference } = await neox();
    expect(inspection.tokenizer).toBe('gguf');
    expect(inspection.ggufTokenizer?.file).toBe('neox/neox.gguf');
    expect(inspection.warnings.filter((w) => /tokenizer/.test(w) && !/GGUF tokenizer lists/.test(w))).toEqual([]);
    expect(tokenizer.warnings).toEqual([]);
    expect(reference.vocabSize).toBe(50281);
    // Known GPT-NeoX ids (published; see tokenizer.test.ts), independent of both.
    expect(tokenizer.encode('Hello, world!')).toEqual([12092, 13, 1533, 2]);
    expect(tokenizer.encode(' '.repeat(30) + 'z')).toEqual([50254, 50272, 91]);
    expect(tokenizer.encode('<|endoftext|>')).toEqual([0]);
    expectSameTokenizer(tokenizer, reference, TEXTS);
  });

  it('decodes every id as the tokenizer.json does', async (test) => {
    if (!neoxJson) return test.skip(NO_NEOX);
    const { tokenizer, reference } = await neox();
    const all = Array.from({ length: 50288 }, (_, i) => i); // with the 7 padding rows (unknown ids: nothing)
    for (let from = 0; from < all.length; from += 500) {
      const ids = all.slice(from, from + 500);
      expect(tokenizer.decode(ids)).toBe(reference.decode(ids));
      expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe(reference.decode(ids, { skipSpecialTokens: true }));
    }
    for (const id of [0, 1, 2, 187, 50253, 50254, 50276, 50277, 50279, 50280]) expect(tokenizer.decode([id])).toBe(reference.decode([id]));
  });

  it('matches the Rust tokenizers golden ids', async (test) => {
    if (!neoxJson) return test.skip(NO_NEOX);
    if (!golden) return test.skip(`needs ${path.relative(repoRoot, GOLDEN_PATH)}`);
    const { tokenizer } = await neox();
    for (const c of golden.cases) {
      expect(tokenizer.encode(c.text), c.name).toEqual(c.ids);
      expect(tokenizer.decode(c.ids), c.name).toBe(c.decoded);
      expect(tokenizer.decode(c.ids, { skipSpecialTokens: true }), c.name).toBe(c.decoded_skip_special);
    }
  });

  it('mamba-130m\'s layout: 50280 rows and 50281 tokens warn as tokenizerFor does for the tokenizer.json', async (test) => {
    if (!neoxJson) return test.skip(NO_NEOX);
    const { inspection, files } = await inspect('m', { 'm.gguf': ggufWithTokenizer(50280, neoxKv()) });
    expect(inspection.tokenizer).toBe('gguf');
    const tokenizer = (await engineTokenizer(inspection, files)) as Tokenizer;
    const reference = tokenizerFor(50280, neoxJson, 'ref/tokenizer.json');
    expect(reference.warnings).toHaveLength(1);
    expect(tokenizer.warnings).toEqual(reference.warnings.map((w) => w.replace('ref/tokenizer.json', 'm/m.gguf')));
    expectSameTokenizer(tokenizer, reference, TEXTS);
    expect(() => tokenizer.encode('RWKV')).toThrow(TokenizerError);
  });

  it('mamba-130m\'s layout as converted (tokens cut to the 50280 rows): no warnings, same ids', async (test) => {
    if (!neoxJson) return test.skip(NO_NEOX);
    const { inspection, files } = await inspect('m', { 'm.gguf': ggufWithTokenizer(50280, neoxKv(50280)) });
    const tokenizer = (await engineTokenizer(inspection, files)) as Tokenizer;
    const reference = tokenizerFor(50280, neoxJson, 'ref/tokenizer.json');
    expect(tokenizer.warnings).toEqual([]);
    expect(tokenizer.vocabSize).toBe(50280);
    for (const text of TEXTS) expect(tokenizer.encode(text), JSON.stringify(text)).toEqual(reference.encode(text));
  });

  it('add_bos_token puts the BOS id first', async (test) => {
    if (!neoxJson) return test.skip(NO_NEOX);
    const { inspection, files } = await inspect('b', { 'b.gguf': ggufWithTokenizer(50288, neoxKv(undefined, [bool('tokenizer.ggml.add_bos_token', true)])) });
    const tokenizer = (await engineTokenizer(inspection, files)) as Tokenizer;
    expect(tokenizer.encode('Hello, world!')).toEqual([0, 12092, 13, 1533, 2]);
    expect(tokenizer.decode([0, 12092, 13, 1533, 2], { skipSpecialTokens: true })).toBe('Hello, world!');
  });
});

// ---------------------------------------------------------------------------------------------
// A small byte-level BPE (256 byte tokens, a few merges, one control token) for the edge cases.

/** GPT-2's byte → printable character map, as the ByteLevel pre-tokenizer uses it. */
function bytesToUnicode(): string[] {
  const printable = new Set<number>();
  for (const [a, b] of [[33, 126], [161, 172], [174, 255]] as const) for (let x = a; x <= b; x++) printable.add(x);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable.has(b) ? b : 256 + extra++));
}
const BYTE_CHARS = bytesToUnicode();
const SMALL_MERGES = ['Ġ t', 'h e', 'Ġt he'];
const SMALL_TOKENS = [...BYTE_CHARS, 'Ġt', 'he', 'Ġthe', '<|endoftext|>'];
const SMALL_TYPES = [...BYTE_CHARS.map(() => 1), 1, 1, 1, 3];

function smallKv(over: Record<string, WriterKv | null> = {}): WriterKv[] {
  const base: WriterKv[] = [
    str('tokenizer.ggml.model', 'gpt2'),
    str('tokenizer.ggml.pre', 'gpt-2'),
    strings('tokenizer.ggml.tokens', SMALL_TOKENS),
    ints('tokenizer.ggml.token_type', SMALL_TYPES),
    strings('tokenizer.ggml.merges', SMALL_MERGES),
    u32('tokenizer.ggml.eos_token_id', 259),
  ];
  return base.filter((kv) => !(kv.key in over)).concat(Object.values(over).filter((kv): kv is WriterKv => kv !== null));
}

async function smallMetadata(over: Record<string, WriterKv | null> = {}) {
  const header = await readGgufHeader(memorySource('s/small.gguf', ggufWithTokenizer(260, smallKv(over))));
  return header.metadata;
}

describe('GGUF tokenizer: a small byte-level BPE', () => {
  it('encodes with the merges and the control token, and decodes back', async () => {
    const { inspection, files } = await inspect('s', { 'small.gguf': ggufWithTokenizer(260, smallKv()) });
    expect(inspection.tokenizer).toBe('gguf');
    const t = (await engineTokenizer(inspection, files)) as Tokenizer;
    // Ids worked out by hand: "t" is byte 116, "he" 257, "Ġthe" 258, "a" 97, "b" 98.
    expect(t.encode('the the')).toEqual([116, 257, 258]);
    expect(t.encode('a<|endoftext|>b')).toEqual([97, 259, 98]);
    expect(t.specialIds).toEqual(new Set([259]));
    expect(t.decode([116, 257, 258, 259])).toBe('the the<|endoftext|>');
    expect(t.decode([116, 257, 258, 259], { skipSpecialTokens: true })).toBe('the the');
    expect(t.encode('é')).toEqual([0xc3, 0xa9]); // its UTF-8 bytes: byte tokens have the byte's value as id
    expect(t.decode([0xc3, 0xa9])).toBe('é');
  });

  it('a tokenizer.json beside the GGUF file wins', async () => {
    const json = JSON.stringify({ ...ggufTokenizerJson('x', await smallMetadata()), added_tokens: [] });
    const { inspection, files } = await inspect('s', { 'small.gguf': ggufWithTokenizer(260, smallKv()), 'tokenizer.json': json });
    expect(inspection.tokenizer).toBe('tokenizer.json');
    expect(inspection.ggufTokenizer).toBeUndefined();
    const t = (await engineTokenizer(inspection, files)) as Tokenizer;
    expect(t.specialIds.size).toBe(0); // the tokenizer.json's (no added tokens), not the GGUF's
  });

  it('an unsupported tokenizer.ggml.model is a warning naming the file and the model; the model loads with ids only', async () => {
    const over = { 'tokenizer.ggml.model': str('tokenizer.ggml.model', 'llama'), 'tokenizer.ggml.merges': null };
    const { inspection, files } = await inspect('s', { 'small.gguf': ggufWithTokenizer(260, smallKv(over)) });
    expect(inspection.tokenizer).toBe('none');
    expect(inspection.ggufTokenizer).toBeUndefined();
    expect(inspection.warnings).toEqual([
      's/small.gguf: tokenizer.ggml.model is "llama" (SentencePiece), which is not supported: the studio reads only "gpt2" (byte-level BPE) tokenizers from GGUF files; text prompts need a tokenizer.json beside the GGUF file (token ids still work)',
    ]);
    expect(await engineTokenizer(inspection, files)).toBeNull();
    const error = await modelError(async () => ggufTokenizerJson('s/small.gguf', await smallMetadata(over)));
    expect(error.file).toBe('s/small.gguf');
    expect(error.problem).toMatch(/tokenizer\.ggml\.model is "llama"/);
  });

  it('an unsupported tokenizer.ggml.pre is a warning too', async () => {
    const { inspection } = await inspect('s', { 'small.gguf': ggufWithTokenizer(260, smallKv({ 'tokenizer.ggml.pre': str('tokenizer.ggml.pre', 'qwen2') })) });
    expect(inspection.tokenizer).toBe('none');
    expect(inspection.warnings).toEqual([expect.stringMatching(/^s\/small\.gguf: tokenizer\.ggml\.pre is "qwen2", which is not supported/)]);
  });

  it('no tokenizer in the metadata and no tokenizer.json: ids only, as before', async () => {
    const kv = smallKv().filter((k) => k.key !== 'tokenizer.ggml.model');
    const { inspection } = await inspect('s', { 'small.gguf': ggufWithTokenizer(260, kv) });
    expect(inspection.tokenizer).toBe('none');
    expect(inspection.warnings).toEqual([expect.stringMatching(/^s\/small\.gguf: no tokenizer\.json beside the GGUF file and no tokenizer in its metadata/)]);
  });

  it.each([
    ['tokens missing', { 'tokenizer.ggml.tokens': null }, /^tokenizer\.ggml\.tokens is missing/],
    ['tokens not strings', { 'tokenizer.ggml.tokens': ints('tokenizer.ggml.tokens', SMALL_TYPES) }, /^tokenizer\.ggml\.tokens must be an array of strings, but item 0 is number 1/],
    ['tokens a string', { 'tokenizer.ggml.tokens': str('tokenizer.ggml.tokens', 'abc') }, /^tokenizer\.ggml\.tokens must be an array of strings, got "abc"/],
    ['merges missing', { 'tokenizer.ggml.merges': null }, /^tokenizer\.ggml\.merges is missing/],
    ['merges not strings', { 'tokenizer.ggml.merges': ints('tokenizer.ggml.merges', [1, 2]) }, /^tokenizer\.ggml\.merges must be an array of strings, but item 0 is number 1/],
    ['merge without a space', { 'tokenizer.ggml.merges': strings('tokenizer.ggml.merges', ['Ġt']) }, /^tokenizer\.ggml\.merges\[0\] "Ġt" is not two tokens separated by a space/],
    ['merge of unknown tokens', { 'tokenizer.ggml.merges': strings('tokenizer.ggml.merges', ['Ġ t', 'x y']) }, /^tokenizer\.ggml\.merges\[1\] "x y" uses "xy", which is not in tokenizer\.ggml\.tokens/],
    ['token types of another length', { 'tokenizer.ggml.token_type': ints('tokenizer.ggml.token_type', [1, 1]) }, /^tokenizer\.ggml\.token_type has 2 entries but tokenizer\.ggml\.tokens has 260/],
    ['a token type out of range', { 'tokenizer.ggml.token_type': ints('tokenizer.ggml.token_type', SMALL_TYPES.map((t, i) => (i === 7 ? 9 : t))) }, /^tokenizer\.ggml\.token_type\[7\] is number 9/],
    ['a repeated token', { 'tokenizer.ggml.tokens': strings('tokenizer.ggml.tokens', SMALL_TOKENS.map((t, i) => (i === 258 ? 'he' : t))) }, /^tokenizer\.ggml\.tokens\[258\] "he" repeats token 257/],
    ['a special id out of range', { 'tokenizer.ggml.eos_token_id': u32('tokenizer.ggml.eos_token_id', 260) }, /^tokenizer\.ggml\.eos_token_id must be a token id from 0 to 259, got number 260/],
    ['model not a string', { 'tokenizer.ggml.model': u32('tokenizer.ggml.model', 2) }, /^tokenizer\.ggml\.model must be a string, got number 2/],
    ['add_bos_token without a BOS id', { 'tokenizer.ggml.add_bos_token': bool('tokenizer.ggml.add_bos_token', true) }, /^tokenizer\.ggml\.add_bos_token is true but tokenizer\.ggml\.bos_token_id is missing/],
  ] as const)('%s: a ModelFileError naming the file and the key; inspection warns and keeps ids', async (_name, over, pattern) => {
    const metadata = await smallMetadata(over);
    const error = await modelError(() => ggufTokenizerText('s/small.gguf', metadata));
    expect(error.file).toBe('s/small.gguf');
    expect(error.problem).toMatch(pattern);
    const { inspection } = await inspect('s', { 'small.gguf': ggufWithTokenizer(260, smallKv(over)) });
    expect(inspection.tokenizer).toBe('none');
    expect(inspection.warnings).toContain(`${error.message}; text prompts need a tokenizer.json beside the GGUF file (token ids still work)`);
  });

  it('more tokens than the model\'s vocabulary: tokenizerFor\'s mismatch error, naming the GGUF file', async () => {
    // 300 normal tokens (the 260 above and 40 more) in a model with 280 embedding rows.
    const tokens = [...SMALL_TOKENS.slice(0, 259), ...Array.from({ length: 41 }, (_, i) => `extra${i}`)];
    const kv = smallKv({ 'tokenizer.ggml.tokens': strings('tokenizer.ggml.tokens', tokens), 'tokenizer.ggml.token_type': null, 'tokenizer.ggml.eos_token_id': null });
    const { inspection, files } = await inspect('s', { 'small.gguf': ggufWithTokenizer(280, kv) });
    expect(inspection.tokenizer).toBe('gguf');
    const error = await modelError(() => engineTokenizer(inspection, files));
    expect(error.file).toBe('s/small.gguf');
    expect(error.problem).toBe("has 300 tokens but the model's vocabulary has 280: it belongs to another model");
  });

  it('without token types, the special-id keys name the special tokens', async () => {
    const metadata = await smallMetadata({ 'tokenizer.ggml.token_type': null });
    const t = tokenizerFor(260, ggufTokenizerText('s/small.gguf', metadata));
    expect(t.specialIds).toEqual(new Set([259]));
    expect(t.encode('a<|endoftext|>')).toEqual([97, 259]);
  });
});
