/**
 * float64 reference of the Mamba-1 mixer (the selective scan, S6), for app/model/reference.ts's
 * whole-model forward; `mamba1ForwardRef` runs a whole Mamba-1 model with it. Falcon-Mamba's too
 * (config.mixerRmsEps > 0): dt_r, B and C each divided by sqrt(mean square + eps) after x_proj.
 *
 * Glossary (paper → here): D = dModel, E·D = dInner (Di), N = dState, R = dtRank, Δ = delta,
 * A = −exp(A_log), B, C = input-dependent write/read vectors, x = conv output, z = gate.
 */
import type { MambaConfig } from '../../model/config.js';
import { causalConvSilu, forwardRef, linear, need, silu, softplus, type MixerRef, type WeightTable } from '../../model/reference.js';

export { softplus, type WeightTable };

export interface Mamba1RefOutput {
  logits: Float64Array; // [T, V]
  /** Residual stream after each block, [T, D] each (HF's hidden_states[i] for i < L). */
  hidden: Float64Array[];
  /** Final-norm output [T, D] (HF's hidden_states[L]). */
  normed: Float64Array;
  delta: Float64Array[]; // per layer [T, Di]
  B: Float64Array[]; // per layer [T, N], as the scan uses it (Falcon-Mamba: after the mixer norm)
  C: Float64Array[]; // per layer [T, N], likewise
  x: Float64Array[]; // per layer [T, Di] conv output after SiLU
  z: Float64Array[]; // per layer [T, Di] the gate
  y: Float64Array[]; // per layer [T, Di] (scan output + D·x)·silu(z), out_proj's input
  stateNorm: Float64Array[]; // per layer [T] ‖state‖ over (d, n) after each token
}

/** One Mamba-1 mixer over T tokens from a zero state; taps: delta, B, C, x, z, y, stateNorm. */
export const mamba1MixerRef: MixerRef = ({ config, weights, mixer: m, input: h, tokens: T, knockToken: knocked, projection = linear }) => {
  const { dModel: D, dInner: Di, dState: N, dConv: K, dtRank: R } = config;
  const xz = projection(h, T, D, need(weights, `${m}in_proj.weight`), 2 * Di, weights(`${m}in_proj.bias`)); // [T, 2Di]
  const x = causalConvSilu(xz, T, 2 * Di, 0, Di, K, need(weights, `${m}conv1d.weight`), weights(`${m}conv1d.bias`)); // [T, Di]
  const dbc = projection(x, T, Di, need(weights, `${m}x_proj.weight`), R + 2 * N); // [T, R+2N]
  if (config.mixerRmsEps > 0) {
    // Falcon-Mamba: a weightless RMS norm over each part of each row (dt_r, B, C).
    for (let t = 0; t < T; t++) {
      for (const [start, end] of [[0, R], [R, R + N], [R + N, R + 2 * N]] as const) {
        const row = t * (R + 2 * N);
        let sq = 0;
        for (let i = row + start; i < row + end; i++) sq += (dbc[i] as number) ** 2;
        const scale = 1 / Math.sqrt(sq / (end - start) + config.mixerRmsEps);
        for (let i = row + start; i < row + end; i++) dbc[i] = (dbc[i] as number) * scale;
      }
    }
  }
  // dt [T, Di] = dt_proj(dt_r) + its bias, dt_r the first R columns of each row.
  const dtLow = new Float64Array(T * R);
  for (let t = 0; t < T; t++) dtLow.set(dbc.subarray(t * (R + 2 * N), t * (R + 2 * N) + R), t * R);
  const dtAll = projection(dtLow, T, R, need(weights, `${m}dt_proj.weight`), Di, need(weights, `${m}dt_proj.bias`));
  const Alog = need(weights, `${m}A_log`); // [Di, N]
  const Dskip = need(weights, `${m}D`);
  const delta = new Float64Array(T * Di);
  const B = new Float64Array(T * N);
  const C = new Float64Array(T * N);
  const y = new Float64Array(T * Di);
  const z = new Float64Array(T * Di);
  const stateNorm = new Float64Array(T);
  const state = new Float64Array(Di * N);
  for (let t = 0; t < T; t++) {
    const row = t * (R + 2 * N);
    for (let n = 0; n < N; n++) {
      B[t * N + n] = dbc[row + R + n] as number;
      C[t * N + n] = dbc[row + R + N + n] as number;
    }
    for (let d = 0; d < Di; d++) {
      const dlt = t === knocked ? 0 : softplus(dtAll[t * Di + d] as number);
      delta[t * Di + d] = dlt;
      const xv = x[t * Di + d] as number;
      let acc = 0;
      for (let n = 0; n < N; n++) {
        const a = -Math.exp(Alog[d * N + n] as number);
        const s = Math.exp(dlt * a) * (state[d * N + n] as number) + dlt * (B[t * N + n] as number) * xv;
        state[d * N + n] = s;
        acc += s * (C[t * N + n] as number);
      }
      const zv = xz[t * 2 * Di + Di + d] as number;
      z[t * Di + d] = zv;
      y[t * Di + d] = (acc + (Dskip[d] as number) * xv) * silu(zv);
    }
    let sq = 0;
    for (let i = 0; i < Di * N; i++) sq += (state[i] as number) ** 2;
    stateNorm[t] = Math.sqrt(sq);
  }
  const output = projection(y, T, Di, need(weights, `${m}out_proj.weight`), D, weights(`${m}out_proj.bias`));
  return { output, taps: { delta, B, C, x, z, y, stateNorm } };
};

/**
 * A whole Mamba-1 model. `knockout`: Δ of token `token` := 0 (after softplus) in `layers` (null:
 * every layer) — the token then writes nothing and the state passes it unchanged.
 */
export function mamba1ForwardRef(
  config: MambaConfig,
  weights: WeightTable,
  ids: ArrayLike<number>,
  prefix = 'backbone.',
  knockout?: { token: number; layers: readonly number[] | null },
): Mamba1RefOutput {
  const run = forwardRef(config, weights, ids, () => mamba1MixerRef, prefix, knockout);
  const tap = (name: string) => run.layers.map((taps) => taps[name] as Float64Array);
  return {
    logits: run.logits,
    hidden: run.hidden,
    normed: run.normed,
    delta: tap('delta'),
    B: tap('B'),
    C: tap('C'),
    x: tap('x'),
    z: tap('z'),
    y: tap('y'),
    stateNorm: tap('stateNorm'),
  };
}
