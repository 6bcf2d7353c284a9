/**
 * The attention pattern of one attention block of a hybrid (issue 22) for a kept trace's tokens:
 * softmax(q_i · k_j · scale) over the keys j ≤ i of one query head, or the mean over the heads —
 * the [T, T] matrix the panels show beside the Mamba blocks' hidden attention.
 *
 * The tokens run once through a scratch session up to that block (`lastLayer`), with the block's
 * `attnQ` / `attnK` taps (q and k after RoPE); then `attentionProbs` (app/kernels/attention.ts)
 * per head, each read back (the mean is summed on the CPU). `onProgress` counts rows (T per head);
 * `signal` is checked between the GPU submits; every buffer is freed in `finally`.
 */
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { attentionProbs } from '../kernels/attention.js';
import { submitDispatches, type Dispatch } from '../kernels/dispatch.js';
import type { LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';

/** At most this many tokens (the T × T matrix: 16 MB of fp32). */
export const ATTENTION_PATTERN_MAX_TOKENS = 2048;

export interface AttentionPatternOptions {
  /** An attention block of the model (an engine block index, as LanguageModel.blockKind takes). */
  layer: number;
  /** One query head, or the mean over the heads. */
  head: number | 'mean';
}

export interface AttentionPatternResult {
  layer: number;
  head: number | 'mean';
  /** Query heads of the block. */
  heads: number;
  tokens: number;
  /** [T, T] row-major: row i (the query) over keys j; 0 above the diagonal; each row sums to 1. */
  probs: Float32Array;
}

/** Checks the request against the model before anything is allocated; the block's attention config. */
function checkedBlock(model: LanguageModel, params: AttentionPatternOptions, T: number) {
  const L = model.config.nLayer;
  const { layer, head } = params;
  if (!(Number.isInteger(layer) && layer >= 0 && layer < L)) throw new RangeError(`Attention pattern: there is no layer ${layer} (the model has ${L}).`);
  const kind = model.blockKind(layer);
  const a = model.config.hybrid?.attention;
  if (kind !== 'attention' || !a) throw new Error(`Attention pattern: layer ${layer} is ${kind === 'mlp' ? 'an MLP' : kind === 'ssm' ? 'an SSM (Mamba)' : `a ${kind}`} block, not an attention block.`);
  if (head !== 'mean' && !(Number.isInteger(head) && head >= 0 && head < a.nHeads)) throw new RangeError(`Attention pattern: there is no head ${head} (layer ${layer} has ${a.nHeads}).`);
  if (T === 0) throw new Error('Attention pattern: the trace has no tokens.');
  if (T > ATTENTION_PATTERN_MAX_TOKENS) throw new RangeError(`Attention pattern: the trace has ${T} tokens, over the ${ATTENTION_PATTERN_MAX_TOKENS} the ${T} × ${T} matrix is shown for: trace a shorter prompt.`);
  if (T > model.contextCapacity) throw new RangeError(`Attention pattern: the trace has ${T} tokens, over the model's KV-cache capacity of ${model.contextCapacity}.`);
  return a;
}

/** The attention probabilities of `params.layer` (one head, or the mean over heads) for `ids`. */
export async function attentionPattern(
  ctx: GpuContext,
  model: LanguageModel,
  ids: readonly number[],
  params: AttentionPatternOptions,
  work: { signal?: AbortSignal; onProgress?: WorkProgress } = {},
): Promise<AttentionPatternResult> {
  const T = ids.length;
  const a = checkedBlock(model, params, T);
  const { layer, head } = params;
  const limit = Math.min(ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize);
  if (T * T * 4 > limit) throw new RangeError(`Attention pattern: the ${T} × ${T} matrix needs ${Math.ceil((T * T * 4) / 2 ** 20)} MB, over this GPU's ${Math.floor(limit / 2 ** 20)} MB per buffer.`);
  throwIfCancelled(work.signal);
  const heads = head === 'mean' ? Array.from({ length: a.nHeads }, (_, h) => h) : [head];
  const L = model.config.nLayer;
  const only = (buffer: GPUBuffer) => Array.from({ length: L }, (_, l) => (l === layer ? buffer : undefined));
  let session: Session | null = null;
  const buffers: GPUBuffer[] = [];
  let dispatch: Dispatch | null = null;
  try {
    const q = storageBuffer(ctx.device, 'AttentionPattern.q', T * a.nHeads * a.headDim * 4);
    buffers.push(q);
    const k = storageBuffer(ctx.device, 'AttentionPattern.k', T * a.nKvHeads * a.headDim * 4);
    buffers.push(k);
    const probs = storageBuffer(ctx.device, 'AttentionPattern.probs', T * T * 4);
    buffers.push(probs);
    session = new Session(ctx, model);
    session.prefill(ids, { taps: { attnQ: only(q), attnK: only(k), row0: 0 }, lastLayer: layer });
    await ctx.device.queue.onSubmittedWorkDone();
    throwIfCancelled(work.signal);
    const sum = new Float64Array(T * T);
    let done = 0;
    for (const h of heads) {
      dispatch = attentionProbs(ctx, { tokens: T, nHeads: a.nHeads, nKvHeads: a.nKvHeads, headDim: a.headDim, head: h, scale: a.scale }, { q, k, probs }, 'AttentionPattern.probs');
      submitDispatches(ctx.device, 'AttentionPattern', [dispatch]);
      const got = await readF32(ctx.device, probs, T * T);
      dispatch.destroy();
      dispatch = null;
      for (let i = 0; i < T * T; i++) sum[i] = (sum[i] as number) + (got[i] as number);
      done += T;
      work.onProgress?.(done, heads.length * T);
      throwIfCancelled(work.signal);
    }
    const out = new Float32Array(T * T);
    for (let i = 0; i < T * T; i++) out[i] = (sum[i] as number) / heads.length;
    return { layer, head, heads: a.nHeads, tokens: T, probs: out };
  } finally {
    dispatch?.destroy();
    session?.destroy();
    for (const b of buffers) b.destroy();
  }
}
