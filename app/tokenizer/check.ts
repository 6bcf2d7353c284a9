/**
 * What a tokenizer.json must be before @huggingface/tokenizers sees it. The library trusts its
 * input, and two things in an untrusted file can make it run for ever:
 *
 * - **Regexes.** `Split` and `Replace` (pre-tokenizer, normalizer, decoder) compile the file's
 *   `{"Regex": …}` into a JS RegExp, a backtracking engine: `(a+)+$` takes exponential time on
 *   "aaaa…!". The studio runs only the patterns real tokenizers carry, compared as exact strings
 *   (`SAFE_TOKENIZER_REGEXES`), each timed on adversarial texts by test/unit/tokenizer-safety.test.ts.
 *   The alternatives were worse here: a linear-time engine (RE2 and kin) has no lookahead, and
 *   every one of these patterns ends in `\s+(?!\S)`; a worker with a deadline would make
 *   `encode` asynchronous on every path that tokenizes (engine, CLI, analysis) and still burn a
 *   core until it is killed; and "safe regex" heuristics (star height) miss `(a|a)*$`.
 *   `{"String": …}` patterns are escaped literals, always safe. GPT-NeoX's tokenizer (the Mamba
 *   checkpoints') and the SentencePiece-style Llama 2 / Mistral ones have no Regex at all.
 * - **Ids.** The library stores tokens in an array indexed by id and walks it from 0 to the
 *   largest id (`get_vocab`): one added token with id 4294967294 is four billion steps. Every id
 *   must lie below the model's vocabulary plus the number of added tokens (added tokens may
 *   follow the vocabulary; GPT-NeoX's end one past Mamba's 50280 rows).
 *
 * It also refuses what would make a working-looking tokenizer give wrong ids: a model other than
 * BPE (WordPiece's greedy match is cubic in a word's length; no Mamba-family model uses one),
 * merges whose parts or result are not in the vocabulary (the Rust library refuses them too),
 * added tokens that are not `{id, content}` or whose content is longer than
 * MAX_ADDED_TOKEN_CHARS (the library's added-token matcher walks up to that many characters at
 * every position of the text), and components nested deeper than MAX_COMPONENT_DEPTH.
 *
 * Every problem is a ModelFileError naming the file and where in it.
 */
import { ModelFileError } from '../formats/errors.js';

