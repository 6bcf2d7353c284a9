/**
 * Fuzz (issue 14): tokenizer.json files with a valid structure and mutated parts (regexes, vocab
 * ids, merges, added tokens, normalizers, pre-tokenizers, decoders, post-processors, model fields,
 * the JSON text itself). Property: `tokenizerFor` gives a clean ModelFileError naming the file, or
 * a working tokenizer — encode gives ids inside the model's vocabulary (or a TokenizerError, or a
 * ModelFileError naming the file), decode and stream decoding give text — and each case takes
 * less than CASE_MS and grows the heap by less than CASE_HEAP_BYTES.
 *
 * FUZZ_RUNS sets the number of cases (default 1,000); FUZZ_SEED replays a run (the seed is printed).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../../app/formats/errors';
import { SAFE_TOKENIZER_REGEXES } from '../../app/tokenizer/check';
import { TokenizerError, tokenizerFor, type Tokenizer } from '../../app/tokenizer/index';
import { BYTE_LEVEL, byteLevelTokenizer, splitThenByteLevel, type TokenizerJsonObject } from '../support/tokenizer-json';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : (Math.random() * 2 ** 31) | 0;
const FILE = 'fuzz/tokenizer.json';
/** Per case: build, three encodes, decodes (2 shared cores, GC pauses included). */
const CASE_MS = 1500;
const CASE_HEAP_BYTES = 256 * 2 ** 20;

// ---- parts -------------------------------------------------------------------------------------

const SAFE = [...SAFE_TOKENIZER_REGEXES.keys()];
/** Regexes with catastrophic backtracking (exponential or high-degree polynomial) in a JS engine. */
const EVIL = ['(a+)+$', '(a|a)*$', '(a*)*b', '([a-z]+)*!', String.raw`(\w+\s?)*$`, '(.*a){12}', String.raw`(\s*,?)*;`, String.raw`^(\p{L}|\p{Ll})+$`];
const REGEX_CHARS = [...'a()+*?|[]^$\\{},.-0123456789sSdDwWpL!<>=:'];

const regex: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...SAFE),
  fc.constantFrom(...EVIL),
  // A known pattern with one character changed, inserted or removed.
  fc.tuple(fc.constantFrom(...SAFE), fc.nat(), fc.constantFrom(...REGEX_CHARS), fc.constantFrom('insert', 'replace', 'delete')).map(([s, at, c, how]) => {
    const i = at % (s.length + 1);
    return how === 'insert' ? s.slice(0, i) + c + s.slice(i) : how === 'replace' ? s.slice(0, i) + c + s.slice(i + 1) : s.slice(0, i) + s.slice(i + 1);
  }),
  fc.array(fc.constantFrom(...REGEX_CHARS), { maxLength: 24 }).map((cs) => cs.join('')),
);

const shortText = fc.string({ maxLength: 6 });
const pattern: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: regex.map((r) => ({ Regex: r })) },
  { weight: 2, arbitrary: shortText.map((s) => ({ String: s })) },
  { weight: 1, arbitrary: fc.constantFrom({}, { Regex: 5 }, { String: 'a', Regex: 'a' }, null, 'a+') },
);

/** Any JSON value, small. */
const junk = fc.jsonValue({ maxDepth: 2 });
/** Token ids: mostly plausible ones, some absurd (the reproducer's 4294967294 among them). */
const bigNumber = fc.oneof(
  { weight: 6, arbitrary: fc.nat({ max: 300 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 1.5, 2 ** 26, 2 ** 31, 4294967294, 2 ** 53, 1e300, NaN) },
  { weight: 1, arbitrary: fc.integer() },
);

const normalizers = fc.letrec<{ n: unknown }>((tie) => ({
  n: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase', 'StripAccents', 'Nmt').map((type) => ({ type })),
    fc.record({ type: fc.constant('Strip'), strip_left: fc.boolean(), strip_right: fc.boolean() }),
    fc.record({ type: fc.constant('Replace'), pattern, content: shortText }),
    fc.record({ type: fc.constant('Prepend'), prepend: fc.oneof(shortText, junk) }),
    fc.record({ type: fc.constant('BertNormalizer'), clean_text: fc.boolean(), handle_chinese_chars: fc.boolean(), strip_accents: fc.option(fc.boolean()), lowercase: fc.boolean() }),
    fc.record({ type: fc.constant('Precompiled'), precompiled_charsmap: fc.option(shortText) }),
    fc.record({ type: fc.constant('Sequence'), normalizers: fc.array(tie('n'), { maxLength: 3 }) }),
    fc.record({ type: shortText }),
    junk,
  ),
})).n;

