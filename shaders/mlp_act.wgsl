// mlp_act: the activation between an MLP's two matmuls.
//
//   not gated:  out[t, i] = act(x[t, i])                         x [T, I]
//   gated:      out[t, i] = act(gate[t, i]) · up[t, i]           x [T, 2I] = [a | b] per row,
//               (gate, up) = (a, b) when gate_first, else (b, a)
//
//   act: 0 silu (v·σ(v)), 1 gelu (exact: ½v(1 + erf(v/√2))), 2 gelu_tanh (½v(1 + tanh(√(2/π)(v + 0.044715v³)))),
//        3 relu2 (max(v, 0)²). fp32; one thread per output element, rows along y (and z past the limit).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  tokens: u32,
  intermediate: u32,  // I
  gated: u32,
  gate_first: u32,
  act: u32,
  rows_per_z: u32,    // rows along y per z slice
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // [T, I] or [T, 2I]
@group(0) @binding(2) var<storage, read_write> output: array<f32>; // [T, I]

// sigmoid: shaders/sigmoid.wgsl, prepended by the op.

// erf: its Taylor series for |v| < 0.5 (relative error < 1e-7 there, where gelu needs it), and
// Abramowitz & Stegun 7.1.26 beyond (absolute error ≤ 1.5e-7).
fn erf_approx(v: f32) -> f32 {
  let z = abs(v);
  var r: f32;
  if (z < 0.5) {
    let z2 = z * z;
    // 2/√π (z − z³/3 + z⁵/10 − z⁷/42 + z⁹/216)
    r = 1.1283791670955126 * z * (1.0 + z2 * (-0.3333333333 + z2 * (0.1 + z2 * (-0.0238095238 + z2 * 0.0046296296))));
  } else {
    let k = 1.0 / (1.0 + 0.3275911 * z);
    let poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429))));
    r = 1.0 - poly * exp(-z * z);
  }
  return select(r, -r, v < 0.0);
}

fn stable_tanh(v: f32) -> f32 {
  let e = exp(-2.0 * abs(v));
  let r = (1.0 - e) / (1.0 + e);
  return select(r, -r, v < 0.0);
}

fn act(v: f32) -> f32 {
  switch (params.act) {
    case 0u: { return v * sigmoid(v); }
    case 1u: { return 0.5 * v * (1.0 + erf_approx(v * 0.7071067811865476)); }
    case 2u: { return 0.5 * v * (1.0 + stable_tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }
    default: { let r = max(v, 0.0); return r * r; }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let I = params.intermediate;
  let i = gid.x;
  let t = gid.z * params.rows_per_z + gid.y;
  if (i >= I || t >= params.tokens) {
    return;
  }
  if (params.gated == 0u) {
    output[t * I + i] = act(x[t * I + i]);
    return;
  }
  let a = x[t * 2u * I + i];
  let b = x[t * 2u * I + I + i];
  if (params.gate_first != 0u) {
    output[t * I + i] = act(a) * b;
  } else {
    output[t * I + i] = act(b) * a;
  }
}
