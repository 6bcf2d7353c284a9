/**
 * Picks a model's tokenizer: its `tokenizer.json` when there is one (BPE through
 * @huggingface/tokenizers), else raw bytes when the vocabulary is 256 (MambaByte). Anything else
 * cannot be run: the ids would mean nothing.
 *
 * The tokenizer is checked against the model's vocabulary: a tokenizer whose own vocabulary
 * (without added tokens) is larger than the embedding is for another model; added tokens past the
 * embedding (GPT-NeoX's tokenizer.json as shipped with some Mamba checkpoints lists added tokens
 * up to id 50280 while the embedding has 50280 rows) are reported as warnings, and encoding text
 * that produces one of them throws a TokenizerError naming the token rather than handing the
 * engine an id it cannot embed. Ids the model can produce but the tokenizer does not know (the
 * padding rows of a padded vocabulary) decode to nothing. Ids further past the vocabulary, and
 * regexes the studio does not know, are refused before the tokenizer is built (check.ts).
 *
 * `lazyTokenizer` defers all of it to the first use: a model run from token ids never builds its
 * tokenizer, and a broken tokenizer.json stops only what needs text.
 */
import { ModelFileError } from '../formats/errors.js';
import { BpeTokenizer } from './bpe.js';
import { BYTE_VOCAB_SIZE, ByteTokenizer } from './bytes.js';
import { TokenizerError, type DecodeOptions, type EncodeOptions, type StreamDecoder, type Tokenizer } from './types.js';

export { BpeTokenizer } from './bpe.js';
export { ByteTokenizer, BYTE_VOCAB_SIZE } from './bytes.js';
export { TokenizerError, type DecodeOptions, type StreamDecoder, type Tokenizer } from './types.js';

/**
 * @param vocabSize the model's vocabulary (embedding rows)
 * @param tokenizerJson the text of the model's tokenizer.json, or null when it has none
 * @param file where the tokenizer.json is (or would be), for errors
 */
export function tokenizerFor(vocabSize: number, tokenizerJson: string | null, file = 'tokenizer.json'): Tokenizer {
  if (tokenizerJson === null) {
    if (vocabSize === BYTE_VOCAB_SIZE) return new ByteTokenizer();
    throw new ModelFileError(file, `vocab ${vocabSize} needs a tokenizer.json next to the model (only a vocab of ${BYTE_VOCAB_SIZE} is read as raw bytes)`);
  }
  const bpe = BpeTokenizer.fromJson(tokenizerJson, file, vocabSize);
  if (bpe.baseVocabSize > vocabSize) {
    throw new ModelFileError(file, `has ${bpe.baseVocabSize} tokens but the model's vocabulary has ${vocabSize}: it belongs to another model`);
  }
  if (bpe.vocabSize <= vocabSize) return bpe;
  const beyond = [...bpe.addedTokens].filter(([id]) => id >= vocabSize).sort(([a], [b]) => a - b);
  const list = beyond.map(([id, t]) => `${id} ${JSON.stringify(t.content)}`).join(', ');
  return new VocabGuard(bpe, vocabSize, [`${file}: ${beyond.length} added token(s) lie past the model's vocabulary of ${vocabSize} and cannot be used: ${list}`]);
}

/**
 * `tokenizerFor`, run at the first call and remembered (the tokenizer, or the error it threw);
 * null when the model has no tokenizer (`kind` 'none': only token ids can be given).
 */
export interface LazyTokenizer {
  /** What `get` gives, known without building it: 'bytes', 'bpe' (a tokenizer.json), or 'none'. */
  readonly kind: Tokenizer['kind'] | 'none';
  /** Whether it has been built (or failed to be). */
  readonly built: boolean;
  get(): Tokenizer | null;
}

/** A lazy `tokenizerFor`; `source` null when the model has no tokenizer at all. */
export function lazyTokenizer(vocabSize: number, source: { json: string | null; file: string } | null): LazyTokenizer {
  let outcome: { ok: true; value: Tokenizer | null } | { ok: false; error: unknown } | null = source ? null : { ok: true, value: null };
  return {
    kind: source === null ? 'none' : source.json === null ? 'bytes' : 'bpe',
    get built() {
      return outcome !== null;
    },
    get() {
      if (!outcome) {
        try {
          outcome = { ok: true, value: tokenizerFor(vocabSize, source!.json, source!.file) };
        } catch (error) {
          outcome = { ok: false, error };
        }
      }
      if (!outcome.ok) throw outcome.error;
      return outcome.value;
    },
  };
}

/** A tokenizer limited to the ids the model has. */
class VocabGuard implements Tokenizer {
  readonly kind: Tokenizer['kind'];
  readonly specialIds: ReadonlySet<number>;

  constructor(
    private readonly inner: BpeTokenizer,
    readonly vocabSize: number,
    readonly warnings: readonly string[],
  ) {
    this.kind = inner.kind;
    this.specialIds = new Set([...inner.specialIds].filter((id) => id < vocabSize));
  }

  encode(text: string, options?: EncodeOptions): number[] {
    const ids = this.inner.encode(text, options);
    const bad = ids.find((id) => id >= this.vocabSize);
    if (bad !== undefined) {
      const content = this.inner.addedTokens.get(bad)?.content ?? '?';
      throw new TokenizerError(`the text contains ${JSON.stringify(content)}, token ${bad}, which is past the model's vocabulary of ${this.vocabSize}`);
    }
    return ids;
  }

  decode(ids: readonly number[], options?: DecodeOptions): string {
    return this.inner.decode(ids, options);
  }

  decoder(options?: DecodeOptions): StreamDecoder {
    return this.inner.decoder(options);
  }
}
