import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../../app/formats/errors';
import { BpeTokenizer, ByteTokenizer, TokenizerError, tokenizerFor, type Tokenizer } from '../../app/tokenizer/index';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NEOX_PATH = path.resolve(repoRoot, '../shared/data/gpt-neox-20b-tokenizer.json');
// TOKENIZER_GOLDEN points the golden test at another file (e.g. a re-made one, before committing it).
const GOLDEN_PATH = path.resolve(repoRoot, process.env.TOKENIZER_GOLDEN ?? 'test/fixtures/golden/tokenizer.json');
const neoxJson = existsSync(NEOX_PATH) ? readFileSync(NEOX_PATH, 'utf8') : null;
const NO_NEOX = `needs ${NEOX_PATH} (the GPT-NeoX tokenizer.json, kept in shared/data, not in the repo)`;

interface GoldenCase {
  name: string;
  text: string;
  ids: number[];
  tokens: string[];
  decoded: string;
  decoded_equals_text: boolean;
  decoded_equals_nfc_text: boolean;
  decoded_skip_special: string;
}
interface Golden {
  format: string;
  tokenizer_file: string;
  tokenizer_sha256: string;
  tokenizers_version: string;
  cases: GoldenCase[];
}
const golden: Golden | null = existsSync(GOLDEN_PATH) ? (JSON.parse(readFileSync(GOLDEN_PATH, 'utf8')) as Golden) : null;

/** Feeds ids one at a time to a stream decoder; returns each push's output and the flush. */
function stream(tokenizer: Tokenizer, ids: readonly number[], skipSpecialTokens = false) {
  const decoder = tokenizer.decoder({ skipSpecialTokens });
  const pieces = ids.map((id) => decoder.push(id));
  const rest = decoder.flush();
  return { pieces, rest, text: pieces.join('') + rest };
}

const SAMPLES = [
  'Hello, world!',
  'emoji 😀🎉 and a family 👨‍👩‍👧‍👦 and a flag 🇯🇵',
  '日本語のテキスト 中文字符和标点，。！ 한국어',
  'combining e\u0301 and \uFEFFa BOM inside',
  '\uFEFFleading BOM',
  '',
  '  spaces  \n\ttabs\r\n',
];

describe('byte tokenizer (MambaByte)', () => {
  const bytes = new ByteTokenizer();

  it('encodes to UTF-8 bytes and decodes back, for every sample', () => {
    expect(bytes.kind).toBe('bytes');
    expect(bytes.vocabSize).toBe(256);
    expect(bytes.encode('aé😀')).toEqual([0x61, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]);
    for (const text of SAMPLES) {
      const ids = bytes.encode(text);
      expect(ids).toEqual([...new TextEncoder().encode(text)]);
      expect(bytes.decode(ids)).toBe(text); // a leading U+FEFF is kept, not stripped as a BOM
      expect(stream(bytes, ids).text).toBe(text);
    }
  });

  it('holds back a character split across byte tokens until it is complete', () => {
    const { pieces, rest } = stream(bytes, bytes.encode('a😀é'));
    expect(pieces).toEqual(['a', '', '', '', '😀', '', 'é']);
    expect(rest).toBe('');
  });

  it('an incomplete sequence becomes U+FFFD at flush, and the decoder starts over', () => {
    const decoder = bytes.decoder();
    expect(decoder.push(0xf0)).toBe('');
    expect(decoder.push(0x9f)).toBe('');
    expect(decoder.flush()).toBe('\uFFFD');
    expect(decoder.push(0x41)).toBe('A');
    expect(bytes.decode([0x41, 0xff, 0x42])).toBe('A\uFFFDB');
  });

  it('skips ids outside 0..255', () => {
    expect(bytes.decode([0x41, 256, -1, 0x42])).toBe('AB');
  });
});

/** GPT-2's byte → printable character map, as the ByteLevel pre-tokenizer uses it. */
function bytesToUnicode(): string[] {
  const printable = [...range(33, 126), ...range(161, 172), ...range(174, 255)];
  const chars: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return chars;
}
function range(a: number, b: number) {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/** A small byte-level BPE tokenizer.json (256 byte tokens, a few merges, one special token). */
function tinyTokenizerJson(): string {
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  chars.forEach((c, b) => (vocab[c] = b));
  const merges = ['Ġ t', 'h e', 'Ġt he', 'ð Ł'];
  merges.forEach((m, i) => (vocab[m.replace(' ', '')] = 256 + i));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 260, content: '<|endoftext|>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }],
    normalizer: { type: 'NFC' },
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, vocab, merges },
  });
}

