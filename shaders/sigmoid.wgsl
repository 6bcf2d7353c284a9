// σ(v) and silu(v) = v·σ(v), shared by every shader that gates or activates by them: the ops
// prepend this file to their shader (causal-conv1d.ts, gated-rmsnorm.ts, int8-gemm.ts,
// layer-grid.ts, mlp-act.ts, norm-matvec.ts, selective-scan.ts, ssd.ts). Only e^−|v| ≤ 1 is
// computed, so neither overflows for any v.

fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

fn silu(v: f32) -> f32 {
  return v * sigmoid(v);
}
