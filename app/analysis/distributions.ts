/**
 * Next-token distributions, in float64: softmax of logits, the k most likely ids, the top k of
 * one row written into [T, k] arrays (a trace's `topNext`; the CPU reference of kernels/top-k.ts),
 * and two distances between distributions (KL divergence, total variation). The one home of
 * these: the engine, the CLI, the renderer and the tests all use them from here.
 */

/** How many next tokens a trace keeps per position. */
export const TOP_NEXT = 5;

/** softmax(logits) in float64, the max subtracted first (so large logits do not overflow). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] as number) - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}

/** Indices of the k largest values, largest first (ties: lower index first). */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const top: number[] = [];
  if (k <= 0) return top;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (top.length === k && v <= (values[top[k - 1] as number] as number)) continue;
    let at = top.length;
    while (at > 0 && v > (values[top[at - 1] as number] as number)) at--;
    top.splice(at, 0, i);
    if (top.length > k) top.pop();
  }
  return top;
}

/** The top k of softmax(logits) into `ids`/`probs` from `offset` (ties: lower index first). */
export function topTokens(logits: ArrayLike<number>, k: number, ids: Int32Array, probs: Float32Array, offset: number): void {
  const order = topIndices(logits, k);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] as number) - max);
  order.forEach((id, i) => {
    ids[offset + i] = id;
    probs[offset + i] = Math.exp((logits[id] as number) - max) / sum;
  });
}

/** KL(p ‖ q) = Σ p·ln(p/q) in nats (terms with p = 0 are 0; +∞ where p > 0 = q). */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  if (p.length !== q.length) throw new RangeError(`klDivergence: ${p.length} vs ${q.length} probabilities`);
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] as number;
    if (pi > 0) kl += pi * Math.log(pi / (q[i] as number));
  }
  return kl;
}

/** Total variation distance ½·Σ|p − q|. */
export function totalVariation(p: ArrayLike<number>, q: ArrayLike<number>): number {
  if (p.length !== q.length) throw new RangeError(`totalVariation: ${p.length} vs ${q.length} probabilities`);
  let s = 0;
  for (let i = 0; i < p.length; i++) s += Math.abs((p[i] as number) - (q[i] as number));
  return s / 2;
}
