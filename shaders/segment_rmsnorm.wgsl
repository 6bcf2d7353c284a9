// segment_rmsnorm: a weightless RMS norm over each of up to 3 contiguous column segments of every
// row, in place (one workgroup per (segment, row)). Falcon-Mamba normalizes x_proj's output this
// way before dt_proj and the scan: segments dt_r [0, R), B [R, R+N), C [R+N, R+2N).
//
//   for s in segments, columns c in [bounds[s], bounds[s+1]):
//     x[r, c] = x[r, c] * inverseSqrt(mean over the segment of x[r, :]^2 + eps)
//
// fp32 throughout (transformers' rms_forward casts to float32 too); the sum of squares is
// accumulated per thread, then reduced over the workgroup (workgroup_sum.wgsl, prepended by the op). In place is safe: every thread reads
// its columns, the workgroup reduces, then every thread rescales only the columns it read.

override WORKGROUP_SIZE: u32 = 64u;
override SG_SIZE: u32 = 0u;            // subgroup size when workgroup_sum may use subgroupAdd (app/kernels/subgroups.ts), else 0

struct Params {
  rows: u32,           // T
  row_stride: u32,     // elements between rows (R + 2N for x_proj's output)
  eps: f32,            // mixer_rms_eps (1e-6 in transformers' Falcon-Mamba; GGUF: the layer norm eps)
  _pad: u32,
  bounds: vec4<u32>,   // segment s = columns [bounds[s], bounds[s+1]) of a row; dispatch x = segment count (≤ 3)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;  // [T, row_stride], the segments normalized in place

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let segment = wg.x;
  let row = wg.y;
  if (row >= params.rows || segment >= 3u) {
    return;  // uniform across the workgroup: the whole group leaves together
  }
  let start = row * params.row_stride + params.bounds[segment];
  let width = params.bounds[segment + 1u] - params.bounds[segment];
  var sum_sq = 0.0;
  for (var c = lid; c < width; c += WORKGROUP_SIZE) {
    let v = x[start + c];
    sum_sq += v * v;
  }
  let scale = inverseSqrt(workgroup_sum(sum_sq, lid) / f32(width) + params.eps);
  for (var c = lid; c < width; c += WORKGROUP_SIZE) {
    x[start + c] = x[start + c] * scale;
  }
}
