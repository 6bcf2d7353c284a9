// int8_tc_common: what the tensor-core kernels (int8_gemm_tc.wgsl, int8_gemm_big.wgsl) share,
// appended to each by app/kernels/int8-gemm.ts after its enable directives: the params and
// bindings (int8_reduce.wgsl's params are their first 32 bytes), the stages of K a workgroup takes
// (each kernel's BK: bytes of K a stage) and the reads of the codes (each kernel's KV: vec4 a
// staged row).

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
@group(0) @binding(1) var<storage, read> qa: array<vec4<i32>>;
@group(0) @binding(2) var<storage, read> qw: array<vec4<i32>>;
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

// The vec4 of qa / qw holding a stage's vec4 t (words 4·(t % KV) .. + 3 of tile
// row t / KV) for the tile's first row `row0`, rows of kv4 vec4, the stage at K byte k0.
fn code_index(row0: u32, kv4: u32, k0: u32, t: u32) -> u32 {
  return (row0 + t / KV) * kv4 + k0 / 16u + t % KV;
}

// qa's / qw's vec4 at code_index, clamped to the buffer (rows past a 128 tile's padding).
fn qa_at(i: u32) -> vec4<i32> {
  return qa[min(i, arrayLength(&qa) - 1u)];
}

fn qw_at(i: u32) -> vec4<i32> {
  return qw[min(i, arrayLength(&qw) - 1u)];
}