describe('BPE tokenizer on a small synthetic tokenizer.json', () => {
  const tiny = BpeTokenizer.fromJson(tinyTokenizerJson(), 'tiny/tokenizer.json');

  it('encodes with merges and special tokens, and decodes back', () => {
    expect(tiny.kind).toBe('bpe');
    expect(tiny.vocabSize).toBe(261);
    expect(tiny.baseVocabSize).toBe(260);
    expect(tiny.specialIds).toEqual(new Set([260]));
    expect(tiny.encode('the the')).toEqual([116, 257, 258]); // t, he, Ġthe
    expect(tiny.encode('a<|endoftext|>b')).toEqual([97, 260, 98]);
    expect(tiny.decode([97, 260, 98])).toBe('a<|endoftext|>b');
    expect(tiny.decode([97, 260, 98], { skipSpecialTokens: true })).toBe('ab');
    expect(tiny.decode([])).toBe('');
    expect(tiny.decode([97, 9999, 98])).toBe('ab'); // unknown ids are skipped
    expect(tiny.decode(tiny.encode('a , b .'))).toBe('a , b .'); // no transformers-style " ," clean-up
  });

  it('stream decoding equals whole decoding, token by token, with multi-token characters', () => {
    for (const text of SAMPLES) {
      const ids = tiny.encode(text);
      const whole = tiny.decode(ids);
      const { pieces, text: streamed } = stream(tiny, ids);
      expect(streamed).toBe(whole);
      expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
    }
    // 😀 is 4 byte tokens (ðŁ merged, then two more): nothing comes out until the last one.
    const ids = tiny.encode('😀');
    expect(ids.length).toBe(3);
    expect(stream(tiny, ids).pieces).toEqual(['', '', '😀']);
  });

  it('reports a broken tokenizer.json as a ModelFileError naming the file', () => {
    for (const [text, pattern] of [
      ['{ not json', /not valid JSON/],
      ['[1, 2]', /not a JSON object/],
      ['{"version": "1.0"}', /no "model" with a "type"/],
    ] as const) {
      let error: unknown;
      try {
        BpeTokenizer.fromJson(text, 'm/tokenizer.json');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ModelFileError);
      expect((error as ModelFileError).file).toBe('m/tokenizer.json');
      expect((error as ModelFileError).message).toMatch(pattern);
    }
  });
});

