/** Small byte-level BPE tokenizer.json objects for tokenizer tests (GPT-2's byte → character map). */

/** GPT-2's byte → printable character map, as the ByteLevel pre-tokenizer uses it. */
export function bytesToUnicode(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const chars: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable(b) ? b : 256 + extra++);
  return chars;
}

export const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

export interface TokenizerJsonObject {
  added_tokens: { id: number; content: string; special: boolean; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean }[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; [key: string]: unknown };
  [key: string]: unknown;
}

/**
 * 256 byte tokens (ids 0..255), then the merges' results (256, 257 …), then `<|endoftext|>` as a
 * special added token with the next id: 261 ids in all with the default merges.
 */
export function byteLevelTokenizer(merges: string[] = ['Ġ t', 'h e', 'Ġt he', 'ð Ł']): TokenizerJsonObject {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, b) => (vocab[c] = b));
  merges.forEach((m, i) => (vocab[m.replace(' ', '')] = 256 + i));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 256 + merges.length, content: '<|endoftext|>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }],
    normalizer: { type: 'NFC' },
    pre_tokenizer: BYTE_LEVEL,
    post_processor: BYTE_LEVEL,
    decoder: BYTE_LEVEL,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, vocab, merges },
  };
}

/** A Split pre-tokenizer with `regex` before the byte-level one (as Llama 3's tokenizer.json has it). */
export function splitThenByteLevel(regex: string) {
  return {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
      { ...BYTE_LEVEL, use_regex: false },
    ],
  };
}
