/**
 * Activation patching (causal tracing): two prompts of equal length, clean and corrupted, whose
 * predictions after the last token differ (answer: the clean run's top token, foil: the corrupted
 * run's, unless chosen). For each layer l and token t, the corrupted run is repeated with one site
 * restored from the clean run — 'state': layer l's whole state after token t, every buffer the
 * layer carries to the next token (Mamba-1/2: the conv window and the SSM state h); 'residual':
 * the residual stream after block l at position t; 'mixer': layer l's mixer output at t — and
 * the logit difference LD = logit(answer) − logit(foil) after the last token measured:
 *   restored(l, t) = (LD_patched − LD_corrupted) / (LD_clean − LD_corrupted)
 * (1: the clean answer's margin fully back, 0: no effect). The state after the last token is read
 * by no later token: that column is 0 by definition. Where the two prompts agree on tokens 0 … t
 * the states (and activations at t) are equal and the cell is 0 without a run.
 *
 * Shared prefixes are reused: a clean and a corrupted prefix state advance one token at a time
 * (each prefix run once); at each t, per layer, the corrupted state is copied into a work state,
 * the layer's buffers overwritten with the clean ones, and tokens t + 1 … T − 1 run (the
 * activation sites: the corrupted state before t, then tokens t … T − 1 with the mixer output of
 * layer l at t overwritten — PlanOptions.overwriteMixerOutput — by a row made from both runs'
 * residual streams, `activationSources`, each written into its cell's slot of a band's rows).
 * All of it is encoded into shared command buffers (ForwardBatch: one submit per BATCH_TOKENS
 * token positions; the plans of the prefixes' steps and of the L cells of one token reused), bit
 * for bit what one Session.prefill per cell gave. Only the answer's and the foil's logits are
 * copied out (8 bytes a cell), read back every PATCH_BAND cells, where `signal` is checked.
 * Work: L·Σ_t (T − 1 − t) token positions plus both prefixes; `layers` and a token range
 * [from, to) bound it (a long prompt's heatmap by windows).
 */
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { LanguageModel, PlanOptions } from '../model/model.js';
import { ForwardBatch, newBinding } from './forward-batch.js';
import { configMultipliers } from '../model/config.js';
import { Session } from '../model/session.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';
import { topIndices } from './distributions.js';
import { readableToken } from './token-text.js';

export const PATCH_MAX_TOKENS = 1024;
/** Cells between read-backs (and cancel checks). */
const PATCH_BAND = 64;

/**
 * What is restored at (layer l, token t): 'state' — layer l's whole state after token t (read by
 * tokens > t); 'residual' — the residual stream after block l at position t; 'mixer' — layer l's
 * mixer output at position t (before the residual add).
 */
export type PatchSite = 'state' | 'residual' | 'mixer';

