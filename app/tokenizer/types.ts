/**
 * The tokenizer interface the engine and the UI use, whatever the model's tokenizer is: raw
 * UTF-8 bytes (MambaByte, vocab 256) or a Hugging Face `tokenizer.json` (GPT-NeoX BPE for the
 * Mamba checkpoints).
 */

/**
 * Turns generated ids into text as they come. A character can span several tokens (an emoji is
 * four byte tokens; a byte-level BPE token can end in the middle of a UTF-8 sequence), so a push
 * may return '' and a later one the whole character. The concatenation of every push and the
 * final flush equals `decode` of all the ids.
 */
export interface StreamDecoder {
  /** Takes the next id; returns the text completed by it (possibly ''). */
  push(id: number): string;
  /** Returns what is still held back (an incomplete sequence becomes U+FFFD) and starts over. */
  flush(): string;
}

export interface EncodeOptions {
  /**
   * Apply the post-processor's special tokens (a BOS it adds …). Default true. False for text
   * that already holds them, such as a prompt written by a chat template (as transformers'
   * apply_chat_template tokenizes: add_special_tokens=False).
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens such as `<|endoftext|>` (default false: decode shows them). */
  skipSpecialTokens?: boolean;
}

export interface Tokenizer {
  readonly kind: 'bytes' | 'bpe';
  /** Ids run from 0 to vocabSize − 1. */
  readonly vocabSize: number;
  /** Ids for the text, as the Rust `tokenizers` library gives them with its default settings. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Text for the ids; ids the tokenizer does not know are skipped (as the Rust library does). */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  decoder(options?: DecodeOptions): StreamDecoder;
  /** Ids of the special tokens (e.g. `<|endoftext|>`), for stopping generation. */
  readonly specialIds: ReadonlySet<number>;
  /** Mismatches with the model found when the tokenizer was chosen (see tokenizerFor). */
  readonly warnings: readonly string[];
}

/** Text that cannot be tokenized for this model (e.g. it needs a token the model does not have). */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}
