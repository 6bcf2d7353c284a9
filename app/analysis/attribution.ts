/**
 * Token attribution for a prediction by knockout: for every token j of a prompt, the prompt is run
 * with Δ_j := 0 (token j filtered: it writes nothing and the state passes it unchanged — the
 * knockout of app/analysis/knockout.ts) in chosen layers or all, and the prediction after the last
 * token compared with the baseline's: log q(y) − log p(y) for the target y (by default the
 * baseline's most likely next token), q(y), and KL(p ‖ q) over the vocabulary.
 *
 * One sweep: the baseline runs once; a prefix state then advances one token at a time, and for
 * each j it is copied into a work state that runs tokens j … T − 1 with token j knocked out; only
 * the last position's logits are kept, copied into a band buffer read back every `band` tokens
 * (so the GPU queue stays full between read-backs). All of it is encoded into shared command
 * buffers (ForwardBatch: one submit per BATCH_TOKENS token positions, the prefix's one-token plan
 * reused), bit for bit what a Session.prefill per token gave. Work: T + Σ_j (T − j) token
 * positions (`attributionWork`), bounded by a range [from, to) of filtered tokens; `signal` is
 * checked at each read-back.
 */
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import { ForwardBatch, newBinding } from './forward-batch.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';
import { klDivergence, softmax, topIndices } from './distributions.js';
import { readableToken } from './token-text.js';

/** At most this many tokens per sweep (the work grows as T²/2). */
export const ATTRIBUTION_MAX_TOKENS = 2048;
const BAND_BYTES = 32 * 2 ** 20;

export interface AttributionOptions {
  /** The token id whose probability is attributed (default: the baseline's most likely next token). */
  target?: number;
  /** Layers where Δ_j := 0 (all when left out). */
  layers?: number[];
  /** The filtered tokens j ∈ [from, to) (default: every token; the work grows as T · (to − from)). */
  from?: number;
  to?: number;
}

export interface AttributionResult {
  target: number;
  targetText: string;
  layers: number[];
  /** Baseline probability of the target after the last token. */
  baselineProb: number;
  /** The filtered tokens [from, to): entry i of the arrays below is token from + i. */
  from: number;
  to: number;
  /** Per token j ([to − from]): log q(target) − log p(target) in nats with token j filtered (< 0: j supported the target). */
  logProbChange: number[];
  /** Per token j: q(target). */
  probAfter: number[];
  /** Per token j: KL(baseline ‖ knocked) of the next-token distribution after the last token, nats. */
  kl: number[];
}

/** Token positions run: the baseline, then per filtered token j the tokens j … T − 1 (the prefix up to `to` once). */
export const attributionWork = (tokens: number, from = 0, to = tokens) => {
  let work = tokens + to;
  for (let j = from; j < to; j++) work += tokens - j;
  return work;
};

export async function tokenAttribution(
  ctx: GpuContext,
  target: { model: LanguageModel; tokenizer: Tokenizer | null },
  ids: readonly number[],
  options: AttributionOptions = {},
  work: { signal?: AbortSignal; onProgress?: WorkProgress } = {},
): Promise<AttributionResult> {
  const { model } = target;
  const { nLayer: L, vocabSize: V } = model.config;
  const T = ids.length;
  if (T < 1) throw new RangeError('Attribution needs at least one token.');
  if (T > ATTRIBUTION_MAX_TOKENS) throw new RangeError(`Attribution runs the prompt once per token (${T} tokens: about ${Math.round(attributionWork(T))} token positions); at most ${ATTRIBUTION_MAX_TOKENS} tokens.`);
  const layers = options.layers ? [...new Set(options.layers)].sort((a, b) => a - b) : null;
  for (const l of layers ?? []) if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new Error(`There is no layer ${l} (the model has ${L}).`);
  if (layers && layers.length === 0) throw new Error('Choose at least one layer to filter the tokens in.');
  if (options.target !== undefined && !(Number.isInteger(options.target) && options.target >= 0 && options.target < V)) throw new RangeError(`There is no token id ${options.target} (the vocabulary has ${V}).`);
  const from = options.from ?? 0;
  const to = options.to ?? T;
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= T)) throw new RangeError(`Tokens ${from} … ${to - 1} are not inside the prompt (${T} tokens).`);
  throwIfCancelled(work.signal);
  const total = attributionWork(T, from, to);
  const band = Math.max(1, Math.min(to - from, Math.floor(BAND_BYTES / (V * 4))));
  const batch = new ForwardBatch(ctx, model, 'Attribution');
  const prefix = newBinding(ctx, model, 'Attribution.prefix');
  const knocked = newBinding(ctx, model, 'Attribution.work');
  const rows = storageBuffer(ctx.device, 'Attribution.logits', band * V * 4);
  try {
    // The baseline: the whole prompt once (prefill chunks as the model's analysisTokens).
    const baseline = new Session(ctx, model);
    let p: Float64Array;
    try {
      baseline.prefill(ids);
      p = softmax(await baseline.readLogits());
    } finally {
      baseline.destroy();
    }
    let done = T;
    work.onProgress?.(done, total);
    const y = options.target ?? (topIndices(p, 1)[0] as number);
    const logP = Math.log(p[y] as number);
    const logProbChange: number[] = [];
    const probAfter: number[] = [];
    const kl: number[] = [];
    if (from > 0) {
      batch.run(prefix, ids.slice(0, from));
      done += from;
    }
    for (let j0 = from; j0 < to; j0 += band) {
      const count = Math.min(band, to - j0);
      for (let r = 0; r < count; r++) {
        const j = j0 + r;
        batch.copyState(prefix.state, knocked.state);
        batch.run(knocked, ids.slice(j), { knockout: { row: 0, layers } });
        batch.encoder.copyBufferToBuffer(knocked.logits, 0, rows, r * V * 4, V * 4);
        batch.run(prefix, [ids[j] as number]);
        done += T - j + 1;
        if (batch.full) batch.submit();
      }
      batch.submit();
      const values = await readF32(ctx.device, rows, count * V);
      throwIfCancelled(work.signal);
      for (let r = 0; r < count; r++) {
        const q = softmax(values.subarray(r * V, (r + 1) * V));
        logProbChange.push(Math.log(q[y] as number) - logP);
        probAfter.push(q[y] as number);
        kl.push(klDivergence(p, q));
      }
      work.onProgress?.(done, total);
    }
    return { target: y, targetText: readableToken(target.tokenizer, y), layers: layers ?? Array.from({ length: L }, (_, l) => l), baselineProb: p[y] as number, from, to, logProbChange, probAfter, kl };
  } finally {
    batch.destroy();
    prefix.destroy();
    knocked.destroy();
    rows.destroy();
  }
}