const preTokenizers = fc.letrec<{ p: unknown }>((tie) => ({
  p: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: fc.constant('ByteLevel'), add_prefix_space: fc.boolean(), trim_offsets: fc.boolean(), use_regex: fc.boolean() }),
    fc.record({ type: fc.constant('Split'), pattern, behavior: fc.constantFrom('Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous', 'x'), invert: fc.boolean() }),
    fc.record({ type: fc.constant('Metaspace'), replacement: fc.oneof(fc.constant('▁'), shortText), add_prefix_space: fc.boolean(), prepend_scheme: fc.constantFrom('always', 'first', 'never') }),
    fc.constantFrom('Whitespace', 'WhitespaceSplit', 'BertPreTokenizer', 'UnicodeScripts').map((type) => ({ type })),
    fc.record({ type: fc.constant('Digits'), individual_digits: fc.boolean() }),
    fc.record({ type: fc.constant('Punctuation'), behavior: fc.constantFrom('Isolated', 'Contiguous') }),
    fc.record({ type: fc.constant('Replace'), pattern, content: shortText }),
    fc.record({ type: fc.constant('Sequence'), pretokenizers: fc.array(tie('p'), { maxLength: 3 }) }),
    fc.record({ type: shortText }),
    junk,
  ),
})).p;

const decoders = fc.letrec<{ d: unknown }>((tie) => ({
  d: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(BYTE_LEVEL),
    fc.record({ type: fc.constant('Replace'), pattern, content: shortText }),
    fc.record({ type: fc.constant('Strip'), content: fc.oneof(fc.constant(' '), shortText), start: bigNumber, stop: bigNumber }),
    fc.constantFrom('Fuse', 'ByteFallback', 'CTC').map((type) => ({ type })),
    fc.record({ type: fc.constant('Metaspace'), replacement: shortText, add_prefix_space: fc.boolean() }),
    fc.record({ type: fc.constant('BPEDecoder'), suffix: shortText }),
    fc.record({ type: fc.constant('WordPiece'), prefix: shortText, cleanup: fc.boolean() }),
    fc.record({ type: fc.constant('Sequence'), decoders: fc.array(tie('d'), { maxLength: 3 }) }),
    fc.record({ type: shortText }),
    junk,
  ),
})).d;

const specialPiece = fc.oneof(
  fc.record({ SpecialToken: fc.record({ id: fc.oneof(fc.constant('<|endoftext|>'), shortText), type_id: fc.nat(2) }) }),
  fc.record({ Sequence: fc.record({ id: fc.constantFrom('A', 'B'), type_id: fc.nat(2) }) }),
);
const postProcessors = fc.oneof(
  fc.constant(BYTE_LEVEL),
  fc.record({
    type: fc.constant('TemplateProcessing'),
    single: fc.array(specialPiece, { maxLength: 4 }),
    pair: fc.array(specialPiece, { maxLength: 4 }),
    special_tokens: fc.dictionary(shortText, fc.record({ id: shortText, ids: fc.array(bigNumber, { maxLength: 2 }), tokens: fc.array(shortText, { maxLength: 2 }) }), { maxKeys: 2 }),
  }),
  fc.record({ type: fc.constantFrom('RobertaProcessing', 'BertProcessing'), sep: fc.tuple(shortText, bigNumber), cls: fc.tuple(shortText, bigNumber) }),
  fc.record({ type: fc.constant('Sequence'), processors: fc.array(fc.constant(BYTE_LEVEL), { maxLength: 2 }) }),
  fc.record({ type: shortText }),
  junk,
);

const addedToken = fc.record({
  id: bigNumber,
  content: fc.oneof(fc.constant('<|endoftext|>'), fc.string({ maxLength: 8 }), fc.nat({ max: 300 }).map((n) => 'a'.repeat(n)), junk),
  special: fc.boolean(),
  single_word: fc.boolean(),
  lstrip: fc.boolean(),
  rstrip: fc.boolean(),
  normalized: fc.boolean(),
});

