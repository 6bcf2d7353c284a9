// int8_reduce: the second pass of an int8 product whose K was split over workgroups
// (int8_gemm.wgsl `gemm`, int8_gemm_tc.wgsl with params.split ≠ 0): adds the splits' raw i32 sums
// (exact: the same i32 total as one workgroup's, in two's complement) and writes Y through
// int8_store.wgsl (appended: the row scales, the bias, the accumulate flag):
//
//   Y[m, n] = int8_store(m, n, Σ_z partials[z, m, n])      for m < M, n < N
//
// One invocation per output, workgroups folded into (x, y) under the per-dimension limit. The
// same bind group layout as the gemm kernels: binding 1 holds the partials [splits, M, N] (i32
// bits), binding 2 is unread.

struct Params {
  m: u32,       // M
  n: u32,       // N
  k: u32,       // splits
  offset: u32,  // Y's first element
  stride: u32,  // elements between Y's rows
  flags: u32,   // 1 accumulate into Y, 2 add bias
  split: u32,   // 0 (int8_out, unused here, reads it)
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<i32>;
@group(0) @binding(3) var<storage, read> sa: array<f32>;
@group(0) @binding(4) var<storage, read> sw: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;

const REDUCE_WORKGROUP: u32 = 256u;

@compute @workgroup_size(REDUCE_WORKGROUP)
fn reduce(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let e = g.y * groups.x * REDUCE_WORKGROUP + g.x;
  let total = params.m * params.n;
  if (e >= total) {
    return;
  }
  var acc = 0i;
  for (var z = 0u; z < params.k; z++) {
    acc += partials[z * total + e];
  }
  int8_store(e / params.n, e % params.n, acc);
}
