/**
 * CPU reference of a whole Mamba-1 model, float64 throughout: the independent check of the GPU
 * engine (and, through the golden fixtures, checked itself against transformers). Plain loops,
 * written for clarity, not speed: use it on small models and short sequences.
 *
 * Glossary (paper → here): D = dModel, E·D = dInner (Di), N = dState, R = dtRank, Δ = delta,
 * A = −exp(A_log), B, C = input-dependent write/read vectors, x = conv output, z = gate.
 */
import type { MambaConfig } from '../formats/config.js';

/** Tensors by their name in the file, as float32 arrays (row-major). */
export type WeightTable = (name: string) => Float32Array | undefined;

export interface Mamba1RefOutput {
  logits: Float64Array; // [T, V]
  /** Residual stream after each block, [T, D] each (HF's hidden_states[i] for i < L). */
  hidden: Float64Array[];
  /** Final-norm output [T, D] (HF's hidden_states[L]). */
  normed: Float64Array;
  delta: Float64Array[]; // per layer [T, Di]
  B: Float64Array[]; // per layer [T, N]
  C: Float64Array[]; // per layer [T, N]
  x: Float64Array[]; // per layer [T, Di] conv output after SiLU
  z: Float64Array[]; // per layer [T, Di] the gate
  y: Float64Array[]; // per layer [T, Di] (scan output + D·x)·silu(z), out_proj's input
  stateNorm: Float64Array[]; // per layer [T] ‖state‖ over (d, n) after each token
}

const silu = (v: number) => v / (1 + Math.exp(-v));
/** softplus with torch's threshold: v for v > 20. Stable for very negative v (gives 0, never NaN). */
export const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));

function need(weights: WeightTable, name: string): Float32Array {
  const w = weights(name);
  if (!w) throw new Error(`reference: missing tensor ${name}`);
  return w;
}

/** y[T, O] = x[T, I] · Wᵀ (+ b), W [O, I]. */
function linear(x: Float64Array, T: number, I: number, W: Float32Array, O: number, b?: Float32Array): Float64Array {
  const y = new Float64Array(T * O);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < O; o++) {
      let s = b ? (b[o] as number) : 0;
      for (let i = 0; i < I; i++) s += (x[t * I + i] as number) * (W[o * I + i] as number);
      y[t * O + o] = s;
    }
  }
  return y;
}

function rmsnorm(x: Float64Array, T: number, D: number, w: Float32Array, eps: number): Float64Array {
  const out = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += (x[t * D + i] as number) ** 2;
    const scale = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) out[t * D + i] = (x[t * D + i] as number) * scale * (w[i] as number);
  }
  return out;
}

/**
 * `knockout`: Δ of token `token` := 0 (after softplus) in `layers` (null: every layer) — the
 * token then writes nothing and the state passes it unchanged.
 */
export function mamba1ForwardRef(
  config: MambaConfig,
  weights: WeightTable,
  ids: ArrayLike<number>,
  prefix = 'backbone.',
  knockout?: { token: number; layers: readonly number[] | null },
): Mamba1RefOutput {
  const { dModel: D, dInner: Di, dState: N, dConv: K, dtRank: R, vocabSize: V, nLayer: L, normEps: eps } = config;
  const T = ids.length;
  const emb = weights(`${prefix}embeddings.weight`) ?? need(weights, `${prefix}embedding.weight`);
  let residual = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const id = ids[t] as number;
    for (let i = 0; i < D; i++) residual[t * D + i] = emb[id * D + i] as number;
  }
  const out: Mamba1RefOutput = { logits: new Float64Array(0), hidden: [], normed: new Float64Array(0), delta: [], B: [], C: [], x: [], z: [], y: [], stateNorm: [] };
  for (let l = 0; l < L; l++) {
    const p = `${prefix}layers.${l}.`;
    const m = `${p}mixer.`;
    const h = rmsnorm(residual, T, D, need(weights, `${p}norm.weight`), eps);
    const xz = linear(h, T, D, need(weights, `${m}in_proj.weight`), 2 * Di, weights(`${m}in_proj.bias`)); // [T, 2Di]
    // Causal depthwise conv over x (zero history), + bias, then SiLU.
    const convW = need(weights, `${m}conv1d.weight`); // [Di, 1, K]
    const convB = weights(`${m}conv1d.bias`);
    const x = new Float64Array(T * Di);
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < Di; d++) {
        let s = convB ? (convB[d] as number) : 0;
        for (let k = 0; k < K; k++) {
          const src = t - (K - 1) + k;
          if (src >= 0) s += (convW[d * K + k] as number) * (xz[src * 2 * Di + d] as number);
        }
        x[t * Di + d] = silu(s);
      }
    }
    const dbc = linear(x, T, Di, need(weights, `${m}x_proj.weight`), R + 2 * N); // [T, R+2N]
    const dtW = need(weights, `${m}dt_proj.weight`); // [Di, R]
    const dtB = need(weights, `${m}dt_proj.bias`);
    const Alog = need(weights, `${m}A_log`); // [Di, N]
    const Dskip = need(weights, `${m}D`);
    const delta = new Float64Array(T * Di);
    const B = new Float64Array(T * N);
    const C = new Float64Array(T * N);
    const y = new Float64Array(T * Di);
    const z = new Float64Array(T * Di);
    const stateNorm = new Float64Array(T);
    const state = new Float64Array(Di * N);
    const knocked = knockout && (knockout.layers === null || knockout.layers.includes(l)) ? knockout.token : -1;
    for (let t = 0; t < T; t++) {
      const row = t * (R + 2 * N);
      for (let n = 0; n < N; n++) {
        B[t * N + n] = dbc[row + R + n] as number;
        C[t * N + n] = dbc[row + R + N + n] as number;
      }
      for (let d = 0; d < Di; d++) {
        let dt = dtB[d] as number;
        for (let r = 0; r < R; r++) dt += (dtW[d * R + r] as number) * (dbc[row + r] as number);
        const dlt = t === knocked ? 0 : softplus(dt);
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
    const mixed = linear(y, T, Di, need(weights, `${m}out_proj.weight`), D, weights(`${m}out_proj.bias`));
    const next = new Float64Array(T * D);
    for (let i = 0; i < T * D; i++) next[i] = (residual[i] as number) + (mixed[i] as number);
    residual = next;
    out.hidden.push(residual);
    out.delta.push(delta);
    out.B.push(B);
    out.C.push(C);
    out.x.push(x);
    out.z.push(z);
    out.y.push(y);
    out.stateNorm.push(stateNorm);
  }
  out.normed = rmsnorm(residual, T, D, need(weights, `${prefix}norm_f.weight`), eps);
  out.logits = linear(out.normed, T, D, weights('lm_head.weight') ?? emb, V);
  return out;
}