export interface PatchingOptions {
  /** Default 'state'. */
  site?: PatchSite;
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
  site: PatchSite;
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

/** Token positions run: both baselines, the prefixes up to `to`, and per (layer, t) the tokens after t (from t for the activation sites). */
export const patchingWork = (layers: number, tokens: number, from = 0, to = tokens, site: PatchSite = 'state') => {
  let cells = 0;
  if (site === 'state') for (let t = from; t < Math.min(to, tokens - 1); t++) cells += tokens - 1 - t;
  else for (let t = from; t < to; t++) cells += tokens - t;
  return 2 * tokens + (site === 'state' ? 2 : 1) * Math.min(to, tokens - (site === 'state' ? 1 : 0)) + layers * cells;
};

/**
 * The rows written over the mixer output at each (layer, t ∈ [from, to)) for the residual and
 * mixer sites, [layers, to − from, D]: 'mixer' the clean mixer output (clean residual after block
 * l minus before it); 'residual' the clean residual after block l minus the corrupted residual
 * before it (so that the residual add gives the clean stream: before block l, position t of the
 * patched run is still the corrupted run's). From both runs' `hidden` taps (the residual after each
 * block) of the layers needed, and the embedding rows (the residual before block 0).
 */
export async function activationSources(ctx: GpuContext, model: LanguageModel, clean: readonly number[], corrupt: readonly number[], o: { site: 'residual' | 'mixer'; layers: readonly number[]; from: number; to: number }): Promise<Float32Array> {
  const { nLayer: L, dModel: D } = model.config;
  const n = o.to - o.from;
  const needed = [...new Set(o.layers.flatMap((l) => (l > 0 ? [l, l - 1] : [l])))].sort((a, b) => a - b);
  const hidden = async (ids: readonly number[]) => {
    const buffers: (GPUBuffer | undefined)[] = new Array<GPUBuffer | undefined>(L);
    for (const l of needed) buffers[l] = storageBuffer(ctx.device, `Patching.hidden${l}`, n * D * 4);
    const session = new Session(ctx, model);
    try {
      if (o.from > 0) session.prefill(ids.slice(0, o.from));
      session.prefill(ids.slice(o.from, o.to), { taps: { hidden: buffers, row0: 0 } });
      const out = new Map<number, Float32Array>();
      for (const l of needed) out.set(l, await readF32(ctx.device, buffers[l] as GPUBuffer, n * D));
      return out;
    } finally {
      session.destroy();
      for (const b of buffers) b?.destroy();
    }
  };
  const embedded = async (ids: readonly number[]) => {
    const rows = new Float32Array(n * D);
    const chunk = model.analysisTokens;
    const buffer = storageBuffer(ctx.device, 'Patching.embedding', Math.min(n, chunk) * D * 4);
    try {
      for (let s = 0; s < n; s += chunk) {
        const part = ids.slice(o.from + s, o.from + Math.min(n, s + chunk));
        ctx.device.queue.writeBuffer(model.idsBuffer, 0, Uint32Array.from(part));
        const dispatches = model.embedDispatches(part.length, buffer);
        const encoder = ctx.device.createCommandEncoder({ label: 'Patching.embed' });
        const pass = encoder.beginComputePass({ label: 'Patching.embed.pass' });
        for (const d of dispatches) d.encode(pass);
        pass.end();
        ctx.device.queue.submit([encoder.finish()]);
        rows.set(await readF32(ctx.device, buffer, part.length * D), s * D);
        for (const d of dispatches) d.destroy();
      }
      return rows;
    } finally {
      buffer.destroy();
    }
  };
  const cleanH = await hidden(clean);
  const before = o.site === 'mixer' ? cleanH : await hidden(corrupt);
  const emb = o.layers.includes(0) ? await embedded(o.site === 'mixer' ? clean : corrupt) : null;
  // A block adds residual × its output, and the stream starts as embedding × its multiplier (Granite; 1 and 1 otherwise):
  // the output that makes `after` out of `prev` is (after − prev) / residual.
  const m = configMultipliers(model.config);
  const out = new Float32Array(o.layers.length * n * D);
  o.layers.forEach((l, r) => {
    const after = cleanH.get(l) as Float32Array;
    const prev = l > 0 ? (before.get(l - 1) as Float32Array) : (emb as Float32Array);
    const scale = l > 0 ? 1 : m.embedding;
    for (let i = 0; i < n * D; i++) out[r * n * D + i] = ((after[i] as number) - (prev[i] as number) * scale) / m.residual;
  });
  return out;
}

export async function activationPatching(
  ctx: GpuContext,
  target: { model: LanguageModel; tokenizer: Tokenizer | null },
  clean: readonly number[],
  corrupt: readonly number[],
  options: PatchingOptions = {},
  work: { signal?: AbortSignal; onProgress?: WorkProgress } = {},
): Promise<PatchingResult> {
  const { model } = target;
  const { nLayer: L, vocabSize: V, dModel: D } = model.config;
  const T = clean.length;
  const site = options.site ?? 'state';
  if (!['state', 'residual', 'mixer'].includes(site)) throw new Error(`Unknown patching site “${site}” (state, residual or mixer).`);
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
  const total = patchingWork(layers.length, T, from, to, site);
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
  // Residual and mixer sites: the row written over each (layer, t)'s mixer output, [layers, n, D].
  const sources = site === 'state' ? null : await activationSources(ctx, model, clean, corrupt, { site, layers, from, to });
  // A band's rows on the GPU: cell k of the band reads slot k (written before the submit that runs it).
  const sourceRows = sources ? storageBuffer(ctx.device, 'Patching.sources', PATCH_BAND * D * 4) : null;
  const batch = new ForwardBatch(ctx, model, 'Patching');
  const cleanPrefix = newBinding(ctx, model, 'Patching.clean');
  const corruptPrefix = newBinding(ctx, model, 'Patching.corrupt');
  const patched = newBinding(ctx, model, 'Patching.work');
  const out = storageBuffer(ctx.device, 'Patching.logits', PATCH_BAND * 2 * 4);
  // Cells whose two logits are (or will be, once submitted) in `out`, in order.
  let pending: number[] = [];
  const flush = async () => {
    batch.submit();
    if (pending.length === 0) return;
    const values = await readF32(ctx.device, out, pending.length * 2);
    throwIfCancelled(work.signal);
    pending.forEach((c, i) => (patchedDiff[c] = (values[2 * i] as number) - (values[2 * i + 1] as number)));
    pending = [];
    work.onProgress?.(done, total);
  };
  /** Encodes `rest` on the patched state and the copy of its two logits for cell (row, t); submits at the budget, reads back at PATCH_BAND cells. */
  const cell = async (row: number, t: number, rest: readonly number[], first?: PlanOptions) => {
    batch.run(patched, rest, first);
    const slot = pending.length * 8;
    batch.encoder.copyBufferToBuffer(patched.logits, answer * 4, out, slot, 4);
    batch.encoder.copyBufferToBuffer(patched.logits, foil * 4, out, slot + 4, 4);
    pending.push(row * n + (t - from));
    done += rest.length;
    if (pending.length === PATCH_BAND) await flush();
    else if (batch.full) batch.submit();
  };
  try {
    let same = true;
    for (let t = 0; t < Math.min(to, site === 'state' ? T - 1 : T); t++) {
      same &&= clean[t] === corrupt[t];
      if (site === 'state') {
        batch.run(cleanPrefix, [clean[t] as number]);
        batch.run(corruptPrefix, [corrupt[t] as number]);
        done += 2;
        if (same || t < from) continue; // equal prefixes, equal states: nothing to restore
        for (const [row, l] of layers.entries()) {
          batch.copyState(corruptPrefix.state, patched.state);
          batch.copyLayer(cleanPrefix.state, patched.state, l);
          await cell(row, t, corrupt.slice(t + 1));
        }
      } else {
        // Position t itself is patched: the corrupted state before t, then tokens t … T − 1.
        if (!same && t >= from) {
          for (const [row, l] of layers.entries()) {
            batch.copyState(corruptPrefix.state, patched.state);
            const i = row * n + (t - from);
            const slot = pending.length * D * 4;
            ctx.device.queue.writeBuffer(sourceRows as GPUBuffer, slot, (sources as Float32Array).subarray(i * D, (i + 1) * D));
            await cell(row, t, corrupt.slice(t), { overwriteMixerOutput: { layer: l, row: 0, source: sourceRows as GPUBuffer, sourceOffset: slot } });
          }
        }
        batch.run(corruptPrefix, [corrupt[t] as number]);
        done += 1;
      }
    }
    await flush();
  } finally {
    batch.destroy();
    cleanPrefix.destroy();
    corruptPrefix.destroy();
    patched.destroy();
    out.destroy();
    sourceRows?.destroy();
  }
  // A cell that moves nothing is 0, not −0 (0 / a negative denominator, when the clean run's
  // difference is below the corrupted one's): exports and tables would print "-0".
  const restored = Float64Array.from(patchedDiff, (d) => {
    const r = (d - corruptDiff) / (cleanDiff - corruptDiff);
    return r === 0 ? 0 : r;
  });
  return {
    site,
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
