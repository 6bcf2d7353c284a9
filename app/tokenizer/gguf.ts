/**
 * The tokenizer stored in a GGUF file's metadata (llama.cpp's converter writes it there), turned
 * into the equivalent Hugging Face `tokenizer.json` so that BpeTokenizer (bpe.ts) runs it exactly
 * as it runs the tokenizer.json of a safetensors checkpoint.
 *
 * Keys read (gguf-py `Keys.Tokenizer`):
 * - `tokenizer.ggml.model`: only "gpt2" (byte-level BPE, what the Mamba checkpoints use: the
 *   GPT-NeoX-20B tokenizer). "llama" (SentencePiece), "bert" (WordPiece), "t5" (Unigram) … are
 *   refused with a ModelFileError.
 * - `tokenizer.ggml.pre`: which pre-tokenizer regex llama.cpp uses. Accepted are those that use
 *   GPT-2's regex, which is ByteLevel's: "gpt-2", and "mpt" and "olmo" (both the GPT-NeoX
 *   tokenizer; llama.cpp gives them GPT-2's regex since #8228). A file without the key (written
 *   before the key existed) is read as GPT-2's too. Any other value is refused.
 * - `tokenizer.ggml.tokens`: the vocabulary in id order, as byte-level strings ("Ġthe"). Added
 *   tokens are stored by their content (the converter writes `tokenizer.get_vocab()`).
 * - `tokenizer.ggml.token_type` (optional; all normal without it): 1 normal, 2 unknown,
 *   3 control, 4 user-defined, 5 unused, 6 byte.
 * - `tokenizer.ggml.merges`: "a b" strings, split at the first space after the first character
 *   (as llama.cpp splits them), in rank order.
 * - `tokenizer.ggml.{bos,eos,unknown,padding}_token_id` (optional), and
 *   `tokenizer.ggml.add_bos_token` / `add_eos_token` (optional).
 *
 * What it becomes, mirroring GPT-NeoX-20B's tokenizer.json:
 * - model: BPE over every token (so ids, and the vocabulary size that tokenizerFor checks, are
 *   the file's), with the merges, no unk token (byte-level BPE covers every byte).
 * - added_tokens: control and unknown tokens (in a file without token types: the tokens the
 *   special-id keys name) as special tokens (matched anywhere in the text, on the raw text; `skipSpecialTokens` drops them);
 *   user-defined tokens (GPT-NeoX's runs of spaces) as non-special ones that are matched on the
 *   normalized text, as in the original tokenizer.json. Unused tokens stay plain vocabulary.
 * - normalizer NFC: GGUF records no normalizer; GPT-NeoX's tokenizer.json has NFC, and NFC only
 *   changes text that has a composed form, so a GGUF tokenizes as the tokenizer.json it was
 *   converted from.
 * - pre-tokenizer and decoder ByteLevel (no prefix space, GPT-2's regex); post-processor
 *   ByteLevel, or a template adding BOS / EOS when `add_bos_token` / `add_eos_token` say so.
 *
 * Every problem is a ModelFileError naming the file and the key.
 */
import { ModelFileError } from '../formats/errors.js';
import type { GgufValue } from '../formats/gguf-reader.js';

export const GGUF_TOKENIZER_KEYS = {
  model: 'tokenizer.ggml.model',
  pre: 'tokenizer.ggml.pre',
  tokens: 'tokenizer.ggml.tokens',
  tokenType: 'tokenizer.ggml.token_type',
  merges: 'tokenizer.ggml.merges',
  bos: 'tokenizer.ggml.bos_token_id',
  eos: 'tokenizer.ggml.eos_token_id',
  unk: 'tokenizer.ggml.unknown_token_id',
  pad: 'tokenizer.ggml.padding_token_id',
  addBos: 'tokenizer.ggml.add_bos_token',
  addEos: 'tokenizer.ggml.add_eos_token',
} as const;
const K = GGUF_TOKENIZER_KEYS;

/** gguf-py `TokenType`. */
export const GGUF_TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** The tokenizer models this reader turns into a tokenizer.json. */
export const SUPPORTED_GGUF_TOKENIZER_MODELS: readonly string[] = ['gpt2'];
/** `tokenizer.ggml.pre` values whose regex is GPT-2's (ByteLevel's). */
export const SUPPORTED_GGUF_PRE_TOKENIZERS: readonly string[] = ['gpt-2', 'mpt', 'olmo'];

const OTHER_MODELS: Record<string, string> = {
  llama: 'SentencePiece',
  bert: 'WordPiece',
  t5: 'Unigram',
  rwkv: 'RWKV',
  plamo2: 'PLaMo-2',
  'no_vocab': 'no vocabulary',
  none: 'no vocabulary',
};

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