type Mutation =
  | { kind: 'normalizer' | 'pre_tokenizer' | 'decoder' | 'post_processor'; value: unknown }
  | { kind: 'vocabId'; index: number; id: unknown }
  | { kind: 'vocabDelete'; index: number }
  | { kind: 'merge'; value: unknown }
  | { kind: 'added'; value: unknown }
  | { kind: 'addedId'; index: number; id: unknown }
  | { kind: 'modelField'; key: string; value: unknown }
  | { kind: 'topField'; key: string; value: unknown }
  | { kind: 'deep'; levels: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('normalizer' as const), value: normalizers }),
  fc.record({ kind: fc.constant('pre_tokenizer' as const), value: preTokenizers }),
  fc.record({ kind: fc.constant('pre_tokenizer' as const), value: regex.map((r) => splitThenByteLevel(r)) }),
  fc.record({ kind: fc.constant('decoder' as const), value: decoders }),
  fc.record({ kind: fc.constant('post_processor' as const), value: postProcessors }),
  fc.record({ kind: fc.constant('vocabId' as const), index: fc.nat(), id: fc.oneof(bigNumber, junk) }),
  fc.record({ kind: fc.constant('vocabDelete' as const), index: fc.nat() }),
  fc.record({
    kind: fc.constant('merge' as const),
    value: fc.oneof(fc.constantFrom('h e', 'Ġ t', 'a b c', 'x', ' ', 'Ġt he'), fc.tuple(shortText, shortText), fc.string({ maxLength: 8 }), junk),
  }),
  fc.record({ kind: fc.constant('added' as const), value: fc.oneof({ weight: 5, arbitrary: addedToken }, { weight: 1, arbitrary: junk }) }),
  fc.record({ kind: fc.constant('addedId' as const), index: fc.nat(), id: bigNumber }),
  fc.record({
    kind: fc.constant('modelField' as const),
    key: fc.constantFrom('type', 'unk_token', 'byte_fallback', 'ignore_merges', 'continuing_subword_prefix', 'end_of_word_suffix', 'dropout', 'fuse_unk', 'vocab', 'merges'),
    value: fc.oneof(fc.constantFrom('BPE', 'WordPiece', 'Unigram', 'WordLevel', '<unk>', 'a', '##', '</w>', true, false, null, 0.5), junk),
  }),
  fc.record({ kind: fc.constant('topField' as const), key: fc.constantFrom('added_tokens', 'normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'model'), value: junk }),
  fc.record({ kind: fc.constant('deep' as const), levels: fc.oneof(fc.integer({ min: 20, max: 40 }), fc.constant(5000)) }),
);

/** A valid byte-level BPE: the 256 byte tokens, then merges of earlier tokens (pairs drawn by index). */
const base = fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 24 }).map((pairs) => {
  const t = byteLevelTokenizer([]);
  const tokens = Object.keys(t.model.vocab);
  for (const [a, b] of pairs) {
    const left = tokens[a % tokens.length] as string;
    const right = tokens[b % tokens.length] as string;
    if (left.includes(' ') || right.includes(' ') || Object.hasOwn(t.model.vocab, left + right)) continue;
    t.model.merges.push(`${left} ${right}`);
    t.model.vocab[left + right] = tokens.length;
    tokens.push(left + right);
  }
  t.added_tokens[0]!.id = tokens.length;
  return t;
});

/** Marks where the 'deep' mutation's normalizer goes in the text. */
const DEEP = '~deep-normalizer:';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function mutate(t: TokenizerJsonObject, m: Mutation): void {
  const model = isObject(t.model) ? t.model : null;
  const vocab = model && isObject(model.vocab) ? (model.vocab as Record<string, unknown>) : null;
  const keys = vocab ? Object.keys(vocab) : [];
  switch (m.kind) {
    case 'normalizer':
    case 'pre_tokenizer':
    case 'decoder':
    case 'post_processor':
      t[m.kind] = m.value;
      return;
    case 'vocabId':
      if (vocab && keys.length > 0) vocab[keys[m.index % keys.length] as string] = m.id;
      return;
    case 'vocabDelete':
      if (vocab && keys.length > 0) delete vocab[keys[m.index % keys.length] as string];
      return;
    case 'merge':
      if (model && Array.isArray(model.merges)) (model.merges as unknown[]).push(m.value);
      return;
    case 'added':
      if (Array.isArray(t.added_tokens)) (t.added_tokens as unknown[]).push(m.value);
      return;
    case 'addedId':
      if (Array.isArray(t.added_tokens) && t.added_tokens.length > 0) {
        const token: unknown = t.added_tokens[m.index % t.added_tokens.length];
        if (isObject(token)) token.id = m.id;
      }
      return;
    case 'modelField':
      if (model) model[m.key] = m.value;
      return;
    case 'topField':
      t[m.key] = m.value;
      return;
    case 'deep':
      t.normalizer = `${DEEP}${m.levels}`; // nested in the text (JSON.stringify would overflow the stack)
      return;
  }
}

/** What happens to the JSON text after the mutations: nothing (mostly), cut, or one character changed. */
const textEdit = fc.oneof(
  { weight: 18, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.record({ cut: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ at: fc.nat(), char: fc.constantFrom('"', '{', '}', '[', ']', ',', ':', '0', '-', 'e', '\\', ' ') }) },
);

