/**
 * The end-of-sequence token ids a model declares: `eos_token_id` in config.json or
 * generation_config.json (an integer or a list of integers, as transformers writes it), or GGUF
 * metadata `tokenizer.ggml.eos_token_id` (an integer). Generation stops at one of them by default.
 *
 * They are optional hints about generation, not part of the model: a value that is not a token id
 * of this vocabulary (negative, fractional, a string, ≥ the vocabulary size, a list too long to
 * be real) is ignored with a warning naming the file and the key, so the model still loads and
 * runs (it then generates up to the token limit), rather than refusing a model whose weights are
 * fine. Absent, null and an empty list mean "no end-of-sequence token", without a warning.
 */
import { preview } from './errors.js';

/** Most end-of-sequence ids one key may list (real models list 1 to 3). */
export const MAX_EOS_IDS = 64;

export interface EosRead {
  /** Distinct ids in the order given; empty when none (or when the value was refused). */
  ids: number[];
  /** Why a value that was there was refused (names the file and the key); absent when accepted or absent. */
  warning?: string;
}

/**
 * Reads one `eos_token_id` value (`value`: as parsed from JSON or GGUF metadata) of `file`'s
 * `key`, checked against a vocabulary of `vocabSize` ids.
 */
export function readEosTokenIds(file: string, key: string, value: unknown, vocabSize: number): EosRead {
  if (value === undefined || value === null) return { ids: [] };
  const refuse = (why: string): EosRead => ({
    ids: [],
    warning: `${file}: "${key}" ${why}, so it is ignored: generation will not stop at an end-of-sequence token (it runs to the token limit)`,
  });
  const list = Array.isArray(value) ? value : [value];
  if (list.length > MAX_EOS_IDS) return refuse(`lists ${list.length} ids (at most ${MAX_EOS_IDS} are read)`);
  const ids: number[] = [];
  for (const item of list) {
    if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 0) {
      return refuse(`must be a token id (an integer ≥ 0) or a list of them, got ${preview(value)}`);
    }
    if (item >= vocabSize) return refuse(`names token ${item}, outside the vocabulary 0..${vocabSize - 1}`);
    if (!ids.includes(item)) ids.push(item);
  }
  return { ids };
}
