/**
 * Byte-level tokenizer (MambaByte): the ids are the UTF-8 bytes of the text, vocab 256, no
 * special tokens. Decoding is UTF-8 with U+FFFD for invalid sequences (TextDecoder, non-fatal),
 * streaming with `{ stream: true }` so a character split across tokens comes out whole.
 */
import type { DecodeOptions, StreamDecoder, Tokenizer } from './types.js';

export const BYTE_VOCAB_SIZE = 256;
/** Keep a leading U+FEFF: it is part of the text, not a byte-order mark to strip. */
const UTF8 = { ignoreBOM: true };

export class ByteTokenizer implements Tokenizer {
  readonly kind = 'bytes';
  readonly vocabSize = BYTE_VOCAB_SIZE;
  readonly specialIds: ReadonlySet<number> = new Set();
  readonly warnings: readonly string[] = [];
  private readonly encoder = new TextEncoder();

  encode(text: string): number[] {
    return Array.from(this.encoder.encode(text));
  }

  decode(ids: readonly number[], _options?: DecodeOptions): string {
    return new TextDecoder('utf-8', UTF8).decode(toBytes(ids));
  }

  decoder(_options?: DecodeOptions): StreamDecoder {
    let utf8 = new TextDecoder('utf-8', UTF8);
    return {
      push(id) {
        return utf8.decode(toBytes([id]), { stream: true });
      },
      flush() {
        const rest = utf8.decode();
        utf8 = new TextDecoder('utf-8', UTF8);
        return rest;
      },
    };
  }
}

/** Ids outside 0..255 are skipped, like unknown ids in the Rust library's decode. */
function toBytes(ids: readonly number[]): Uint8Array {
  return Uint8Array.from(ids.filter((id) => Number.isInteger(id) && id >= 0 && id < BYTE_VOCAB_SIZE));
}
