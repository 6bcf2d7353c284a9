/** CPU reference of norm-matvec (float64 accumulation); the math is in shaders/norm_matvec.wgsl. */
import { siluRef } from './selective-scan.ref.js';

export interface NormMatvecRefInput {
  x: ArrayLike<number>; // [I] (already at its offset)
  z?: ArrayLike<number>; // [I] ('gated-rms')
  g?: ArrayLike<number>; // [I]
  weight: ArrayLike<number>; // [O, I] as the values the GPU sees (f16-rounded for f16 storage)
  norm: 'none' | 'rms' | 'gated-rms';
  eps?: number;
  groupSize?: number;
  conv?: { start: number; channels: number; kernelSize: number; weight: ArrayLike<number>; bias: ArrayLike<number> | null; state: ArrayLike<number> };
  yIn?: ArrayLike<number>; // accumulate
  inFeatures: number;
  outFeatures: number;
}

/** y [O] and the conv state after the step ([C, K-1]; empty without a conv). */
export function normMatvecRef(p: NormMatvecRefInput): { y: Float64Array; convState: Float64Array } {
  const I = p.inFeatures;
  const O = p.outFeatures;
  const v = new Float64Array(I);
  for (let i = 0; i < I; i++) v[i] = (p.x[i] as number) * (p.norm === 'gated-rms' ? siluRef(p.z?.[i] as number) : 1);
  if (p.norm !== 'none') {
    const gs = p.norm === 'gated-rms' ? (p.groupSize ?? I) : I;
    for (let first = 0; first < I; first += gs) {
      let sq = 0;
      for (let i = first; i < first + gs; i++) sq += (v[i] as number) ** 2;
      const scale = 1 / Math.sqrt(sq / gs + (p.eps ?? 0));
      for (let i = first; i < first + gs; i++) v[i] = (v[i] as number) * scale * (p.g?.[i] as number);
    }
  }
  const y = new Float64Array(O);
  const c = p.conv;
  const K = c?.kernelSize ?? 0;
  const convState = c ? Float64Array.from(c.state) : new Float64Array(0);
  for (let o = 0; o < O; o++) {
    let r = 0;
    for (let i = 0; i < I; i++) r += (p.weight[o * I + i] as number) * (v[i] as number);
    if (c && o >= c.start && o < c.start + c.channels) {
      const ch = o - c.start;
      let acc = (c.bias ? (c.bias[ch] as number) : 0) + (c.weight[ch * K + K - 1] as number) * r;
      for (let k = 0; k < K - 1; k++) acc += (c.weight[ch * K + k] as number) * (convState[ch * (K - 1) + k] as number);
      for (let k = 0; k < K - 2; k++) convState[ch * (K - 1) + k] = convState[ch * (K - 1) + k + 1] as number;
      convState[ch * (K - 1) + K - 2] = r;
      r = siluRef(acc);
    }
    y[o] = r + (p.yIn ? (p.yIn[o] as number) : 0);
  }
  return { y, convState };
}
