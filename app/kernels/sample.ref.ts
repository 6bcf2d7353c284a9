/**
 * CPU reference of sample (float64 weights and sums), in the kernel's order: penalty, max,
 * greedy, weights, top-k, top-p, inverse CDF over the kept ids in index order. Penalized logits
 * are rounded to f32 as the kernel holds them, so thresholds compare the same values.
 */
import type { SampleSettings } from './sample.js';

export function sampleRef(logits: ArrayLike<number>, seen: Uint32Array | null, s: SampleSettings): number {
  const V = logits.length;
  const l = new Float64Array(V);
  for (let i = 0; i < V; i++) {
    const v = logits[i] as number;
    const marked = seen !== null && s.repetitionPenalty !== 1 && (((seen[i >>> 5] as number) >>> (i & 31)) & 1) === 1;
    l[i] = marked ? Math.fround(v < 0 ? v * s.repetitionPenalty : v / s.repetitionPenalty) : v;
  }
  let argmax = 0;
  for (let i = 1; i < V; i++) if ((l[i] as number) > (l[argmax] as number)) argmax = i;
  if (s.temperature <= 0 || s.topK === 1 || V === 1) return argmax;

  const top = l[argmax] as number;
  const w = l.map((v) => Math.exp((v - top) / s.temperature));

  // top-k: keep l' ≥ the k-th largest l'.
  let threshold = -Infinity;
  if (s.topK > 0 && s.topK < V) {
    threshold = Float64Array.from(l).sort().reverse()[s.topK - 1] as number;
  }
  // top-p: the largest value τ whose mass at or above it reaches p of the kept mass.
  if (s.topP < 1) {
    const kept = [...l.keys()].filter((i) => (l[i] as number) >= threshold).sort((a, b) => (l[b] as number) - (l[a] as number));
    const target = s.topP * kept.reduce((sum, i) => sum + (w[i] as number), 0);
    let mass = 0;
    for (let k = 0; k < kept.length; ) {
      const value = l[kept[k] as number] as number;
      while (k < kept.length && l[kept[k] as number] === value) mass += w[kept[k++] as number] as number;
      if (mass >= target) {
        threshold = value;
        break;
      }
    }
  }
  // Inverse CDF in index order.
  let total = 0;
  let last = -1;
  for (let i = 0; i < V; i++) {
    if ((l[i] as number) >= threshold) {
      total += w[i] as number;
      if ((w[i] as number) > 0) last = i;
    }
  }
  const target = Math.fround(Math.min(s.u, 0.99999994)) * total;
  let running = 0;
  for (let i = 0; i < V; i++) {
    if ((l[i] as number) >= threshold) {
      running += w[i] as number;
      if (running > target) return i;
    }
  }
  return last;
}
