/**
 * A float64 Mamba-1 and Mamba-2 reference that runs one token at a time with an explicit state per
 * layer (the conv window: the last K − 1 inputs of the conv, and the SSM state h), so that a test
 * can copy, compare, swap and push states — the reference of state patching and steering
 * (app/analysis/patching.ts, steering.ts). The same math as the whole-sequence references
 * (app/arch/mamba1/reference.ts; Mamba-2: app/arch/mamba2/reference.ts, built from the same SSD
 * scan, gated norm and conv helpers; test/gpu/analysis-causal.test.ts checks each pair agrees);
 * the mixer by the config's architecture; no Falcon-Mamba norm.
 */
import type { MambaConfig } from '../../app/model/config';
import { causalConvSilu, linear, need, rmsnorm, silu, softplus, type WeightTable } from '../../app/model/reference';
import { mamba2Layout } from '../../app/arch/mamba2/layout';
import { mamba2ScanRef } from '../../app/arch/mamba2/reference';
import { gatedRmsNormRef } from '../../app/kernels/gated-rmsnorm.ref';

export interface RefLayerState {
  /** The conv's last K − 1 inputs, oldest first: Mamba-1 x [(K − 1), Di]; Mamba-2 xBC [(K − 1), Di + 2·G·N]. */
  conv: Float64Array;
  /** h: Mamba-1 [Di, N]; Mamba-2 [H, P, N]. */
  ssm: Float64Array;
}

const isMamba2 = (c: MambaConfig) => c.architecture === 'mamba2';
const mamba2LayoutOf = (c: MambaConfig) => mamba2Layout({ dInner: c.dInner, nGroups: c.nGroups, dState: c.dState, nHeads: c.nHeads });

export const emptyStates = (c: MambaConfig): RefLayerState[] =>
  Array.from({ length: c.nLayer }, () => ({
    conv: new Float64Array((c.dConv - 1) * (isMamba2(c) ? mamba2LayoutOf(c).xbcWidth : c.dInner)),
    ssm: new Float64Array(isMamba2(c) ? c.nHeads * c.headDim * c.dState : c.dInner * c.dState),
  }));

export const copyStates = (states: readonly RefLayerState[]): RefLayerState[] => states.map((s) => ({ conv: s.conv.slice(), ssm: s.ssm.slice() }));

/**
 * Called after each layer's mixer with the residual stream before the block and the mixer's
 * output [D]; a returned array replaces the output (activation patching), else it stays.
 */
export type MixerHook = (layer: number, residualBefore: Float64Array, out: Float64Array) => Float64Array | void;

/** One layer's mixer on one token's normed input [D]: its output [D], the layer's state updated in place. */
type MixerStep = (c: MambaConfig, weights: WeightTable, m: string, input: Float64Array, st: RefLayerState) => Float64Array;

const mamba1MixerStep: MixerStep = (c, weights, m, h, st) => {
  const { dModel: D, dInner: Di, dState: N, dConv: K, dtRank: R } = c;
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
  return linear(y, 1, Di, need(weights, `${m}out_proj.weight`), D, weights(`${m}out_proj.bias`));
};

/**
 * Mamba-2 (app/arch/mamba2/reference.ts, one token): in_proj → z, xBC, dt; xBC through the conv
 * over the window (causalConvSilu's last row over the K − 1 kept inputs and this one) and SiLU;
 * the SSD recurrence (mamba2ScanRef, one token from the kept state); the gated norm with z; out_proj.
 */
const mamba2MixerStep: MixerStep = (c, weights, m, h, st) => {
  const { dModel: D, dInner: Di, dConv: K } = c;
  const layout = mamba2LayoutOf(c);
  const W = layout.inProjWidth;
  const C = layout.xbcWidth;
  const zxbcdt = linear(h, 1, D, need(weights, `${m}in_proj.weight`), W, weights(`${m}in_proj.bias`));
  const window = new Float64Array(K * C);
  window.set(st.conv);
  window.set(zxbcdt.subarray(layout.xbcOffset, layout.xbcOffset + C), (K - 1) * C);
  const xbc = causalConvSilu(window, K, C, 0, C, K, need(weights, `${m}conv1d.weight`), weights(`${m}conv1d.bias`)).subarray((K - 1) * C);
  st.conv.set(window.subarray(C));
  const scan = mamba2ScanRef(c, weights, m, { tokens: 1, xbc, zxbcdt, state: st.ssm });
  st.ssm.set(scan.state);
  const gated = gatedRmsNormRef(scan.y, zxbcdt, layout.zOffset, W, need(weights, `${m}norm.weight`), 1, Di, c.normGroupSize, c.normEps);
  return linear(gated, 1, Di, need(weights, `${m}out_proj.weight`), D, weights(`${m}out_proj.bias`));
};

/** Feeds token `id`, updating `states` in place; returns the logits after it [V]. The mixer is the config's architecture's (Mamba-1 or Mamba-2). */
export function refStep(c: MambaConfig, weights: WeightTable, id: number, states: RefLayerState[], hook?: MixerHook, prefix = 'backbone.'): Float64Array {
  const { dModel: D, vocabSize: V, normEps: eps } = c;
  const mixer = isMamba2(c) ? mamba2MixerStep : mamba1MixerStep;
  const emb = need(weights, `${prefix}embeddings.weight`);
  let residual = Float64Array.from(emb.subarray(id * D, (id + 1) * D));
  for (let l = 0; l < c.nLayer; l++) {
    const h = rmsnorm(residual, 1, D, need(weights, `${prefix}layers.${l}.norm.weight`), eps);
    const computed = mixer(c, weights, `${prefix}layers.${l}.mixer.`, h, states[l] as RefLayerState);
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
    logits = refStep(c, weights, id, states, o.hookAt?.(t));
    if (o.keep) after.push(copyStates(states));
  });
  return { states, logits, after };
}
