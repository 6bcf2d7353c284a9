/**
 * Knockout ("filter this token"): a trace's tokens run twice in a fresh session — as they are,
 * and with Δ of one token := 0 in chosen layers (or all), so that token neither writes into the
 * state nor lets it decay — and the next-token distributions after the last token compared:
 * KL(baseline ‖ knocked), total variation, the top k of both, and the probability the knocked run
 * gives the baseline's most likely token.
 */
import type { GpuContext } from '../gpu/context.js';
import type { LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { klDivergence, softmax, topIndices, totalVariation } from './distributions.js';
import { readableToken } from './token-text.js';
import type { KnockoutOptions, KnockoutResult, NextTokenDistribution } from './types.js';

export async function knockout(
  ctx: GpuContext,
  target: { model: LanguageModel; tokenizer: Tokenizer | null },
  ids: readonly number[],
  params: KnockoutOptions,
): Promise<KnockoutResult> {
  const L = target.model.config.nLayer;
  const layers = params.layers ? [...new Set(params.layers)].sort((a, b) => a - b) : null;
  for (const l of layers ?? []) if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new Error(`There is no layer ${l} (the model has ${L}).`);
  if (layers && layers.length === 0) throw new Error('Choose at least one layer to knock the token out of.');
  if (!(Number.isInteger(params.token) && params.token >= 0 && params.token < ids.length)) throw new Error(`There is no token ${params.token} in the prompt (it has ${ids.length}).`);
  const k = Math.max(1, Math.min(params.k ?? 10, target.model.config.vocabSize));
  const session = new Session(ctx, target.model);
  try {
    session.prefill(ids);
    const p = softmax(await session.readLogits());
    session.reset();
    session.prefill(ids, { knockout: { token: params.token, layers } });
    const q = softmax(await session.readLogits());
    const top = (probs: Float64Array): NextTokenDistribution => {
      const order = topIndices(probs, k);
      return { ids: order, texts: order.map((id) => readableToken(target.tokenizer, id)), probs: order.map((id) => probs[id] as number) };
    };
    const baseline = top(p);
    return {
      token: params.token,
      layers: layers ?? Array.from({ length: L }, (_, l) => l),
      baseline,
      knocked: top(q),
      kl: klDivergence(p, q),
      totalVariation: totalVariation(p, q),
      baselineTopProbAfter: q[baseline.ids[0] as number] as number,
    };
  } finally {
    session.destroy();
  }
}