/** The tokenizer.json regexes the studio runs, with whose they are (as in the files: after JSON decoding). */
export const SAFE_TOKENIZER_REGEXES: ReadonlyMap<string, string> = new Map([
  // GPT-2's (ByteLevel's built-in regex, written out as a Split by some converters).
  [String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, 'GPT-2'],
  // Llama 3's (tiktoken cl100k): Llama 3 and the hybrid Mamba models built on its tokenizer (Bamba).
  [String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`, 'Llama 3'],
  // Falcon's (and Falcon-Mamba's) digit triples, after Punctuation, ByteLevel and Digits.
  ['[0-9][0-9][0-9]', 'Falcon'],
]);

/** Longest added token content, in UTF-16 code units (GPT-NeoX's longest is 24 spaces; Llama 3's ~30). */
export const MAX_ADDED_TOKEN_CHARS = 256;
/** Deepest nesting of normalizer / pre-tokenizer / post-processor / decoder objects and arrays. */
export const MAX_COMPONENT_DEPTH = 32;

const COMPONENTS = ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const;

function quote(s: string, max = 80): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/** A JSON value in a few words, without converting it (an object's "toString" is data, not code to call). */
function show(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return Array.isArray(v) ? `an array of ${v.length}` : 'an object';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isTokenId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Throws a ModelFileError when `json` (a parsed tokenizer.json whose `model` has a string `type`)
 * is something the studio will not hand to @huggingface/tokenizers.
 * @param vocabSize the model's vocabulary (embedding rows), when known; else ids are bounded by
 *   the tokenizer's own vocabulary size
 */
export function checkTokenizerJson(json: Record<string, unknown>, file: string, vocabSize?: number): void {
  const fail: (problem: string) => never = (problem) => refuse(file, problem);
  const model = json.model as Record<string, unknown>;
  if (model.type !== 'BPE') {
    fail(`model type ${show(model.type)} is not supported: the studio runs BPE tokenizers (GPT-NeoX, Llama, Falcon, Mistral)`);
  }
  const vocab = model.vocab;
  if (!isObject(vocab)) fail('model.vocab must be an object of token → id');
  const entries = Object.entries(vocab as Record<string, unknown>);

  const addedRaw = json.added_tokens ?? [];
  if (!Array.isArray(addedRaw)) fail('added_tokens must be an array');
  const added = addedRaw as unknown[];
  const limit = (vocabSize ?? entries.length) + added.length;
  const bound =
    vocabSize === undefined
      ? `the tokenizer's ${entries.length} vocabulary entries and ${added.length} added tokens`
      : `the model's vocabulary of ${vocabSize} and the ${added.length} added tokens`;

  let maxId = -1;
  for (const [token, id] of entries) {
    if (!isTokenId(id)) fail(`model.vocab gives ${quote(token)} the id ${show(id)}: ids are integers from 0`);
    maxId = Math.max(maxId, id as number);
  }
  if (maxId >= limit) {
    if (vocabSize !== undefined) fail(`has ${maxId + 1} tokens but the model's vocabulary has ${vocabSize}: it belongs to another model`);
    fail(`model.vocab has ids up to ${maxId} but only ${entries.length} entries: ids must lie below ${bound}`);
  }

  for (const [i, t] of added.entries()) {
    if (!isObject(t) || typeof t.content !== 'string' || t.id === undefined) fail(`added_tokens[${i}] must be an object with an "id" and a "content"`);
    const { id, content } = t as { id: unknown; content: string };
    if (!isTokenId(id)) fail(`added_tokens[${i}] ${quote(content)} has the id ${show(id)}: ids are integers from 0`);
    if ((id as number) >= limit) fail(`added_tokens[${i}] ${quote(content)} has the id ${id as number}, past any id the model can use (below ${bound})`);
    if (content.length === 0 || content.length > MAX_ADDED_TOKEN_CHARS) {
      fail(`added_tokens[${i}] has ${content.length} characters: an added token has 1 to ${MAX_ADDED_TOKEN_CHARS}`);
    }
  }

  checkMerges(model, vocab as Record<string, unknown>, fail);
  for (const key of COMPONENTS) checkPatterns(json[key], key, 0, fail);
}

function refuse(file: string, problem: string): never {
  throw new ModelFileError(file, problem);
}

/** As the Rust library's BPE: every merge is two vocabulary tokens whose concatenation is one too. */
function checkMerges(model: Record<string, unknown>, vocab: Record<string, unknown>, fail: (problem: string) => never): void {
  const merges = model.merges ?? [];
  if (!Array.isArray(merges)) fail('model.merges must be an array');
  const has = (token: string) => Object.hasOwn(vocab, token);
  const prefix = typeof model.continuing_subword_prefix === 'string' ? model.continuing_subword_prefix.length : 0;
  for (const [i, m] of (merges as unknown[]).entries()) {
    let pair: [string, string] | null = null;
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length === 2) pair = parts as [string, string];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      pair = [m[0], m[1]];
    }
    if (!pair) fail(`model.merges[${i}] ${show(m)} is not two tokens ("a b" or ["a", "b"])`);
    const [a, b] = pair as [string, string];
    const missing = [a, b, a + b.slice(prefix)].find((t) => !has(t));
    if (missing !== undefined) fail(`model.merges[${i}] uses ${quote(missing)}, which is not in model.vocab`);
  }
}

/** Walks a component; every `pattern` must be a String, or a Regex in SAFE_TOKENIZER_REGEXES. */
function checkPatterns(v: unknown, where: string, depth: number, fail: (problem: string) => never): void {
  if (typeof v !== 'object' || v === null) return;
  if (Array.isArray(v)) {
    v.forEach((item, i) => checkPatterns(item, `${where}[${i}]`, depth, fail));
    return;
  }
  if (depth >= MAX_COMPONENT_DEPTH) fail(`${where.replace(/[.[].*/, '')} nests objects more than ${MAX_COMPONENT_DEPTH} deep`);
  const type = (v as { type?: unknown }).type;
  if ((type === 'Split' || type === 'Replace') && !('pattern' in v)) fail(`${where} (${type}) has no "pattern"`);
  for (const [key, value] of Object.entries(v)) {
    const at = `${where}.${key}`;
    if (key === 'pattern') checkPattern(value, at, type, fail);
    else checkPatterns(value, at, depth + 1, fail);
  }
}

function checkPattern(p: unknown, where: string, type: unknown, fail: (problem: string) => never): void {
  const keys = isObject(p) ? Object.keys(p) : [];
  if (!isObject(p) || keys.length !== 1 || (typeof p.String !== 'string' && typeof p.Regex !== 'string')) {
    fail(`${where} must be {"String": "…"} or {"Regex": "…"}`);
  }
  const regex = (p as { Regex?: unknown }).Regex;
  if (typeof regex !== 'string' || SAFE_TOKENIZER_REGEXES.has(regex)) return;
  const known = [...new Set(SAFE_TOKENIZER_REGEXES.values())].join(', ');
  fail(
    `${where}${typeof type === 'string' ? ` (${type})` : ''} is the regex ${quote(regex)}, which the studio does not run: ` +
      `a regex from a file can take exponential time on some texts, so only the patterns of known tokenizers (${known}) are run`,
  );
}
