/**
 * State steering: the difference of two prompts' recurrent states, scaled, added to the state of
 * a third run, which then continues greedily — the text with and without the push side by side.
 *
 *   v_l   = state_l(B) − state_l(A)      (each prompt's layer-l state after its last token: every
 *                                        buffer of the layer, Mamba-1/2: conv window and h)
 *   steer: after token `at` of the prompt, state_l += α · v_l for the chosen layers; the prompt's
 *          remaining tokens then run and `tokens` tokens are generated greedily (argmax).
 * The first token that reads the steered state is at + 1 (with at = T − 1, the first generated
 * token's logits were computed before: the push shows from the second on). The states are read
 * back, combined in float64 on the CPU and written back (they are small: one sequence's state).
 */
import { readF32 } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';
import { topIndices } from './distributions.js';
import { readableToken } from './token-text.js';

export const STEER_MAX_TOKENS = 64;

export interface SteeringOptions {
  /** The two prompts whose state difference B − A is the push. */
  a: readonly number[];
  b: readonly number[];
  /** The scale α (default 1). */
  alpha?: number;
  /** The prompt token after which the push is added (default: the second to last, so that the last prompt token reads it). */
  at?: number;
  /** Layers pushed (default all). */
  layers?: number[];
  /** Tokens generated (default 8, at most STEER_MAX_TOKENS). */
  tokens?: number;
}

export interface SteeringResult {
  alpha: number;
  at: number;
  layers: number[];
  /** Greedy continuations without and with the push: ids and readable texts. */
  baseline: { ids: number[]; texts: string[] };
  steered: { ids: number[]; texts: string[] };
  /** ‖v_l‖ per pushed layer (Frobenius over the layer's whole state). */
  pushNorm: number[];
}

/** Greedy continuation of `tokens` ids from a session whose logits are the next token's. */
async function greedy(session: Session, tokens: number, signal?: AbortSignal): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < tokens; i++) {
    const id = topIndices(await session.readLogits(), 1)[0] as number;
    throwIfCancelled(signal);
    out.push(id);
    if (i + 1 < tokens) session.step(id);
  }
  return out;
}

export async function stateSteering(
  ctx: GpuContext,
  target: { model: LanguageModel; tokenizer: Tokenizer | null },
  ids: readonly number[],
  options: SteeringOptions,
  work: { signal?: AbortSignal; onProgress?: WorkProgress } = {},
): Promise<SteeringResult> {
  const { model } = target;
  const L = model.config.nLayer;
  const T = ids.length;
  if (T < 1 || options.a.length < 1 || options.b.length < 1) throw new RangeError('Steering needs a prompt and two non-empty prompts A and B.');
  const at = options.at ?? Math.max(0, T - 2);
  if (!(Number.isInteger(at) && at >= 0 && at < T)) throw new RangeError(`There is no token ${at} in the prompt (it has ${T}).`);
  const alpha = options.alpha ?? 1;
  if (!Number.isFinite(alpha)) throw new RangeError(`The scale α must be a finite number, not ${alpha}.`);
  const tokens = options.tokens ?? 8;
  if (!(Number.isInteger(tokens) && tokens >= 1 && tokens <= STEER_MAX_TOKENS)) throw new RangeError(`Generate 1 … ${STEER_MAX_TOKENS} tokens, not ${tokens}.`);
  const layers = options.layers ? [...new Set(options.layers)].sort((x, y) => x - y) : Array.from({ length: L }, (_, l) => l);
  for (const l of layers) if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new Error(`There is no layer ${l} (the model has ${L}).`);
  if (layers.length === 0) throw new Error('Choose at least one layer to steer.');
  const total = options.a.length + options.b.length + 2 * (T + tokens);
  const sessions: Session[] = [];
  const open = () => {
    const s = new Session(ctx, model);
    sessions.push(s);
    return s;
  };
  try {
    const read = async (s: Session, l: number) => Promise.all(s.layerState(l).map((b) => readF32(ctx.device, b, b.size / 4)));
    const sa = open();
    sa.prefill(options.a);
    const sb = open();
    sb.prefill(options.b);
    const push = new Map<number, Float64Array[]>();
    const pushNorm: number[] = [];
    for (const l of layers) {
      const [va, vb] = [await read(sa, l), await read(sb, l)];
      const diff = va.map((x, i) => Float64Array.from(vb[i] as Float32Array, (v, j) => v - (x[j] as number)));
      push.set(l, diff);
      pushNorm.push(Math.sqrt(diff.reduce((s, d) => s + d.reduce((q, v) => q + v * v, 0), 0)));
    }
    throwIfCancelled(work.signal);
    work.onProgress?.(options.a.length + options.b.length, total);

    const base = open();
    base.prefill(ids);
    const baseline = await greedy(base, tokens, work.signal);
    work.onProgress?.(options.a.length + options.b.length + T + tokens, total);

    const steered = open();
    steered.prefill(ids.slice(0, at + 1));
    for (const l of layers) {
      const now = await read(steered, l);
      steered.layerState(l).forEach((buffer, i) => {
        const d = (push.get(l) as Float64Array[])[i] as Float64Array;
        ctx.device.queue.writeBuffer(buffer, 0, Float32Array.from(now[i] as Float32Array, (v, j) => v + alpha * (d[j] as number)));
      });
    }
    if (at + 1 < T) steered.prefill(ids.slice(at + 1));
    const pushed = await greedy(steered, tokens, work.signal);
    work.onProgress?.(total, total);
    const texts = (list: number[]) => list.map((id) => readableToken(target.tokenizer, id));
    return { alpha, at, layers, baseline: { ids: baseline, texts: texts(baseline) }, steered: { ids: pushed, texts: texts(pushed) }, pushNorm };
  } finally {
    for (const s of sessions) s.destroy();
  }
}
