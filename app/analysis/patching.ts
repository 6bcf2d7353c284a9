/**
 * Activation patching (causal tracing) of the recurrent state: two prompts of equal length, clean
 * and corrupted, whose predictions after the last token differ (answer: the clean run's top token,
 * foil: the corrupted run's, unless chosen). For each layer l and token t, the corrupted run is
 * repeated with layer l's whole state after token t — every buffer the layer carries to the next
 * token (Mamba-1/2: the conv window and the SSM state h) — replaced by the clean run's, and the
 * logit difference LD = logit(answer) − logit(foil) after the last token measured:
 *   restored(l, t) = (LD_patched − LD_corrupted) / (LD_clean − LD_corrupted)
 * (1: the clean answer's margin fully back, 0: no effect). The state after the last token is read
 * by no later token: that column is 0 by definition. Where the two prompts agree on tokens 0 … t
 * the states are equal and the cell is 0 without a run.
 *
 * Shared prefixes are reused: a clean and a corrupted prefix session advance one token at a time
 * (each prefix run once); at each t, per layer, the corrupted state is copied into a work session,
 * the layer's buffers overwritten with the clean ones, and tokens t + 1 … T − 1 run. Only the
 * answer's and the foil's logits are copied out (8 bytes a cell), read back every PATCH_BAND
 * cells, where `signal` is checked. Work: L·Σ_t (T − 1 − t) token positions plus both prefixes;
 * `layers` and a token range [from, to) bound it (a long prompt's heatmap by windows).
 */
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';
import { topIndices } from './distributions.js';
import { readableToken } from './token-text.js';

export const PATCH_MAX_TOKENS = 1024;
/** Cells between read-backs (and cancel checks). */
const PATCH_BAND = 64;

export interface PatchingOptions {
  /** The clean answer's token id (default: the clean run's most likely next token). */
  answer?: number;
  /** The competing token id (default: the corrupted run's most likely next token). */
  foil?: number;
  /** Layers to patch (default: all). */
  layers?: number[];
  /** Tokens t ∈ [from, to) whose state is patched (default: all). */
  from?: number;
  to?: number;
}

export interface PatchingResult {
  site: 'state';
  /** The patched layers, ascending: the rows of `restored`. */
  layers: number[];
  /** The prompts' length. */
  tokens: number;
  /** The patched tokens [from, to): the columns of `restored`. */
  from: number;
  to: number;
  answer: number;
  foil: number;
  answerText: string;
  foilText: string;
  /** logit(answer) − logit(foil) after the last token, clean and corrupted. */
  cleanDiff: number;
  corruptDiff: number;
  /** [layers, to − from] row-major: the logit difference with layer l's state after token t patched. */
  patchedDiff: Float64Array;
  /** [layers, to − from]: (patched − corrupted) / (clean − corrupted). */
  restored: Float64Array;
}

/** Token positions run: both baselines, both prefixes up to `to`, and per (layer, t) the T − 1 − t tokens after t. */
export const patchingWork = (layers: number, tokens: number, from = 0, to = tokens) => {
  let cells = 0;
  for (let t = from; t < Math.min(to, tokens - 1); t++) cells += tokens - 1 - t;
  return 2 * tokens + 2 * to + layers * cells;
};

