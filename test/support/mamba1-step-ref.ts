/**
 * A float64 Mamba-1 reference that runs one token at a time with an explicit state per layer
 * (the conv window: the last K − 1 inputs of the conv, and the SSM state h [Di, N]), so that a
 * test can copy, compare and swap states — the reference of state patching
 * (app/analysis/patching.ts). The same math as app/arch/mamba1/reference.ts (test/gpu/analysis-
 * causal.test.ts checks the two agree), built from its helpers; no Falcon-Mamba norm.
 */
import type { MambaConfig } from '../../app/model/config';
import { linear, need, rmsnorm, silu, softplus, type WeightTable } from '../../app/model/reference';

export interface RefLayerState {
  /** The conv's last K − 1 inputs (x before the conv), oldest first: [(K − 1), Di]. */
  conv: Float64Array;
  /** h [Di, N]. */
  ssm: Float64Array;
}

export const emptyStates = (c: MambaConfig): RefLayerState[] => Array.from({ length: c.nLayer }, () => ({ conv: new Float64Array((c.dConv - 1) * c.dInner), ssm: new Float64Array(c.dInner * c.dState) }));

export const copyStates = (states: readonly RefLayerState[]): RefLayerState[] => states.map((s) => ({ conv: s.conv.slice(), ssm: s.ssm.slice() }));

/**
 * Called after each layer's mixer with the residual stream before the block and the mixer's
 * output [D]; a returned array replaces the output (activation patching), else it stays.
 */
export type MixerHook = (layer: number, residualBefore: Float64Array, out: Float64Array) => Float64Array | void;

/** Feeds token `id`, updating `states` in place; returns the logits after it [V]. */
export function mamba1Step(c: MambaConfig, weights: WeightTable, id: number, states: RefLayerState[], hook?: MixerHook, prefix = 'backbone.'): Float64Array {
  const { dModel: D, dInner: Di, dState: N, dConv: K, dtRank: R, vocabSize: V, normEps: eps } = c;
  const emb = need(weights, `${prefix}embeddings.weight`);
  let residual = Float64Array.from(emb.subarray(id * D, (id + 1) * D));
  for (let l = 0; l < c.nLayer; l++) {
    const m = `${prefix}layers.${l}.mixer.`;
    const st = states[l] as RefLayerState;
    const h = rmsnorm(residual, 1, D, need(weights, `${prefix}layers.${l}.norm.weight`), eps);
    const xz = linear(h, 1, D, need(weights, `${m}in_proj.weight`), 2 * Di, weights(`${m}in_proj.bias`));
    const w = need(weights, `${m}conv1d.weight`);
    const cb = weights(`${m}conv1d.bias`);
    const x = new Float64Array(Di);
    for (let d = 0; d < Di; d++) {
      let s = cb ? (cb[d] as number) : 0;
      for (let k = 0; k < K - 1; k++) s += (w[d * K + k] as number) * (st.conv[k * Di + d] as number);
      s += (w[d * K + K - 1] as number) * (xz[d] as number);
      x[d] = silu(s);
    }
    // Shift the window: drop the oldest input, append this one.
    st.conv.copyWithin(0, Di);
    for (let d = 0; d < Di; d++) st.conv[(K - 2) * Di + d] = xz[d] as number;
    const dbc = linear(x, 1, Di, need(weights, `${m}x_proj.weight`), R + 2 * N);
    const dtW = need(weights, `${m}dt_proj.weight`);
    const dtB = need(weights, `${m}dt_proj.bias`);
    const Alog = need(weights, `${m}A_log`);
    const Dskip = need(weights, `${m}D`);
    const y = new Float64Array(Di);
    for (let d = 0; d < Di; d++) {
      let dt = dtB[d] as number;
      for (let r = 0; r < R; r++) dt += (dtW[d * R + r] as number) * (dbc[r] as number);
      const delta = softplus(dt);
      let acc = 0;
      for (let n = 0; n < N; n++) {
        const a = -Math.exp(Alog[d * N + n] as number);
        const s = Math.exp(delta * a) * (st.ssm[d * N + n] as number) + delta * (dbc[R + n] as number) * (x[d] as number);
        st.ssm[d * N + n] = s;
        acc += s * (dbc[R + N + n] as number);
      }
      y[d] = (acc + (Dskip[d] as number) * (x[d] as number)) * silu(xz[Di + d] as number);
    }
    const computed = linear(y, 1, Di, need(weights, `${m}out_proj.weight`), D, weights(`${m}out_proj.bias`));
    const out = hook?.(l, residual, computed) ?? computed;
    residual = residual.map((v, i) => v + (out[i] as number));
  }
  const normed = rmsnorm(residual, 1, D, need(weights, `${prefix}norm_f.weight`), eps);
  return linear(normed, 1, D, weights('lm_head.weight') ?? emb, V);
}

/**
 * Feeds `ids` one at a time from `states` (default: empty), `hookAt(t)` the mixer hook of token t;
 * the states after the last token, its logits, and with `keep` a copy of the states after each token.
 */
export function feedSteps(c: MambaConfig, weights: WeightTable, ids: readonly number[], o: { states?: RefLayerState[]; hookAt?: (t: number) => MixerHook | undefined; keep?: boolean } = {}) {
  const states = o.states ?? emptyStates(c);
  const after: RefLayerState[][] = [];
  let logits: Float64Array = new Float64Array(0);
  ids.forEach((id, t) => {
    logits = mamba1Step(c, weights, id, states, o.hookAt?.(t));
    if (o.keep) after.push(copyStates(states));
  });
  return { states, logits, after };
}
