// gated_rmsnorm: Mamba-2's gated RMSNorm (norm_before_gate = false), one workgroup per
// (row, group of channels).
//
//   v[t, c]   = y[t, c] · silu(z[t, c])
//   out[t, c] = v[t, c] · inverseSqrt(mean over c's group of v² + eps) · weight[c]
//
// Symbols: rows = tokens (T), cols = d_inner (Di), groups of group_size consecutive channels
// (transformers: group_size = Di; mamba_ssm and llama.cpp: Di / n_groups). z is a strided view into
// in_proj's output [T, 2·Di + 2·G·N + H] (offset 0). fp32 throughout; the sum of squares is
// accumulated per thread, then reduced over the workgroup (workgroup_sum.wgsl, prepended by the op).

override WORKGROUP_SIZE: u32 = 256u;  // a power of two
override SG_SIZE: u32 = 0u;            // subgroup size when workgroup_sum may use subgroupAdd (app/kernels/subgroups.ts), else 0

struct Params {
  rows: u32,        // T
  cols: u32,        // Di
  group_size: u32,  // channels per norm group (divides Di)
  z_offset: u32,    // z[t, c] = z[z_offset + t·z_stride + c]
  z_stride: u32,
  eps: f32,         // layer_norm_epsilon (1e-5)
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;               // [T, Di] the scan's output
@group(0) @binding(2) var<storage, read> z: array<f32>;               // z [T, Di] as a strided view
@group(0) @binding(3) var<storage, read> weight: array<f32>;          // [Di] the mixer's norm weight
@group(0) @binding(4) var<storage, read_write> output: array<f32>;    // [T, Di] out_proj's input

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// silu: shaders/sigmoid.wgsl, prepended by the op.

fn gated(row: u32, c: u32) -> f32 {
  return y[row * params.cols + c] * silu(z[params.z_offset + row * params.z_stride + c]);
}

// Workgroups: (group, row, row fold): row = wg.z · num_workgroups.y + wg.y.
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.z * nwg.y + wg.y;
  if (row >= params.rows) {
    return;  // uniform across the workgroup
  }
  let first = wg.x * params.group_size;
  var sum_sq = 0.0;
  for (var i = lid; i < params.group_size; i += WORKGROUP_SIZE) {
    let v = gated(row, first + i);
    sum_sq += v * v;
  }
  let scale = inverseSqrt(workgroup_sum(sum_sq, lid) / f32(params.group_size) + params.eps);
  for (var i = lid; i < params.group_size; i += WORKGROUP_SIZE) {
    let c = first + i;
    output[row * params.cols + c] = gated(row, c) * scale * weight[c];
  }
}
