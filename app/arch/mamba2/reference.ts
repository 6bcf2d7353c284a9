/**
 * float64 reference of the Mamba-2 mixer (SSD as its plain sequential recurrence), for
 * app/model/reference.ts's whole-model forward. Built from the kernels' own references (the SSD
 * scan and the gated RMSNorm) so that one definition of each holds; taps: delta [T, H], B and C
 * [T, G·N], x [T, Di].
 */
import { gatedRmsNormRef } from '../../kernels/gated-rmsnorm.ref.js';
import { ssdRef } from '../../kernels/ssd.ref.js';
import type { MambaConfig } from '../../model/config.js';
import { causalConvSilu, linear, need, type MixerRef, type WeightTable } from '../../model/reference.js';
import { mamba2Layout } from './layout.js';

/** What a knocked-out token's raw dt becomes (the GPU's KNOCKOUT_DT): softplus gives exactly 0. */
const KNOCKED_DT = -1e30;

/**
 * The SSD recurrence of one Mamba-2 mixer (weights under `m`) over `tokens` rows of the conv's
 * output xbc [T, Di + 2·G·N] and in_proj's zxbcdt [T, W] (dt at its offset), from `state`
 * [H, P, N]: y [T, H·P], the final state and Δ. Also the one-token step of
 * test/support/step-ref.ts.
 */
export function mamba2ScanRef(c: MambaConfig, weights: WeightTable, m: string, i: { tokens: number; xbc: Float64Array; zxbcdt: Float64Array; state: Float64Array }): ReturnType<typeof ssdRef> {
  const layout = mamba2Layout({ dInner: c.dInner, nGroups: c.nGroups, dState: c.dState, nHeads: c.nHeads });
  return ssdRef({
    tokens: i.tokens,
    nHeads: c.nHeads,
    headDim: c.headDim,
    nGroups: c.nGroups,
    dState: c.dState,
    xbc: i.xbc,
    xbcStride: layout.xbcWidth,
    xOffset: 0,
    bOffset: layout.bOffset,
    cOffset: layout.cOffset,
    dt: i.zxbcdt,
    dtOffset: layout.dtOffset,
    dtStride: layout.inProjWidth,
    dtBias: need(weights, `${m}dt_bias`),
    aLog: need(weights, `${m}A_log`),
    d: need(weights, `${m}D`),
    timeStepLimit: c.timeStepLimit,
    state: i.state,
  });
}

export const mamba2MixerRef: MixerRef = ({ config: c, weights, mixer: m, input: h, tokens: T, knockToken, projection = linear }) => {
  const { dModel: D, dInner: Di, dConv: K, nHeads: H, nGroups: G, dState: N } = c;
  const layout = mamba2Layout({ dInner: Di, nGroups: G, dState: N, nHeads: H });
  const W = layout.inProjWidth;
  const zxbcdt = projection(h, T, D, need(weights, `${m}in_proj.weight`), W, weights(`${m}in_proj.bias`)); // [T, W]
  if (knockToken >= 0) zxbcdt.fill(KNOCKED_DT, knockToken * W + layout.dtOffset, knockToken * W + layout.dtOffset + H);
  // xBC through the depthwise causal conv and SiLU, from a zero conv state.
  const C = layout.xbcWidth;
  const xbc = causalConvSilu(zxbcdt, T, W, layout.xbcOffset, C, K, need(weights, `${m}conv1d.weight`), weights(`${m}conv1d.bias`));
  const scan = mamba2ScanRef(c, weights, m, { tokens: T, xbc, zxbcdt, state: new Float64Array(H * c.headDim * N) });
  const gated = gatedRmsNormRef(scan.y, zxbcdt, layout.zOffset, W, need(weights, `${m}norm.weight`), T, Di, c.normGroupSize, c.normEps);
  const output = projection(gated, T, Di, need(weights, `${m}out_proj.weight`), D, weights(`${m}out_proj.bias`));
  const rows = (offset: number, width: number) => {
    const out = new Float64Array(T * width);
    for (let t = 0; t < T; t++) out.set(xbc.subarray(t * C + offset, t * C + offset + width), t * width);
    return out;
  };
  return { output, taps: { delta: scan.delta, B: rows(layout.bOffset, G * N), C: rows(layout.cOffset, G * N), x: rows(0, Di) } };
};
