/**
 * Next-token distributions from logits, in float64: softmax, the k most likely ids, and the
 * top-k ids and probabilities of one row written into [T, k] arrays (the trace's `topNext`).
 */

/** How many next tokens a trace keeps per position. */
export const TOP_NEXT = 5;

/** softmax(logits) in float64 (max subtracted first). */
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

/** The top k of softmax(logits) into ids/probs from `offset`. */
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