describe('tokenizerFor', () => {
  it('vocab 256 without a tokenizer.json is bytes', () => {
    expect(tokenizerFor(256, null).kind).toBe('bytes');
  });

  it('any other vocab without a tokenizer.json is a clear error', () => {
    let error: unknown;
    try {
      tokenizerFor(50280, null, 'models/mamba-130m/tokenizer.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ModelFileError);
    expect((error as ModelFileError).file).toBe('models/mamba-130m/tokenizer.json');
    expect((error as ModelFileError).message).toMatch(/vocab 50280 needs a tokenizer\.json next to the model/);
  });

  it('a tokenizer.json wins over bytes, and one larger than the model is refused', () => {
    expect(tokenizerFor(261, tinyTokenizerJson()).kind).toBe('bpe');
    expect(() => tokenizerFor(100, tinyTokenizerJson(), 'x/tokenizer.json')).toThrow(/has 260 tokens but the model's vocabulary has 100/);
  });

  it('added tokens past the model vocabulary are warned about, and refused when the text needs them', () => {
    const t = tokenizerFor(260, tinyTokenizerJson(), 'x/tokenizer.json');
    expect(t.warnings).toEqual(['x/tokenizer.json: 1 added token(s) lie past the model\'s vocabulary of 260 and cannot be used: 260 "<|endoftext|>"']);
    expect(t.specialIds.size).toBe(0);
    expect(t.encode('the')).toEqual([116, 257]);
    expect(() => t.encode('a<|endoftext|>')).toThrow(TokenizerError);
    expect(() => t.encode('a<|endoftext|>')).toThrow(/"<\|endoftext\|>", token 260, which is past the model's vocabulary of 260/);
  });

  it('GPT-NeoX: Mamba\'s padded vocab 50280 vs the tokenizer\'s 50281 ids', (test) => {
    if (!neoxJson) return test.skip(NO_NEOX);
    const t = tokenizerFor(50280, neoxJson);
    expect(t.kind).toBe('bpe');
    expect(t.warnings).toHaveLength(1);
    expect(t.warnings[0]).toMatch(/50280 "RWKV"/);
    expect(t.encode('Hello, world!')).toEqual([12092, 13, 1533, 2]);
    const padded = tokenizerFor(50288, neoxJson);
    expect(padded.warnings).toEqual([]);
    expect(padded.decode([12092, 50285, 1533])).toBe('Hello world'); // a padding row decodes to nothing
    expect([...padded.specialIds].sort((a, b) => a - b)).toEqual([0, 1, 50277, 50278, 50279, 50280]);
  });
});

describe('BPE: GPT-NeoX tokenizer.json', () => {
  const neox = neoxJson ? BpeTokenizer.fromJson(neoxJson, NEOX_PATH) : null;

  // Ids checked independently of @huggingface/tokenizers: the published GPT-NeoX-20B ids for
  // these strings ("Hello" 12092, "," 13, " world" 1533, "!" 2; <|endoftext|> 0), and, for the
  // runs of spaces, the added tokens listed in the tokenizer.json itself (24 spaces = 50254,
  // 6 spaces = 50272), which the Rust library matches leftmost-longest before the BPE.
  it('known ids', (test) => {
    if (!neox) return test.skip(NO_NEOX);
    expect(neox.encode('Hello, world!')).toEqual([12092, 13, 1533, 2]);
    expect(neox.encode('<|endoftext|>')).toEqual([0]);
    expect(neox.encode(' '.repeat(30) + 'z')).toEqual([50254, 50272, 91]);
    expect(neox.vocabSize).toBe(50281);
  });

  it('stream decoding of emoji and CJK, token by token, equals the whole decode', (test) => {
    if (!neox) return test.skip(NO_NEOX);
    for (const text of [...SAMPLES, 'Tokyo東京Москва🚀 mix', '🏳️‍🌈 rainbow flag and 👍🏽', ' leading space<|endoftext|> after']) {
      const ids = neox.encode(text);
      for (const skipSpecialTokens of [false, true]) {
        const whole = neox.decode(ids, { skipSpecialTokens });
        const { pieces, text: streamed } = stream(neox, ids, skipSpecialTokens);
        expect(streamed, text).toBe(whole);
        expect(pieces.some((p) => p.includes('\uFFFD')), text).toBe(false);
      }
      expect(neox.decode(ids)).toBe(text.normalize('NFC'));
    }
    // An emoji's 4 bytes span byte-level tokens: the pieces before its last token are empty.
    const ids = neox.encode('😀');
    expect(ids.length).toBeGreaterThan(1);
    const { pieces } = stream(neox, ids);
    expect(pieces.slice(0, -1).every((p) => p === '')).toBe(true);
    expect(pieces.at(-1)).toBe('😀');
  });
});

describe('BPE against the Rust tokenizers golden file', () => {
  const neox = neoxJson ? BpeTokenizer.fromJson(neoxJson, NEOX_PATH) : null;
  if (!golden || !neox) {
    it('golden cases', (test) => {
      test.skip(!golden ? `needs ${path.relative(repoRoot, GOLDEN_PATH)} (made by scripts/golden/make_tokenizer_golden.py)` : NO_NEOX);
    });
    return;
  }

  it('is the golden file for this tokenizer.json', async () => {
    const { createHash } = await import('node:crypto');
    expect(golden.format).toBe('mamba-studio/tokenizer-golden@1');
    expect(createHash('sha256').update(neoxJson!).digest('hex')).toBe(golden.tokenizer_sha256);
    expect(golden.cases.length).toBeGreaterThanOrEqual(40);
  });

  for (const c of golden.cases) {
    it(`${c.name}: ${JSON.stringify(c.text).slice(0, 40)}`, () => {
      expect(neox.encode(c.text)).toEqual(c.ids);
      expect(neox.decode(c.ids)).toBe(c.decoded);
      expect(neox.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decoded_skip_special);
      expect(stream(neox, c.ids).text).toBe(c.decoded);
      expect(stream(neox, c.ids, true).text).toBe(c.decoded_skip_special);
      if (c.decoded_equals_text) expect(neox.decode(neox.encode(c.text))).toBe(c.text);
    });
  }
});
