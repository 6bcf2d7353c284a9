/**
 * Hostile tokenizer.json files (issue 14, item 3): a regex with exponential backtracking and an
 * absurd added-token id both made the studio hang. Each is refused with a ModelFileError naming
 * the file, within a time budget; the regexes the studio does run are timed on adversarial texts.
 */
import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../../app/formats/errors';
import { MAX_ADDED_TOKEN_CHARS, MAX_COMPONENT_DEPTH, SAFE_TOKENIZER_REGEXES } from '../../app/tokenizer/check';
import { BpeTokenizer, lazyTokenizer, tokenizerFor } from '../../app/tokenizer/index';
import { byteLevelTokenizer, splitThenByteLevel, type TokenizerJsonObject } from '../support/tokenizer-json';

const FILE = 'hostile/tokenizer.json';
/** The tiny tokenizer's ids: 256 bytes, 4 merges, <|endoftext|> at 260. */
const VOCAB = 261;
/** How long refusing a small hostile file may take, in ms (it is a JSON walk; 2 shared cores). */
const REFUSE_MS = 500;
const ABSURD = 2 ** 26;

/** Runs `body`, returning what it threw (or null) and how long it took. */
function timed(body: () => unknown): { error: unknown; ms: number } {
  const t0 = performance.now();
  let error: unknown = null;
  try {
    body();
  } catch (e) {
    error = e;
  }
  return { error, ms: performance.now() - t0 };
}

function expectRefused(result: { error: unknown; ms: number }, pattern: RegExp) {
  expect(result.error).toBeInstanceOf(ModelFileError);
  const error = result.error as ModelFileError;
  expect(error.file).toBe(FILE);
  expect(error.message.startsWith(`${FILE}: `)).toBe(true);
  expect(error.message).toMatch(pattern);
  expect(result.ms).toBeLessThan(REFUSE_MS);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function withChanges(change: (t: TokenizerJsonObject) => void): string {
  const t = byteLevelTokenizer();
  change(t);
  return JSON.stringify(t);
}

describe('untrusted regexes', () => {
  it('the reproducer: Split with (a+)+$ is refused, naming the file and the pattern, instead of running for ever on "aaaa…!"', () => {
    const json = withChanges((t) => (t.pre_tokenizer = splitThenByteLevel('(a+)+$')));
    // Before the fix this built, and encode took exponential time: 28 a's took 41 s on the 2-core
    // test machine, each one more doubles it. 24 keep a regression a failure of seconds, not a hang;
    // test/gpu/tokenizer-cli.test.ts runs the full reproducer in a process with a deadline.
    expectRefused(
      timed(() => tokenizerFor(VOCAB, json, FILE).encode(`${'a'.repeat(24)}!`)),
      /pre_tokenizer\.pretokenizers\[0\]\.pattern \(Split\) is the regex "\(a\+\)\+\$", which the studio does not run/,
    );
  });

  it('the same in a normalizer and a decoder Replace, and a pattern that is neither String nor Regex', () => {
    const replace = { type: 'Replace', pattern: { Regex: '(x|x)*y' }, content: '' };
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => (t.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFC' }, replace] })), FILE)), /normalizer\.normalizers\[1\]\.pattern \(Replace\) is the regex "\(x\|x\)\*y"/);
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => (t.decoder = replace)), FILE)), /decoder\.pattern \(Replace\) is the regex/);
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => (t.decoder = { type: 'Replace', pattern: {}, content: '' })), FILE)), /decoder\.pattern must be \{"String": "…"\} or \{"Regex": "…"\}/);
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => (t.pre_tokenizer = { type: 'Split', behavior: 'Isolated' })), FILE)), /pre_tokenizer \(Split\) has no "pattern"/);
  });

  it('String patterns are escaped literals and run', () => {
    const json = withChanges((t) => (t.normalizer = { type: 'Replace', pattern: { String: '(a+)+$' }, content: 'b' }));
    const tok = tokenizerFor(VOCAB, json, FILE);
    expect(tok.decode(tok.encode('x(a+)+$y'))).toBe('xby');
  });

  // The allowed patterns are the studio's promise: each must stay fast on texts built to make a
  // backtracking engine work hard (long runs of one class, runs that almost match, no match).
  const ADVERSARIAL: Record<string, string> = {
    'spaces then a letter': `${' '.repeat(50_000)}x`,
    'spaces to the end': ' '.repeat(50_000),
    'spaces and tabs, then a newline': `${' \t'.repeat(25_000)}\n`,
    'newlines': '\r\n'.repeat(25_000),
    'letters then punctuation': `${'a'.repeat(50_000)}!`,
    'capitals and CJK': 'Aé東'.repeat(16_000),
    'digits': '1'.repeat(50_000),
    "contractions": "'s'".repeat(16_000),
    'punctuation runs': '!?'.repeat(25_000),
  };
  for (const [regex, whose] of SAFE_TOKENIZER_REGEXES) {
    it(`${whose}'s regex builds and is linear on adversarial texts`, () => {
      const tok = tokenizerFor(VOCAB, withChanges((t) => (t.pre_tokenizer = splitThenByteLevel(regex))), FILE);
      expect(tok.decode(tok.encode("Hello, world! It's 2024."))).toBe("Hello, world! It's 2024.");
      for (const [name, text] of Object.entries(ADVERSARIAL)) {
        const t0 = performance.now();
        const ids = tok.encode(text);
        const ms = performance.now() - t0;
        expect(ids.length, name).toBeGreaterThan(0);
        expect(ms, `${whose}: ${name} took ${ms.toFixed(0)} ms`).toBeLessThan(3000);
      }
    });
  }
});

