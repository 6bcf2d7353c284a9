// softplus for Δ = softplus(dt + dt_bias), and the write gate's 1 − exp(Δ·A), shared by
// selective_scan.wgsl, ssd_scan.wgsl and trace_summary.wgsl: the ops prepend this file to their
// shader (selective-scan.ts, ssd.ts, trace-summary.ts).

// log(1 + u) for u in [0, 1]: a series where log(1 + u) would lose digits to rounding.
fn log1p_unit(u: f32) -> f32 {
  if (u < 0.25) {
    return u * (1.0 - u * (1.0 / 2.0 - u * (1.0 / 3.0 - u * (1.0 / 4.0 - u * (1.0 / 5.0 - u * (1.0 / 6.0
      - u * (1.0 / 7.0 - u * (1.0 / 8.0 - u * (1.0 / 9.0 - u * (1.0 / 10.0 - u / 11.0))))))))));
  }
  return log(1.0 + u);
}

// softplus(v) = log(1 + e^v) = max(v, 0) + log(1 + e^−|v|); v itself above 20. Gives 0 (not NaN)
// when e^−|v| underflows.
fn softplus(v: f32) -> f32 {
  if (v > 20.0) {
    return v;
  }
  return max(v, 0.0) + log1p_unit(exp(-abs(v)));
}

// 1 − exp(x) for x ≤ 0, without cancellation near 0.
fn one_minus_exp(x: f32) -> f32 {
  if (x > -0.5) {
    // −(x + x²/2! + … + x⁹/9!), Horner.
    var s = 1.0 / 362880.0;
    s = 1.0 / 40320.0 + x * s;
    s = 1.0 / 5040.0 + x * s;
    s = 1.0 / 720.0 + x * s;
    s = 1.0 / 120.0 + x * s;
    s = 1.0 / 24.0 + x * s;
    s = 1.0 / 6.0 + x * s;
    s = 0.5 + x * s;
    s = 1.0 + x * s;
    return -x * s;
  }
  return 1.0 - exp(x);
}