type TemplatePiece = { SpecialToken: { id: string; type_id: number } } | { Sequence: { id: 'A' | 'B'; type_id: number } };

/** The parts of a tokenizer.json that BpeTokenizer reads. */
export interface GgufTokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: { type: 'NFC' };
  pre_tokenizer: ByteLevelJson;
  post_processor:
    | ByteLevelJson
    | { type: 'TemplateProcessing'; single: TemplatePiece[]; pair: TemplatePiece[]; special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }> };
  decoder: ByteLevelJson;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: false;
    byte_fallback: false;
    ignore_merges: false;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}
type ByteLevelJson = { type: 'ByteLevel'; add_prefix_space: false; trim_offsets: true; use_regex: true };

type Metadata = ReadonlyMap<string, GgufValue>;

/** True when the metadata carries a tokenizer at all (then ggufTokenizerJson says whether it can be used). */
export function hasGgufTokenizer(metadata: Metadata): boolean {
  return metadata.has(K.model);
}

function describe(v: GgufValue): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return `${typeof v} ${String(v)}`;
}

/**
 * Checks the tokenizer's kind (`tokenizer.ggml.model` and `.pre`) without reading the vocabulary:
 * throws a ModelFileError when the studio cannot run it.
 */
export function checkGgufTokenizerKind(file: string, metadata: Metadata): void {
  const model = metadata.get(K.model);
  if (model === undefined) throw new ModelFileError(file, `has no tokenizer in its metadata (no ${K.model})`);
  if (typeof model !== 'string') throw new ModelFileError(file, `${K.model} must be a string, got ${describe(model)}`);
  if (!SUPPORTED_GGUF_TOKENIZER_MODELS.includes(model)) {
    const kind = OTHER_MODELS[model];
    throw new ModelFileError(
      file,
      `${K.model} is "${model}"${kind ? ` (${kind})` : ''}, which is not supported: the studio reads only "gpt2" (byte-level BPE) tokenizers from GGUF files`,
    );
  }
  const pre = metadata.get(K.pre);
  if (pre === undefined) return;
  if (typeof pre !== 'string') throw new ModelFileError(file, `${K.pre} must be a string, got ${describe(pre)}`);
  if (!SUPPORTED_GGUF_PRE_TOKENIZERS.includes(pre)) {
    throw new ModelFileError(
      file,
      `${K.pre} is "${pre}", which is not supported: the studio reads GPT-2's pre-tokenizer (${SUPPORTED_GGUF_PRE_TOKENIZERS.map((p) => `"${p}"`).join(', ')})`,
    );
  }
}

function stringArray(file: string, metadata: Metadata, key: string): string[] {
  const v = metadata.get(key);
  if (v === undefined) throw new ModelFileError(file, `${key} is missing: the GGUF tokenizer needs it`);
  if (!Array.isArray(v)) throw new ModelFileError(file, `${key} must be an array of strings, got ${describe(v)}`);
  const bad = v.findIndex((x) => typeof x !== 'string');
  if (bad >= 0) throw new ModelFileError(file, `${key} must be an array of strings, but item ${bad} is ${describe(v[bad] as GgufValue)}`);
  return v as string[];
}

function tokenId(file: string, metadata: Metadata, key: string, count: number): number | null {
  const v = metadata.get(key);
  if (v === undefined) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= count) {
    throw new ModelFileError(file, `${key} must be a token id from 0 to ${count - 1}, got ${typeof v === 'bigint' ? v.toString() : describe(v)}`);
  }
  return v;
}

function flag(file: string, metadata: Metadata, key: string): boolean {
  const v = metadata.get(key);
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new ModelFileError(file, `${key} must be a boolean, got ${describe(v)}`);
  return v;
}