describe('token ids bounded by the vocabulary', () => {
  // The library walks every id up to the largest: 4294967294 (the reproducer, run in a process
  // with a deadline by test/gpu/tokenizer-cli.test.ts) took over 4 minutes here; 2^26 keeps a
  // regression a failure of seconds.
  it('an absurd added-token id is refused at once instead of walking every id up to it', () => {
    const json = withChanges((t) => t.added_tokens.push({ id: ABSURD, content: '<evil>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }));
    expectRefused(timed(() => tokenizerFor(VOCAB, json, FILE)), /added_tokens\[1\] "<evil>" has the id 67108864, past any id the model can use \(below the model's vocabulary of 261 and the 2 added tokens\)/);
    // Without the model's vocabulary, the tokenizer's own bounds it.
    expectRefused(timed(() => BpeTokenizer.fromJson(json, FILE)), /has the id 67108864, past any id the model can use \(below the tokenizer's 260 vocabulary entries and 2 added tokens\)/);
  });

  it('a vocabulary id far past the model is another model; ids that are not integers from 0 are refused', () => {
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => (t.model.vocab['Ġthe'] = 2 ** 31)), FILE)), /has 2147483649 tokens but the model's vocabulary has 261: it belongs to another model/);
    expectRefused(timed(() => BpeTokenizer.fromJson(withChanges((t) => (t.model.vocab['Ġthe'] = 2 ** 31)), FILE)), /model\.vocab has ids up to 2147483648 but only 260 entries/);
    for (const [bad, shown] of [[-1, '-1'], [1.5, '1.5'], ['7', '"7"'], [null, 'null'], [1e300, '1e+300'], [{ toString: [] }, 'an object'], [[1], 'an array of 1']] as const) {
      expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => ((t.model.vocab as Record<string, unknown>).x = bad)), FILE)), new RegExp(`model\\.vocab gives "x" the id ${escapeRegExp(shown)}: ids are integers from 0$`));
      expectRefused(
        timed(() => tokenizerFor(VOCAB, withChanges((t) => ((t.added_tokens[0] as { id: unknown }).id = bad)), FILE)),
        new RegExp(`added_tokens\\[0\\] "<\\|endoftext\\|>" has the id ${escapeRegExp(shown)}: ids are integers from 0$`),
      );
    }
  });

  it('added tokens just past the model still load, with the warning (GPT-NeoX next to Mamba\'s 50280 rows)', () => {
    const t = tokenizerFor(VOCAB - 1, JSON.stringify(byteLevelTokenizer()), FILE);
    expect(t.warnings).toEqual([`${FILE}: 1 added token(s) lie past the model's vocabulary of 260 and cannot be used: 260 "<|endoftext|>"`]);
  });
});

