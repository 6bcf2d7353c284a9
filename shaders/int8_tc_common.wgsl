// int8_tc_common: what the tensor-core kernels (int8_gemm_tc.wgsl, int8_gemm_big.wgsl,
// int8_gemm_direct.wgsl) share, appended to each by app/kernels/int8-gemm.ts after its enable
// directives: the params and every binding but the codes' (int8_reduce.wgsl's params are their
// first 32 bytes), and the stages of K a workgroup takes (each kernel's BK: bytes of K a stage).
// The codes qa and qw are bound by int8_tc_codes.wgsl as vec4 for the staging kernels, by
// int8_gemm_direct.wgsl as i32 words (what its fragment loads read), both at bindings 1 and 2.

struct Params {
  m: u32,       // M
  n: u32,       // N
  k: u32,       // K_pad in bytes (a multiple of 64)
  offset: u32,  // Y's first element
  stride: u32,  // elements between Y's rows
  flags: u32,   // 1 accumulate into Y, 2 add bias
  split: u32,   // K bytes a split takes (a multiple of 64; workgroup_id.z the split), 0: not split (int8_store.wgsl int8_out)
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> sa: array<f32>;
@group(0) @binding(4) var<storage, read> sw: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;  // [N], read with flags & 2

// The stages [first, end) of K (BK bytes each) this workgroup takes: all of them, or split z's.
fn stage_range(z: u32) -> vec2<u32> {
  let stages = params.k / BK;
  if (params.split == 0u) {
    return vec2<u32>(0u, stages);
  }
  let first = min(z * (params.split / BK), stages);
  return vec2<u32>(first, min(first + params.split / BK, stages));
}
