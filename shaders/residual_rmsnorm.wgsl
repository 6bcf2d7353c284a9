// residual_rmsnorm: the residual add fused with RMSNorm (one workgroup per row).
//
//   residual[r, :] = residual[r, :] + s·hidden[r, :]     (when has_residual = 1; else residual = s·hidden)
//   out[r, :]      = residual[r, :] * inverseSqrt(mean(residual[r, :]^2) + eps) * weight[:] * o
// s = hidden_scale, o = out_scale: 1 except for models with multipliers (Granite's embedding and
// residual multipliers; its logits_scaling folded into the final norm as o = 1 / logits_scaling).
//
// Symbols: rows = tokens (T), cols = d_model (D). fp32 throughout; the sum of squares is
// accumulated per thread, then reduced over the workgroup (workgroup_sum.wgsl, prepended by the op:
// subgroupAdd and one exchange where subgroups allow, else a tree in workgroup memory).

override WORKGROUP_SIZE: u32 = 256u;
override SG_SIZE: u32 = 0u;            // subgroup size when workgroup_sum may use subgroupAdd (app/kernels/subgroups.ts), else 0

struct Params {
  rows: u32,          // T
  cols: u32,          // D
  eps: f32,           // RMSNorm epsilon (config layer_norm_epsilon, 1e-5)
  has_residual: u32,  // 0 for the first layer: residual := hidden
  hidden_scale: f32,  // s
  out_scale: f32,     // o
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> hidden: array<f32>;          // [T, D] the block's output (or the embedding)
@group(0) @binding(2) var<storage, read_write> residual: array<f32>;  // [T, D] in: running residual; out: residual + hidden
@group(0) @binding(3) var<storage, read> weight: array<f32>;          // [D] norm weight
@group(0) @binding(4) var<storage, read_write> output: array<f32>;    // [T, D] normalized residual

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x;
  if (row >= params.rows) {
    return;  // uniform across the workgroup: the whole group leaves together
  }
  let base = row * params.cols;
  var sum_sq = 0.0;
  for (var c = lid; c < params.cols; c += WORKGROUP_SIZE) {
    var value = hidden[base + c] * params.hidden_scale;
    if (params.has_residual != 0u) {
      value += residual[base + c];
    }
    residual[base + c] = value;
    sum_sq += value * value;
  }
  let scale = inverseSqrt(workgroup_sum(sum_sq, lid) / f32(params.cols) + params.eps);
  for (var c = lid; c < params.cols; c += WORKGROUP_SIZE) {
    output[base + c] = residual[base + c] * scale * weight[c] * params.out_scale;
  }
}