/** Texts to encode: ordinary, special tokens, and ones that make backtracking regexes work hard. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    'Hello, world! It\'s 2024.',
    'a<|endoftext|>b',
    `${'a'.repeat(32)}!`,
    `${'x'.repeat(32)};`,
    `${' ,'.repeat(24)}`,
    `${' '.repeat(2000)}x`,
    'Aé東'.repeat(300),
    '1'.repeat(1000),
  ),
);

/** The model's vocabulary: the tokenizer's own size plus `extra` (mostly 0), or an absolute size. */
const vocabSize = fc.oneof(
  { weight: 6, arbitrary: fc.record({ extra: fc.constant(0) }) },
  { weight: 2, arbitrary: fc.record({ extra: fc.integer({ min: -3, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ size: fc.constantFrom(1, 256, 2 ** 20) }) },
);

const fuzzCase = fc.record({ base, mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }), edit: textEdit, vocabSize, texts: fc.array(text, { minLength: 1, maxLength: 3 }) });

// ---- the property ------------------------------------------------------------------------------

function expectCleanFileError(error: unknown) {
  if (!(error instanceof ModelFileError)) throw new Error(`not a ModelFileError: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  expect(error.file).toBe(FILE);
  expect(error.message.startsWith(`${FILE}: `)).toBe(true);
  expect(error.message.length).toBeLessThan(2000);
}

function exercise(tok: Tokenizer, vocab: number, texts: string[]): void {
  for (const t of texts) {
    let ids: number[];
    try {
      ids = tok.encode(t);
    } catch (error) {
      if (error instanceof TokenizerError) continue;
      expectCleanFileError(error);
      continue;
    }
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`encode(${JSON.stringify(t.slice(0, 40))}) gave id ${id}, outside 0..${vocab - 1}`);
    const probe = [...ids, 0, vocab - 1, vocab + 5, -1];
    for (const ids2 of [ids, probe]) {
      try {
        expect(typeof tok.decode(ids2)).toBe('string');
        expect(typeof tok.decode(ids2, { skipSpecialTokens: true })).toBe('string');
        const stream = tok.decoder();
        const streamed = ids2.map((id) => stream.push(id)).join('') + stream.flush();
        expect(typeof streamed).toBe('string');
      } catch (error) {
        expectCleanFileError(error);
      }
    }
  }
}

describe('tokenizer.json fuzz', () => {
  it(`clean ModelFileError or a working tokenizer, each case within ${CASE_MS} ms (FUZZ_RUNS=${RUNS}, FUZZ_SEED=${SEED})`, () => {
    const outcomes = { refused: 0, working: 0 };
    let cases = 0;
    let slowest = 0;
    fc.assert(
      fc.property(fuzzCase, (c) => {
        cases++;
        const t = structuredClone(c.base);
        for (const m of c.mutations) mutate(t, m);
        let json = JSON.stringify(t).replace(new RegExp(`"${DEEP}(\\d+)"`), (_, n: string) => {
          const levels = Number(n);
          return `${'{"type":"Sequence","normalizers":['.repeat(levels)}{"type":"NFC"}${']}'.repeat(levels)}`;
        });
        if (c.edit && 'cut' in c.edit) json = json.slice(0, c.edit.cut % (json.length + 1));
        else if (c.edit) {
          const at = c.edit.at % json.length;
          json = json.slice(0, at) + c.edit.char + json.slice(at + 1);
        }
        const vocab = 'size' in c.vocabSize ? c.vocabSize.size : Object.keys(c.base.model.vocab).length + 1 + c.vocabSize.extra;
        const heap = process.memoryUsage().heapUsed;
        const started = performance.now();
        let tok: Tokenizer | null = null;
        try {
          tok = tokenizerFor(vocab, json, FILE);
        } catch (error) {
          expectCleanFileError(error);
        }
        if (tok) exercise(tok, vocab, c.texts);
        const ms = performance.now() - started;
        slowest = Math.max(slowest, ms);
        expect(ms, 'time for the case').toBeLessThan(CASE_MS);
        expect(process.memoryUsage().heapUsed - heap, 'heap growth for the case').toBeLessThan(CASE_HEAP_BYTES);
        outcomes[tok ? 'working' : 'refused']++;
      }),
      { numRuns: RUNS, seed: SEED },
    );
    console.info(`[fuzz] tokenizer.json: ${cases} cases, 0 failures (${outcomes.refused} refused with a ModelFileError, ${outcomes.working} working); slowest ${slowest.toFixed(0)} ms; seed ${SEED}`);
    expect(cases).toBeGreaterThanOrEqual(RUNS);
  }, Math.max(60_000, RUNS * 200));
});
