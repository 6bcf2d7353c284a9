// softplus for Δ = softplus(dt + dt_bias), shared by selective_scan.wgsl and ssd_scan.wgsl: the
// ops prepend this file to their shader (selective-scan.ts, ssd.ts).

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