describe('the rest of what reaches @huggingface/tokenizers', () => {
  it('merges must be vocabulary tokens whose concatenation is one (as the Rust library requires)', () => {
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => t.model.merges.push('Ġthe q')), FILE)), /model\.merges\[4\] uses "Ġtheq", which is not in model\.vocab/);
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => t.model.merges.push('a b c')), FILE)), /model\.merges\[4\] "a b c" is not two tokens/);
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => (t.model.merges = [['Ġ', 'zz']])), FILE)), /model\.merges\[0\] uses "zz"/);
  });

  it('only BPE models; added tokens must be {id, content} of 1 to MAX_ADDED_TOKEN_CHARS characters; components nest at most MAX_COMPONENT_DEPTH deep', () => {
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => (t.model.type = 'WordPiece')), FILE)), /model type "WordPiece" is not supported: the studio runs BPE tokenizers/);
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => ((t.added_tokens as unknown[])[0] = 'x')), FILE)), /added_tokens\[0\] must be an object with an "id" and a "content"/);
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => (t.added_tokens[0]!.content = 'a'.repeat(MAX_ADDED_TOKEN_CHARS + 1))), FILE)), /added_tokens\[0\] has 257 characters: an added token has 1 to 256/);
    let deep: unknown = { type: 'NFC' };
    for (let i = 1; i < MAX_COMPONENT_DEPTH; i++) deep = { type: 'Sequence', normalizers: [deep] };
    expect(tokenizerFor(VOCAB, withChanges((t) => (t.normalizer = deep)), FILE).encode('the')).toEqual([116, 257]); // 32 deep: runs
    deep = { type: 'Sequence', normalizers: [deep] };
    expectRefused(timed(() => tokenizerFor(VOCAB, withChanges((t) => (t.normalizer = deep)), FILE)), /: normalizer nests objects more than 32 deep$/);
  });
});

describe('stream decoding stays linear', () => {
  // Each push decodes the ids held back since the last text: a decoder that turns every token into
  // nothing, or a run of invalid UTF-8, used to hold them all (20,000 ids: 2·10^8 token decodes).
  for (const [name, decoder, id, expected] of [
    ['a decoder that removes every "a"', { type: 'Sequence', decoders: [{ type: 'ByteLevel' }, { type: 'Replace', pattern: { String: 'a' }, content: '' }] }, 97, ''],
    ['a run of invalid UTF-8 (byte 0xFF)', { type: 'ByteLevel' }, 255, '\uFFFD'.repeat(20_000)],
  ] as const) {
    it(`20,000 tokens of ${name}`, () => {
      const tok = tokenizerFor(VOCAB, withChanges((t) => (t.decoder = decoder)), FILE);
      const ids = new Array<number>(20_000).fill(id);
      const t0 = performance.now();
      const stream = tok.decoder();
      const text = ids.map((i) => stream.push(i)).join('') + stream.flush();
      const ms = performance.now() - t0;
      expect(text).toBe(expected);
      expect(tok.decode(ids)).toBe(expected);
      expect(ms).toBeLessThan(3000);
    });
  }
});

describe('lazyTokenizer: built at the first use, for text', () => {
  it('knows its kind without building; a hostile file throws only when text needs it, the same error every time', () => {
    const hostile = withChanges((t) => t.added_tokens.push({ id: ABSURD, content: '<evil>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }));
    const lazy = lazyTokenizer(VOCAB, { json: hostile, file: FILE });
    expect(lazy.kind).toBe('bpe');
    expect(lazy.built).toBe(false);
    const first = timed(() => lazy.get());
    expectRefused(first, /has the id 67108864/);
    expect(lazy.built).toBe(true);
    expect(timed(() => lazy.get()).error).toBe(first.error);

    const none = lazyTokenizer(VOCAB, null);
    expect([none.kind, none.built, none.get()]).toEqual(['none', true, null]);
    const bytes = lazyTokenizer(256, { json: null, file: FILE });
    expect(bytes.kind).toBe('bytes');
    expect(bytes.get()?.encode('hi')).toEqual([104, 105]);
    const good = lazyTokenizer(VOCAB, { json: JSON.stringify(byteLevelTokenizer()), file: FILE });
    expect(good.built).toBe(false);
    expect(good.get()).toBe(good.get());
    expect(good.get()?.encode('the')).toEqual([116, 257]);
  });
});
