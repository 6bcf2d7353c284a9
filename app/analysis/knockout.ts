/**
 * Knockout ("filter this token"): a trace's tokens run twice — as they are, and with Δ of one
 * token := 0 in chosen layers (or all), so that token neither writes into the state nor lets it
 * decay — and the next-token distributions compared at every position from the token on:
 * KL(baseline ‖ knocked) per position (`klByPosition`; before the token both runs are the same
 * computation), and after the last token also total variation, the top k of both, and the
 * probability the knocked run gives the baseline's most likely token.
 *
 * The tokens before the knocked one run once; the session is then forked, and both runs go on
 * chunk by chunk (the model's analysisTokens) with every position's logits read back, so memory stays
 * at two chunks of logits. `onProgress` after each chunk (positions run, the shared prefix counted
 * once, of T + T − token); `signal` is checked between chunks. A long trace's knockout (`restore`:
 * its state checkpoints) starts the shared prefix from the last checkpoint at or before the token,
 * so knocking out token 90,000 of 100,000 runs at most a checkpoint interval before it.
 */
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';
import { klDivergence, softmax, topIndices, totalVariation } from './distributions.js';
import { readableToken } from './token-text.js';
import type { KnockoutOptions, KnockoutResult, NextTokenDistribution } from './types.js';

/** How many positions a knockout runs (its progress total): the shared prefix once, then both runs. */
export const knockoutWork = (tokens: number, token: number, from = 0) => tokens - from + (tokens - token);

/** A session standing after the first `at` tokens (at ≤ the token asked for), the caller's to destroy: a long trace's checkpoint. */
export type KnockoutStart = (token: number) => Promise<{ session: Session; at: number }>;

export async function knockout(
  ctx: GpuContext,
  target: { model: LanguageModel; tokenizer: Tokenizer | null },
  ids: readonly number[],
  params: KnockoutOptions,
  work: { signal?: AbortSignal; onProgress?: WorkProgress } = {},
  restore?: KnockoutStart,
): Promise<KnockoutResult> {
  const { model } = target;
  const L = model.config.nLayer;
  const V = model.config.vocabSize;
  const layers = params.layers ? [...new Set(params.layers)].sort((a, b) => a - b) : null;
  for (const l of layers ?? []) if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new Error(`There is no layer ${l} (the model has ${L}).`);
  if (layers && layers.length === 0) throw new Error('Choose at least one layer to knock the token out of.');
  const T = ids.length;
  const token = params.token;
  if (!(Number.isInteger(token) && token >= 0 && token < T)) throw new Error(`There is no token ${token} in the prompt (it has ${T}).`);
  const k = Math.max(1, Math.min(params.k ?? 10, V));
  throwIfCancelled(work.signal);
  const chunk = model.analysisTokens;
  const start0 = restore ? await restore(token) : { session: new Session(ctx, model), at: 0 };
  const baseline = start0.session;
  const at = start0.at;
  let knocked: Session | null = null;
  let logitsA: GPUBuffer | null = null;
  let logitsB: GPUBuffer | null = null;
  try {
    if (!(Number.isInteger(at) && at >= 0 && at <= token)) throw new RangeError(`knockout: a start at token ${at} is not before token ${token}`);
    const total = knockoutWork(T, token, at);
    let done = 0;
    const rows = Math.min(chunk, T - token);
    logitsA = storageBuffer(ctx.device, 'Knockout.baselineLogits', rows * V * 4);
    logitsB = storageBuffer(ctx.device, 'Knockout.knockedLogits', rows * V * 4);
    // The tokens before the knocked one: one run, chunk by chunk.
    for (let start = at; start < token; start += chunk) {
      const part = ids.slice(start, Math.min(token, start + chunk));
      baseline.prefill(part);
      await ctx.device.queue.onSubmittedWorkDone();
      throwIfCancelled(work.signal);
      done += part.length;
      work.onProgress?.(done, total);
    }
    knocked = baseline.fork();
    const klByPosition: number[] = [];
    let p: Float64Array | null = null;
    let q: Float64Array | null = null;
    for (let start = token; start < T; start += chunk) {
      const part = ids.slice(start, start + chunk);
      baseline.prefill(part, { allLogits: logitsA });
      knocked.prefill(part, { allLogits: logitsB, ...(start === token ? { knockout: { token: 0, layers } } : {}) });
      const a = await readF32(ctx.device, logitsA, part.length * V);
      const b = await readF32(ctx.device, logitsB, part.length * V);
      throwIfCancelled(work.signal);
      for (let r = 0; r < part.length; r++) {
        p = softmax(a.subarray(r * V, (r + 1) * V));
        q = softmax(b.subarray(r * V, (r + 1) * V));
        klByPosition.push(klDivergence(p, q));
      }
      done += 2 * part.length;
      work.onProgress?.(done, total);
    }
    if (!p || !q) throw new Error('knockout: no position after the token was run');
    const top = (probs: Float64Array): NextTokenDistribution => {
      const order = topIndices(probs, k);
      return { ids: order, texts: order.map((id) => readableToken(target.tokenizer, id)), probs: order.map((id) => probs[id] as number) };
    };
    const before = top(p);
    return {
      token,
      layers: layers ?? Array.from({ length: L }, (_, l) => l),
      baseline: before,
      knocked: top(q),
      kl: klByPosition[klByPosition.length - 1] as number,
      klByPosition,
      totalVariation: totalVariation(p, q),
      baselineTopProbAfter: q[before.ids[0] as number] as number,
    };
  } finally {
    baseline.destroy();
    knocked?.destroy();
    logitsA?.destroy();
    logitsB?.destroy();
  }
}