export async function statePatching(
  ctx: GpuContext,
  target: { model: LanguageModel; tokenizer: Tokenizer | null },
  clean: readonly number[],
  corrupt: readonly number[],
  options: PatchingOptions = {},
  work: { signal?: AbortSignal; onProgress?: WorkProgress } = {},
): Promise<PatchingResult> {
  const { model } = target;
  const { nLayer: L, vocabSize: V } = model.config;
  const T = clean.length;
  if (corrupt.length !== T) throw new RangeError(`Patching needs two prompts of the same length, token for token: the clean one has ${T} tokens, the corrupted one ${corrupt.length}.`);
  if (T < 2) throw new RangeError('Patching needs prompts of at least 2 tokens.');
  if (T > PATCH_MAX_TOKENS) throw new RangeError(`Patching runs the corrupted prompt once per (layer, token): at most ${PATCH_MAX_TOKENS} tokens (these have ${T}).`);
  const layers = options.layers ? [...new Set(options.layers)].sort((a, b) => a - b) : Array.from({ length: L }, (_, l) => l);
  for (const l of layers) if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new Error(`There is no layer ${l} (the model has ${L}).`);
  if (layers.length === 0) throw new Error('Choose at least one layer to patch.');
  const from = options.from ?? 0;
  const to = options.to ?? T;
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= T)) throw new RangeError(`Tokens ${from} … ${to - 1} are not inside the prompts (${T} tokens).`);
  const n = to - from;
  for (const [name, id] of [['answer', options.answer], ['foil', options.foil]] as const) {
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < V)) throw new RangeError(`There is no token id ${id} for the ${name} (the vocabulary has ${V}).`);
  }
  throwIfCancelled(work.signal);
  const total = patchingWork(layers.length, T, from, to);
  const run = async (ids: readonly number[]) => {
    const s = new Session(ctx, model);
    try {
      s.prefill(ids);
      return await s.readLogits();
    } finally {
      s.destroy();
    }
  };
  const cleanLogits = await run(clean);
  const corruptLogits = await run(corrupt);
  let done = 2 * T;
  work.onProgress?.(done, total);
  const answer = options.answer ?? (topIndices(cleanLogits, 1)[0] as number);
  const foil = options.foil ?? (topIndices(corruptLogits, 1)[0] as number);
  if (answer === foil) throw new Error(`The answer and the foil are the same token (${answer}): the clean and corrupted prompts predict the same next token — choose the foil.`);
  const diff = (logits: ArrayLike<number>) => (logits[answer] as number) - (logits[foil] as number);
  const cleanDiff = diff(cleanLogits);
  const corruptDiff = diff(corruptLogits);
  if (cleanDiff === corruptDiff) throw new Error('The clean and corrupted logit differences are equal: there is nothing to restore.');

  const patchedDiff = new Float64Array(layers.length * n).fill(corruptDiff);
  const cleanPrefix = new Session(ctx, model);
  const corruptPrefix = new Session(ctx, model);
  const patchedState = model.newState();
  const patched = new Session(ctx, model, patchedState);
  const out = storageBuffer(ctx.device, 'Patching.logits', PATCH_BAND * 2 * 4);
  // Cells whose two logits are in `out`, in order.
  let pending: number[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const values = await readF32(ctx.device, out, pending.length * 2);
    throwIfCancelled(work.signal);
    pending.forEach((c, i) => (patchedDiff[c] = (values[2 * i] as number) - (values[2 * i + 1] as number)));
    pending = [];
    work.onProgress?.(done, total);
  };
  try {
    let same = true;
    for (let t = 0; t < Math.min(to, T - 1); t++) {
      cleanPrefix.prefill([clean[t] as number]);
      corruptPrefix.prefill([corrupt[t] as number]);
      done += 2;
      same &&= clean[t] === corrupt[t];
      if (same || t < from) continue; // equal prefixes, equal states: nothing to restore
      const rest = corrupt.slice(t + 1);
      for (const [row, l] of layers.entries()) {
        const encoder = ctx.device.createCommandEncoder({ label: 'Patching.state' });
        corruptPrefix.copyStateTo(encoder, patchedState);
        const cleanLayer = cleanPrefix.layerState(l);
        patched.layerState(l).forEach((b, i) => encoder.copyBufferToBuffer(cleanLayer[i] as GPUBuffer, 0, b, 0, b.size));
        ctx.device.queue.submit([encoder.finish()]);
        patched.tokens.length = 0;
        patched.prefill(rest);
        const copy = ctx.device.createCommandEncoder({ label: 'Patching.logits' });
        const slot = pending.length * 8;
        copy.copyBufferToBuffer(patched.logits, answer * 4, out, slot, 4);
        copy.copyBufferToBuffer(patched.logits, foil * 4, out, slot + 4, 4);
        ctx.device.queue.submit([copy.finish()]);
        pending.push(row * n + (t - from));
        done += rest.length;
        if (pending.length === PATCH_BAND) await flush();
      }
    }
    await flush();
  } finally {
    cleanPrefix.destroy();
    corruptPrefix.destroy();
    patched.destroy();
    out.destroy();
  }
  const restored = Float64Array.from(patchedDiff, (d) => (d - corruptDiff) / (cleanDiff - corruptDiff));
  return {
    site: 'state',
    layers,
    tokens: T,
    from,
    to,
    answer,
    foil,
    answerText: readableToken(target.tokenizer, answer),
    foilText: readableToken(target.tokenizer, foil),
    cleanDiff,
    corruptDiff,
    patchedDiff,
    restored,
  };
}