/** Builds the tokenizer.json equivalent of a GGUF file's tokenizer; `file` names it in errors. */
export function ggufTokenizerJson(file: string, metadata: Metadata): GgufTokenizerJson {
  checkGgufTokenizerKind(file, metadata);
  const tokens = stringArray(file, metadata, K.tokens);
  if (tokens.length === 0) throw new ModelFileError(file, `${K.tokens} is empty`);
  const n = tokens.length;

  let types: number[] | null = null;
  const rawTypes = metadata.get(K.tokenType);
  if (rawTypes !== undefined) {
    if (!Array.isArray(rawTypes)) throw new ModelFileError(file, `${K.tokenType} must be an array of integers, got ${describe(rawTypes)}`);
    if (rawTypes.length !== n) throw new ModelFileError(file, `${K.tokenType} has ${rawTypes.length} entries but ${K.tokens} has ${n}`);
    const bad = rawTypes.findIndex((t) => typeof t !== 'number' || !Number.isInteger(t) || t < GGUF_TOKEN_TYPE.NORMAL || t > GGUF_TOKEN_TYPE.BYTE);
    if (bad >= 0) throw new ModelFileError(file, `${K.tokenType}[${bad}] is ${describe(rawTypes[bad] as GgufValue)}; token types are integers 1–6`);
    types = rawTypes as number[];
  }

  // Vocabulary. llama.cpp names an empty token "[EMPTY_<id>]" and refuses a repeated one.
  const ids = new Map<string, number>();
  const content: string[] = [];
  for (let i = 0; i < n; i++) {
    const token = tokens[i] === '' ? `[EMPTY_${i}]` : (tokens[i] as string);
    const first = ids.get(token);
    if (first !== undefined) throw new ModelFileError(file, `${K.tokens}[${i}] ${JSON.stringify(token)} repeats token ${first}`);
    ids.set(token, i);
    content.push(token);
  }

  const merges: [string, string][] = [];
  const mergeStrings = stringArray(file, metadata, K.merges);
  for (let i = 0; i < mergeStrings.length; i++) {
    const m = mergeStrings[i] as string;
    const at = m.indexOf(' ', 1);
    const a = at < 0 ? '' : m.slice(0, at);
    const b = at < 0 ? '' : m.slice(at + 1);
    if (!a || !b) throw new ModelFileError(file, `${K.merges}[${i}] ${JSON.stringify(m)} is not two tokens separated by a space`);
    const missing = [a, b, a + b].find((t) => !ids.has(t));
    if (missing !== undefined) throw new ModelFileError(file, `${K.merges}[${i}] ${JSON.stringify(m)} uses ${JSON.stringify(missing)}, which is not in ${K.tokens}`);
    merges.push([a, b]);
  }

  const bos = tokenId(file, metadata, K.bos, n);
  const eos = tokenId(file, metadata, K.eos, n);
  const named = new Set([bos, eos, tokenId(file, metadata, K.unk, n), tokenId(file, metadata, K.pad, n)].filter((id): id is number => id !== null));
  const addBos = flag(file, metadata, K.addBos);
  const addEos = flag(file, metadata, K.addEos);
  if (addBos && bos === null) throw new ModelFileError(file, `${K.addBos} is true but ${K.bos} is missing`);
  if (addEos && eos === null) throw new ModelFileError(file, `${K.addEos} is true but ${K.eos} is missing`);

  const added: AddedTokenJson[] = [];
  for (let id = 0; id < n; id++) {
    const type = types ? (types[id] as number) : GGUF_TOKEN_TYPE.NORMAL;
    // Without token types, the tokens the special-id keys name are the only known special ones.
    const special = type === GGUF_TOKEN_TYPE.CONTROL || type === GGUF_TOKEN_TYPE.UNKNOWN || (!types && named.has(id));
    if (!special && type !== GGUF_TOKEN_TYPE.USER_DEFINED) continue;
    added.push({ id, content: content[id] as string, single_word: false, lstrip: false, rstrip: false, normalized: !special, special });
  }

  const byteLevel: ByteLevelJson = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  let post: GgufTokenizerJson['post_processor'] = byteLevel;
  if (addBos || addEos) {
    const piece = (id: number | null, add: boolean): TemplatePiece[] => (add && id !== null ? [{ SpecialToken: { id: content[id] as string, type_id: 0 } }] : []);
    const seq = (s: 'A' | 'B', typeId: number): TemplatePiece[] => [...piece(bos, addBos), { Sequence: { id: s, type_id: typeId } }, ...piece(eos, addEos)];
    const specialTokens: Record<string, { id: string; ids: number[]; tokens: string[] }> = {};
    for (const [id, add] of [[bos, addBos], [eos, addEos]] as const) {
      if (add && id !== null) specialTokens[content[id] as string] = { id: content[id] as string, ids: [id], tokens: [content[id] as string] };
    }
    post = { type: 'TemplateProcessing', single: seq('A', 0), pair: [...seq('A', 0), ...seq('B', 1)], special_tokens: specialTokens };
  }

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: byteLevel,
    post_processor: post,
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      // fromEntries makes own properties even of "__proto__" and the like.
      vocab: Object.fromEntries(ids),
      merges,
    },
  };
}

/** ggufTokenizerJson as text, for tokenizerFor. */
export function ggufTokenizerText(file: string, metadata: Metadata): string {
  return JSON.stringify(ggufTokenizerJson(file, metadata));
}
