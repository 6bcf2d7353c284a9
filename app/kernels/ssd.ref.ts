/** CPU reference of ssd (Mamba-2's scan): the plain sequential recurrence over tokens in float64. */
import { softplusRef } from './selective-scan.ref.js';

export interface SsdRefInputs {
  tokens: number; // T
  nHeads: number; // H
  headDim: number; // P
  nGroups: number; // G
  dState: number; // N
  /** x[t, h·P + p] = xbc[xOffset + t·xbcStride + h·P + p]; B, C [T, G·N] likewise at bOffset, cOffset. */
  xbc: ArrayLike<number>;
  xbcStride: number;
  xOffset: number;
  bOffset: number;
  cOffset: number;
  /** dt[t, h] = dt[dtOffset + t·dtStride + h] (without dt_bias). */
  dt: ArrayLike<number>;
  dtOffset: number;
  dtStride: number;
  dtBias: ArrayLike<number>; // [H]
  aLog: ArrayLike<number>; // [H]
  d: ArrayLike<number>; // [H]
  /** time_step_limit (default [0, Infinity]). */
  timeStepLimit?: readonly [number, number];
  /** [H, P, N] state before the first token (zeros at sequence start). */
  state: ArrayLike<number>;
}

/** y [T, H·P] (before the gated norm), the final state [H, P, N] and Δ [T, H]. */
export function ssdRef(i: SsdRefInputs): { y: Float64Array; state: Float64Array; delta: Float64Array } {
  const { tokens: T, nHeads: H, headDim: P, nGroups: G, dState: N } = i;
  const [dtMin, dtMax] = i.timeStepLimit ?? [0, Infinity];
  const at = (a: ArrayLike<number>, k: number): number => a[k] as number;
  const state = Float64Array.from({ length: H * P * N }, (_, k) => at(i.state, k));
  const y = new Float64Array(T * H * P);
  const delta = new Float64Array(T * H);
  const headsPerGroup = H / G;
  for (let t = 0; t < T; t++) {
    const row = t * i.xbcStride;
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / headsPerGroup);
      const dt = Math.min(Math.max(softplusRef(at(i.dt, i.dtOffset + t * i.dtStride + h) + at(i.dtBias, h)), dtMin), dtMax);
      delta[t * H + h] = dt;
      const decay = Math.exp(dt * -Math.exp(at(i.aLog, h)));
      for (let p = 0; p < P; p++) {
        const xv = at(i.xbc, i.xOffset + row + h * P + p);
        let sum = 0;
        for (let n = 0; n < N; n++) {
          const k = (h * P + p) * N + n;
          const s = decay * (state[k] as number) + dt * xv * at(i.xbc, i.bOffset + row + g * N + n);
          state[k] = s;
          sum += s * at(i.xbc, i.cOffset + row + g * N + n);
        }
        y[t * H * P + h * P + p] = sum + at(i.d, h) * xv;
      }
    }
  }
  return { y, state, delta };
}
