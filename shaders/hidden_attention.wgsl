// hidden_attention: Mamba-1's implicit attention matrix of one layer (Ali et al. 2024).
//
//   α[i, j] = Σ_n C[i, n] · exp(A[d, n] · (S[i, d] − S[j, d])) · Δ[j, d] · B[j, n]   for j ≤ i
//   α[i, j] = 0                                                                       for j > i
//   S[t, d] = Σ_{s ≤ t} Δ[s, d]          (prefix sum over tokens)
//   A[d, n] = −exp(A_log[d, n])
//
// for one channel d (channel_start = d, channel_end = d + 1, inv_channels = 1), or the mean over
// channels (channel_start = 0, channel_end = Di, inv_channels = 1 / Di).
//
// Entry points, run in this order inside one compute pass:
//   prefix_sums  one thread per channel d: S[:, d] as hi and lo (sequential over tokens) and A[d, :], into `scratch`.
//   full_matrix  one thread per (i, j) in TILE × TILE tiles: rows row .. row_end − 1 of α [T, T]
//                (threads above the diagonal only write zeros). The host runs the rows in bands,
//                one submit each, so that long work reports progress and can stop between them.
//   single_row   one thread per j: α[row, :] into `alpha` as [T] (zeros for j > row).
// full_matrix and single_row share alpha_at(), so a row equals the matching row of the matrix.
//
// Numerics: fp32, but S is kept as an unevaluated sum hi + lo (TwoSum at every token), so that
// S_i − S_j = (hi_i − hi_j) + (lo_i − lo_j) is as accurate as the gap itself, not as S: with a plain
// fp32 prefix sum the gap's error was ulp(S_i) ≈ S_i · 6e-8, times |A| ≤ e^A_log in the exponent
// (over 129 tokens of Δ up to ~10 and |A| up to 8: ~1e-4 relative in a term, 4e-4 in α after the
// signed sum over n). Δ ≥ 0 makes S monotone, so the gap is ≥ 0 and A · gap ≤ 0: only values ≤ 0
// are exponentiated (the max(…, 0) guards it anyway).
// Symbols: T tokens, Di d_inner, N d_state.

override TILE: u32 = 8u;               // full_matrix: TILE × TILE threads per workgroup
override WORKGROUP_SIZE: u32 = 64u;    // prefix_sums and single_row: threads per workgroup

struct Params {
  tokens: u32,         // T
  d_inner: u32,        // Di
  d_state: u32,        // N
  row: u32,            // single_row: the row i (< T); full_matrix: the first row of the band
  channel_start: u32,  // first channel summed
  channel_end: u32,    // one past the last channel summed
  inv_channels: f32,   // 1 / (channel_end − channel_start)
  prefix_groups_x: u32,  // prefix_sums: workgroups along x (a linear count folded into 2-D)
  row_groups_x: u32,     // single_row: workgroups along x (likewise)
  row_end: u32,          // full_matrix: one past the last row of the band (≤ T)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> delta: array<f32>;           // [T, Di] Δ (after softplus, ≥ 0)
@group(0) @binding(2) var<storage, read> b_in: array<f32>;            // [T, N] B
@group(0) @binding(3) var<storage, read> c_in: array<f32>;            // [T, N] C
@group(0) @binding(4) var<storage, read> a_log: array<f32>;           // [Di, N] A_log (A = −exp(A_log))
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;   // [T, Di] S's hi, [T, Di] its lo, then [Di, N] A
@group(0) @binding(6) var<storage, read_write> alpha: array<f32>;     // full_matrix: [T, T]; single_row: [T]

@compute @workgroup_size(WORKGROUP_SIZE)
fn prefix_sums(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let d = (wg.y * params.prefix_groups_x + wg.x) * WORKGROUP_SIZE + lid;
  let di = params.d_inner;
  if (d >= di) {
    return;
  }
  let lo_base = params.tokens * di;
  var hi = 0.0;
  var lo = 0.0;
  for (var t = 0u; t < params.tokens; t++) {
    // TwoSum: hi + x = s + e exactly; the rounding errors e accumulate in lo.
    let x = delta[t * di + d];
    let s = hi + x;
    let bp = s - hi;
    let e = (hi - (s - bp)) + (x - bp);
    hi = s;
    lo += e;
    scratch[t * di + d] = hi;
    scratch[lo_base + t * di + d] = lo;
  }
  let a_base = 2u * params.tokens * di + d * params.d_state;
  for (var n = 0u; n < params.d_state; n++) {
    scratch[a_base + n] = -exp(a_log[d * params.d_state + n]);
  }
}

// α[i, j] for j ≤ i < T, averaged over channel_start..channel_end − 1.
fn alpha_at(i: u32, j: u32) -> f32 {
  let di = params.d_inner;
  let ns = params.d_state;
  let lo_base = params.tokens * di;
  let a_base = 2u * params.tokens * di;
  var total = 0.0;
  for (var d = params.channel_start; d < params.channel_end; d++) {
    // S_i − S_j ≥ 0, from the two parts
    let gap = max((scratch[i * di + d] - scratch[j * di + d]) + (scratch[lo_base + i * di + d] - scratch[lo_base + j * di + d]), 0.0);
    var acc = 0.0;
    for (var n = 0u; n < ns; n++) {
      acc += c_in[i * ns + n] * exp(scratch[a_base + d * ns + n] * gap) * b_in[j * ns + n];
    }
    total += acc * delta[j * di + d];
  }
  return total * params.inv_channels;
}

@compute @workgroup_size(TILE, TILE)
fn full_matrix(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let i = params.row + gid.y;
  let t = params.tokens;
  if (i >= params.row_end || i >= t || j >= t) {
    return;
  }
  if (j > i) {
    alpha[i * t + j] = 0.0;
    return;
  }
  alpha[i * t + j] = alpha_at(i, j);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn single_row(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = (wg.y * params.row_groups_x + wg.x) * WORKGROUP_SIZE + lid;
  if (j >= params.tokens) {
    return;
  }
  let i = params.row;
  if (j > i) {
    alpha[j] = 0.0;
    return;
  }
  alpha[j] = alpha_at(i, j);
}
