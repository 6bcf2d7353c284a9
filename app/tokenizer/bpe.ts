/**
 * Tokenizers from a Hugging Face `tokenizer.json` (GPT-NeoX byte-level BPE for the Mamba
 * checkpoints), through `@huggingface/tokenizers`, set up to give what the Rust `tokenizers`
 * library gives with its defaults:
 *
 * - encode: `Tokenizer.encode(text)` with add_special_tokens on (the post-processor's template,
 *   if any, applies; GPT-NeoX's ByteLevel one adds nothing), off with `addSpecialTokens: false`
 *   (a chat template's prompt holds its own). Added tokens are split out before
 *   normalization (special ones, like `<|endoftext|>`, anywhere in the text), then the NFC
 *   normalizer, the ByteLevel pre-tokenizer and the BPE merges, as in Rust.
 * - decode: the JS library's `clean_up_tokenization_spaces` defaults to true (a transformers
 *   habit that rewrites " ," → ","); the Rust library has no such step, so it is turned off.
 *   Unknown ids are skipped (Rust skips them; the JS library would decode them as `undefined`).
 *   Special tokens are kept unless `skipSpecialTokens` (Rust filters them by content, as the JS
 *   library does).
 *
 * Stream decoding uses the prefix/read-offset method of Hugging Face's text-generation-inference:
 * decode a short window of recent ids with and without the new one and emit the difference once
 * it does not end in U+FFFD. That keeps multi-token characters whole and gets leading spaces
 * right for any decoder (ByteLevel, Metaspace, WordPiece …), not only byte-level ones.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ModelFileError } from '../formats/errors.js';
import { checkTokenizerJson } from './check.js';
import type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from './types.js';

/**
 * The most ids a stream decoder holds back waiting for a complete character. One character is at
 * most 4 bytes, so 4 byte-level tokens; more means text that will not complete.
 */
export const MAX_HELD_IDS = 64;

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe';
  readonly vocabSize: number;
  /** Largest id of the model's own vocabulary + 1 (added tokens may come after it). */
  readonly baseVocabSize: number;
  readonly specialIds: ReadonlySet<number>;
  /** Added tokens: id → content and whether special. */
  readonly addedTokens: ReadonlyMap<number, { content: string; special: boolean }>;
  readonly warnings: readonly string[] = [];
  private readonly hf: HfTokenizer;

  private constructor(
    hf: HfTokenizer,
    private readonly file: string,
  ) {
    this.hf = hf;
    const added = new Map<number, { content: string; special: boolean }>();
    for (const [id, token] of hf.get_added_tokens_decoder()) added.set(id, { content: token.content, special: token.special });
    this.addedTokens = added;
    this.specialIds = new Set([...added].filter(([, t]) => t.special).map(([id]) => id));
    let max = -1;
    for (const id of hf.get_vocab(true).values()) max = Math.max(max, id);
    for (const id of added.keys()) max = Math.max(max, id);
    let baseMax = -1;
    for (const id of hf.get_vocab(false).values()) baseMax = Math.max(baseMax, id);
    this.vocabSize = max + 1;
    this.baseVocabSize = baseMax + 1;
  }

  /**
   * Parses a tokenizer.json text; `file` names it in errors. Checks it first (check.ts: known
   * regexes only, ids bounded by `vocabSize`, the model's vocabulary when given).
   */
  static fromJson(text: string, file = 'tokenizer.json', vocabSize?: number): BpeTokenizer {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new ModelFileError(file, `not valid JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ModelFileError(file, 'is not a tokenizer.json (not a JSON object)');
    const model = (json as { model?: unknown }).model;
    if (typeof model !== 'object' || model === null || typeof (model as { type?: unknown }).type !== 'string') {
      throw new ModelFileError(file, 'is not a tokenizer.json (no "model" with a "type")');
    }
    checkTokenizerJson(json as Record<string, unknown>, file, vocabSize);
    const full = { added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...(json as object) };
    try {
      return new BpeTokenizer(new HfTokenizer(full, {}), file);
    } catch (error) {
      throw new ModelFileError(file, `cannot be used: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Pieces with no id (not in the vocabulary, and no unk_token) are left out, as the Rust library does. */
  encode(text: string, options?: EncodeOptions): number[] {
    const add_special_tokens = options?.addSpecialTokens ?? true;
    const ids = this.library('tokenize the text', () => this.hf.encode(text, { add_special_tokens }).ids as (number | undefined)[]);
    return ids.filter((id): id is number => id !== undefined);
  }

  /**
   * Runs a call into @huggingface/tokenizers. It throws (TypeError and the like) only when the
   * file's components do not fit together (a template naming a second sequence, a decoder's
   * field of the wrong type …): that is the file's problem, reported as such.
   */
  private library<T>(what: string, call: () => T): T {
    try {
      return call();
    } catch (error) {
      throw new ModelFileError(this.file, `cannot ${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const known = ids.filter((id) => this.hf.id_to_token(id) !== undefined);
    if (known.length === 0) return '';
    return this.library('decode tokens', () =>
      this.hf.decode(known, { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false }),
    );
  }

  decoder(options: DecodeOptions = {}): StreamDecoder {
    let ids: number[] = [];
    let prefixOffset = 0;
    let readOffset = 0;
    const decode = (from: number, to?: number) => this.decode(ids.slice(from, to), options);
    return {
      push(id) {
        ids.push(id);
        const prefix = decode(prefixOffset, readOffset);
        const text = decode(prefixOffset);
        // Held ids are decoded again at every push: past MAX_HELD_IDS (a decoder that turns them
        // into nothing, or a model emitting invalid UTF-8), what they give is let out as it is,
        // so that streaming stays linear in the number of tokens.
        const complete = text.length > prefix.length && !text.endsWith('\uFFFD');
        if (complete || ids.length - readOffset > MAX_HELD_IDS) {
          const out = text.slice(prefix.length);
          // Keep only the window the next decode needs.
          ids = ids.slice(readOffset);
          prefixOffset = 0;
          readOffset = ids.length;
          return out;
        }
        return '';
      },
      flush() {
        const prefix = decode(prefixOffset, readOffset);
        const text = decode(prefixOffset);
        ids = [];
        prefixOffset = readOffset = 0;
        return text.startsWith(prefix) ? text.slice(prefix.length) : text;
      },
    };
  }
}
