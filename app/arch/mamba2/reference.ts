/**
 * float64 reference of the Mamba-2 mixer (SSD as its plain sequential recurrence), for
 * app/model/reference.ts's whole-model forward. Built from the kernels' own references (the SSD
 * scan and the gated RMSNorm) so that one definition of each holds; taps: delta [T, H], B and C
 * [T, G·N], x [T, Di].
 */
import { gatedRmsNormRef } from '../../kernels/gated-rmsnorm.ref.js';
import { ssdRef } from '../../kernels/ssd.ref.js';
import { causalConvSilu, linear, need, type MixerRef } from '../../model/reference.js';
import { mamba2Layout } from './layout.js';

/** What a knocked-out token's raw dt becomes (the GPU's KNOCKOUT_DT): softplus gives exactly 0. */
const KNOCKED_DT = -1e30;

export const mamba2MixerRef: MixerRef = ({ config: c, weights, mixer: m, input: h, tokens: T, knockToken }) => {
  const { dModel: D, dInner: Di, dConv: K, nHeads: H, nGroups: G, dState: N } = c;
  const layout = mamba2Layout({ dInner: Di, nGroups: G, dState: N, nHeads: H });
  const W = layout.inProjWidth;
  const zxbcdt = linear(h, T, D, need(weights, `${m}in_proj.weight`), W, weights(`${m}in_proj.bias`)); // [T, W]
  if (knockToken >= 0) zxbcdt.fill(KNOCKED_DT, knockToken * W + layout.dtOffset, knockToken * W + layout.dtOffset + H);
  // xBC through the depthwise causal conv and SiLU, from a zero conv state.
  const C = layout.xbcWidth;
  const xbc = causalConvSilu(zxbcdt, T, W, layout.xbcOffset, C, K, need(weights, `${m}conv1d.weight`), weights(`${m}conv1d.bias`));
  const scan = ssdRef({
    tokens: T,
    nHeads: H,
    headDim: c.headDim,
    nGroups: G,
    dState: N,
    xbc,
    xbcStride: C,
    xOffset: 0,
    bOffset: layout.bOffset,
    cOffset: layout.cOffset,
    dt: zxbcdt,
    dtOffset: layout.dtOffset,
    dtStride: W,
    dtBias: need(weights, `${m}dt_bias`),
    aLog: need(weights, `${m}A_log`),
    d: need(weights, `${m}D`),
    timeStepLimit: c.timeStepLimit,
    state: new Float64Array(H * c.headDim * N),
  });
  const gated = gatedRmsNormRef(scan.y, zxbcdt, layout.zOffset, W, need(weights, `${m}norm.weight`), T, Di, c.normGroupSize, c.normEps);
  const output = linear(gated, T, Di, need(weights, `${m}out_proj.weight`), D, weights(`${m}out_proj.bias`));
  const rows = (offset: number, width: number) => {
    const out = new Float64Array(T * width);
    for (let t = 0; t < T; t++) out.set(xbc.subarray(t * C + offset, t * C + offset + width), t * width);
    return out;
  };
  return { output, taps: { delta: scan.delta, B: rows(layout.bOffset, G * N), C: rows(layout.cOffset, G * N), x: rows(0, Di) } };
};
