/** CPU reference of the MLP activation op (float64), from the definitions (torch F.silu, F.gelu, F.gelu(approximate='tanh'), relu²). */
import type { MlpActShape } from './mlp-act.js';

/** erf in double precision: its Maclaurin series below 3, erfc's continued fraction beyond. */
export function erf(x: number): number {
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    // Maclaurin series: erf z = 2/√π Σ (−1)^n z^(2n+1) / (n! (2n+1))
    let term = z;
    let sum = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc z = exp(−z²)/√π · 1/(z + 1/2/(z + 1/(z + 3/2/(z + …)))) (evaluated backwards)
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (z + f);
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
  }
  return x < 0 ? -r : r;
}

export function activationRef(kind: MlpActShape['activation'], v: number): number {
  switch (kind) {
    case 'silu':
      return v / (1 + Math.exp(-v));
    case 'gelu':
      return 0.5 * v * (1 + erf(v / Math.SQRT2));
    case 'gelu_tanh':
      return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    case 'relu2':
      return Math.max(v, 0) ** 2;
  }
}

/** out [T, I] = act(x) (not gated, x [T, I]) or act(gate) · up (gated, x [T, 2I] with the gate half first when gateFirst). */
export function mlpActRef(x: ArrayLike<number>, s: MlpActShape): Float64Array {
  const { tokens: T, intermediate: I } = s;
  const out = new Float64Array(T * I);
  const width = s.gated ? 2 * I : I;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < I; i++) {
      if (!s.gated) {
        out[t * I + i] = activationRef(s.activation, x[t * width + i] as number);
        continue;
      }
      const first = x[t * width + i] as number;
      const second = x[t * width + I + i] as number;
      const [gate, up] = s.gateFirst ? [first, second] : [second, first];
      out[t * I + i] = activationRef(s.activation, gate) * up;
    }
  }
  return out;
}
