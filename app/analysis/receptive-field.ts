/**
 * Receptive field per channel (Mamba-1) or head (Mamba-2) of a layer, from Δ over a window of
 * tokens — the Δ-based reading of DeciMamba (Ben-Kish et al. 2024) and LongMamba (Ye et al. 2025):
 * what token j wrote into the state is, at the window's last token T−1, scaled by
 * exp(A · Σ_{s=j+1}^{T−1} Δ_s) (the decays of every later token), so Σ Δ over the window says how
 * far back a channel can still read.
 *
 * The exact definition used here (float64 over the float32 trace):
 *   a_d            = min_n |A[d, n]|, the channel's slowest-decaying state (Mamba-2: the head's
 *                    scalar |A_h|): the longest memory the channel has;
 *   S_d            = Σ_{s=1}^{T−1} Δ_s[d], Δ summed over the window except its first token;
 *   logRetention_d = −a_d · S_d (nats): the log of the fraction of token 0's write still held at
 *                    the last token by the slowest state;
 *   reach_d        = #{ j ∈ [0, T) : exp(−a_d · Σ_{s=j+1}^{T−1} Δ_s[d]) ≥ ε }, the tokens back
 *                    from the last one (itself counted) whose write is retained at least ε;
 *   global_d       ⇔ reach_d = T ⇔ logRetention_d ≥ ln ε (LongMamba's split: a channel is global
 *                    when its cumulative decay over the window stays above the threshold, local
 *                    otherwise). Default ε = 0.1.
 * `order` sorts the units by reach (longest first), ties by logRetention (least decay first).
 */

export interface ReceptiveField {
  /** Tokens in the window (T). */
  tokens: number;
  /** Channels (Mamba-1) or heads (Mamba-2): the Δ columns. */
  width: number;
  /** The retention threshold ε. */
  threshold: number;
  /** a_d = min_n |A[d, n]|, per unit. */
  decayRate: Float64Array;
  /** S_d = Σ_{s=1}^{T−1} Δ_s[d], per unit. */
  deltaSum: Float64Array;
  /** −a_d · S_d, nats, per unit (0: no decay over the window). */
  logRetention: Float64Array;
  /** Tokens back from the last one whose write keeps ≥ ε (1 … T), per unit. */
  reach: Int32Array;
  /** 1 where reach = T (global), 0 where local. */
  global: Uint8Array;
  /** The units sorted by reach, longest first (ties: least decay first). */
  order: Int32Array;
  globalCount: number;
}

export const RECEPTIVE_FIELD_THRESHOLD = 0.1;

/**
 * `delta` [T, width] row-major (Δ after softplus), `A` [width, aStates] (A = −exp(A_log), ≤ 0).
 * Throws on shapes that do not match or a threshold outside (0, 1).
 */
export function receptiveField(delta: ArrayLike<number>, tokens: number, width: number, A: ArrayLike<number>, aStates: number, threshold = RECEPTIVE_FIELD_THRESHOLD): ReceptiveField {
  if (!(Number.isInteger(tokens) && tokens >= 1)) throw new RangeError(`receptiveField: ${tokens} tokens (need at least 1)`);
  if (!(Number.isInteger(width) && width >= 1 && Number.isInteger(aStates) && aStates >= 1)) throw new RangeError(`receptiveField: width ${width}, ${aStates} states per unit`);
  if (delta.length !== tokens * width) throw new RangeError(`receptiveField: Δ has ${delta.length} values, not ${tokens} × ${width}`);
  if (A.length !== width * aStates) throw new RangeError(`receptiveField: A has ${A.length} values, not ${width} × ${aStates}`);
  if (!(threshold > 0 && threshold < 1)) throw new RangeError(`receptiveField: the retention threshold must be in (0, 1), not ${threshold}`);
  const budget = -Math.log(threshold); // a·ΣΔ ≤ budget ⇔ retention ≥ ε
  const decayRate = new Float64Array(width);
  const deltaSum = new Float64Array(width);
  const logRetention = new Float64Array(width);
  const reach = new Int32Array(width);
  const global = new Uint8Array(width);
  let globalCount = 0;
  for (let d = 0; d < width; d++) {
    let a = Infinity;
    for (let n = 0; n < aStates; n++) a = Math.min(a, Math.abs(A[d * aStates + n] as number));
    decayRate[d] = a;
    // Walk back from the last token: token j is retained by exp(−a · Σ_{s>j} Δ_s).
    let sum = 0;
    let count = 1; // the last token itself (nothing decays it)
    let stopped = false;
    for (let j = tokens - 2; j >= 0; j--) {
      sum += delta[(j + 1) * width + d] as number;
      if (!stopped && a * sum <= budget) count++;
      else stopped = true;
    }
    deltaSum[d] = sum;
    logRetention[d] = sum === 0 ? 0 : -a * sum;
    reach[d] = count;
    if (count === tokens) {
      global[d] = 1;
      globalCount++;
    }
  }
  const order = Int32Array.from({ length: width }, (_, i) => i).sort((p, q) => (reach[q] as number) - (reach[p] as number) || (logRetention[q] as number) - (logRetention[p] as number) || p - q);
  return { tokens, width, threshold, decayRate, deltaSum, logRetention, reach, global, order, globalCount };
}

/** Mean reach of the units in `units` and of all the others (NaN for an empty side). */
export function reachByGroup(rf: ReceptiveField, units: readonly number[]): { inside: number; outside: number } {
  const chosen = new Set(units.filter((u) => Number.isInteger(u) && u >= 0 && u < rf.width));
  let a = 0;
  let b = 0;
  for (let d = 0; d < rf.width; d++) {
    if (chosen.has(d)) a += rf.reach[d] as number;
    else b += rf.reach[d] as number;
  }
  return { inside: chosen.size ? a / chosen.size : NaN, outside: rf.width > chosen.size ? b / (rf.width - chosen.size) : NaN };
}
