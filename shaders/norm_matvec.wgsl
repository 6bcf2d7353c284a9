// norm_matvec: one decode token's Linear layer with the norm before it and the causal conv step
// after it fused in, so that a decode layer needs fewer dispatches (app/kernels/norm-matvec.ts).
//
//   v = prologue(x)                                          [I]
//     NORM = 0:  v = x
//     NORM = 1:  v = x · rsqrt(mean(x²) + eps) · g            (the block norm / norm_f: RMSNorm)
//     NORM = 2:  u = x · silu(z);  v = u · rsqrt(mean_group(u²) + eps) · g
//                                                            (Mamba-2's gated RMSNorm, over groups
//                                                             of group_size consecutive channels)
//   r[o] = Σ_i W[o, i] · v[i]                                [O]
//   for o in [conv_start, conv_start + conv_channels), c = o − conv_start (CONV_K > 0):
//     r[o] = silu(conv_b[c] + Σ_{k<K-1} conv_w[c, k] · conv_state[c, k] + conv_w[c, K-1] · r[o])
//     conv_state[c, ·] shifts left by one and takes r[o] (before the conv) as its newest input
//   y[o] = r[o]   (+ y[o] when accumulate = 1: the residual add of out_proj)
//
// Symbols: I = in_features (D for in_proj and the LM head, Di for Mamba-2's out_proj), O =
// out_features, K = CONV_K (d_conv). x and z are read at element offsets x_offset and z_offset.
// W is [O, I] row-major in any format of app/kernels/weight-format.ts (W_FORMAT, decoded by
// shaders/weights.wgsl, which app/kernels/norm-matvec.ts prepends): fp32 and f16/bf16 rows are read
// 16 bytes at a time, so I % 4 = 0 (I % 8 = 0 for halves); ggml block formats 32 elements at a
// time (w_chunk), so I % 32 = 0. conv holds conv1d.weight [C, K] then its bias [C] (zeros when
// the checkpoint has none). fp32 arithmetic throughout.
//
// Threads: every workgroup first writes v into workgroup memory (I ≤ MAX_IN; the norm's sums are
// recomputed by each workgroup — I floats), then takes blocks of WORKGROUP_SIZE / THREADS_PER_ROW
// output rows (block = workgroup index, + number of workgroups, …: the op launches at most a
// fixed number of workgroups so the prologue is paid a bounded number of times, e.g. for the LM
// head's 50k rows). THREADS_PER_ROW threads per row stride over I and reduce through workgroup
// memory; lane 0 of a row runs the epilogue. The conv state of channel c is read and written by
// that one thread only.

override WORKGROUP_SIZE: u32 = 256u;
override THREADS_PER_ROW: u32 = 32u;  // a power of two dividing WORKGROUP_SIZE
override NORM: u32 = 0u;              // 0 none, 1 RMSNorm, 2 gated RMSNorm
override CONV_K: u32 = 0u;            // 0: no conv epilogue; else d_conv (2..8)

override MAX_IN: u32 = 3072u;         // largest I, a multiple of 4 (workgroup memory: 4·MAX_IN bytes; app/kernels/norm-matvec.ts sets it to I rounded up)
const MAX_GROUPS: u32 = 8u;           // most norm groups (NORM = 2)

struct Params {
  in_features: u32,   // I
  out_features: u32,  // O
  x_offset: u32,      // elements
  z_offset: u32,      // elements (NORM = 2)
  group_size: u32,    // channels per norm group (I for NORM = 1)
  conv_start: u32,    // first output that goes through the conv
  conv_channels: u32, // C
  accumulate: u32,    // 1: y[o] += r[o]
  eps: f32,
  y_offset: u32,      // elements: y[y_offset + o] (a part of a split matrix writes its rows' range)
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;                // [I] at x_offset
@group(0) @binding(2) var<storage, read> z: array<f32>;                // [I] at z_offset (NORM = 2; any buffer otherwise)
@group(0) @binding(3) var<storage, read> g: array<f32>;                // [I] norm weight (NORM > 0; any buffer otherwise)
@group(0) @binding(4) var<storage, read> weight4: array<vec4<u32>>;    // [O, I] in W_FORMAT, 16 bytes at a time
@group(0) @binding(5) var<storage, read> conv: array<f32>;             // [C, K] then [C] (CONV_K > 0; any buffer otherwise)
@group(0) @binding(6) var<storage, read_write> conv_state: array<f32>; // [C, K-1] (CONV_K > 0; a placeholder otherwise)
@group(0) @binding(7) var<storage, read_write> y: array<f32>;          // [O] at y_offset

var<workgroup> v4: array<vec4<f32>, MAX_IN / 4u>;
var<workgroup> partial: array<f32, WORKGROUP_SIZE>;
var<workgroup> scale: array<f32, MAX_GROUPS>;

fn silu(a: f32) -> f32 {
  let e = exp(-abs(a));
  return a * select(e / (1.0 + e), 1.0 / (1.0 + e), a >= 0.0);
}

/** Word i of W (for weights.wgsl). */
fn w_word(i: u32) -> u32 {
  return weight4[i >> 2u][i & 3u];
}

fn v_at(i: u32) -> f32 {
  return v4[i / 4u][i % 4u];
}

/** Sum over the workgroup of `value` (every thread gets it). */
fn workgroup_sum(value: f32, lid: u32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  prologue(lid);
  let rows_per_block = WORKGROUP_SIZE / THREADS_PER_ROW;
  let blocks = (params.out_features + rows_per_block - 1u) / rows_per_block;
  for (var block = wg.x; block < blocks; block += groups.x) {
    row_block(block, lid);
  }
}

fn prologue(lid: u32) {
  let I = params.in_features;
  // Prologue: v into workgroup memory.
  for (var i = lid; i < I; i += WORKGROUP_SIZE) {
    var a = x[params.x_offset + i];
    if (NORM == 2u) {
      a *= silu(z[params.z_offset + i]);
    }
    v4[i / 4u][i % 4u] = a;
  }
  workgroupBarrier();
  if (NORM > 0u) {
    let gs = params.group_size;
    let n_groups = I / gs;
    for (var grp = 0u; grp < n_groups; grp++) {
      var sq = 0.0;
      for (var i = grp * gs + lid; i < (grp + 1u) * gs; i += WORKGROUP_SIZE) {
        let a = v_at(i);
        sq += a * a;
      }
      let total = workgroup_sum(sq, lid);
      if (lid == 0u) {
        scale[grp] = inverseSqrt(total / f32(gs) + params.eps);
      }
    }
    workgroupBarrier();
    for (var i = lid; i < I; i += WORKGROUP_SIZE) {
      v4[i / 4u][i % 4u] = v_at(i) * scale[i / gs] * g[i];
    }
    workgroupBarrier();
  }
}

/** Rows block·(WORKGROUP_SIZE / THREADS_PER_ROW) …: THREADS_PER_ROW threads per output row. */
fn row_block(block: u32, lid: u32) {
  let I = params.in_features;
  let o = block * (WORKGROUP_SIZE / THREADS_PER_ROW) + lid / THREADS_PER_ROW;
  let lane = lid % THREADS_PER_ROW;
  var sum = 0.0;
  if (o < params.out_features) {
    if (W_FORMAT == WF_F16 || W_FORMAT == WF_BF16) {
      let I8 = I / 8u;
      let w_row = o * I8;
      for (var i = lane; i < I8; i += THREADS_PER_ROW) {
        let w = halves8(weight4[w_row + i]);
        sum += dot(w[0], v4[2u * i]) + dot(w[1], v4[2u * i + 1u]);
      }
    } else if (W_FORMAT >= WF_Q8_0) {
      let chunks = I / 32u;
      for (var c = lane; c < chunks; c += THREADS_PER_ROW) {
        let w = w_chunk_of(o * I, c);
        let runs = chunk_runs(c) / 4u;
        for (var k = 0u; k < 4u; k++) {
          sum += dot(w[k], v4[runs.x + k]) + dot(w[4u + k], v4[runs.y + k]);
        }
      }
    } else {
      let I4 = I / 4u;
      let w_row = o * I4;
      for (var i = lane; i < I4; i += THREADS_PER_ROW) {
        sum += dot(bitcast<vec4<f32>>(weight4[w_row + i]), v4[i]);
      }
    }
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = THREADS_PER_ROW / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[lid];
  workgroupBarrier();  // partial is reused by the next block
  if (lane == 0u && o < params.out_features) {
    epilogue(o, total);
  }
}

fn epilogue(o: u32, total: f32) {
  var r = total;
  if (CONV_K > 0u && o >= params.conv_start && o < params.conv_start + params.conv_channels) {
    let c = o - params.conv_start;
    let K = CONV_K;
    let s = c * (K - 1u);
    var acc = conv[params.conv_channels * K + c] + conv[c * K + K - 1u] * r;
    for (var k = 0u; k + 1u < K; k++) {
      let old = conv_state[s + k];
      acc += conv[c * K + k] * old;
      // Shift: slot k takes slot k + 1 (read before it is overwritten), the last slot takes r.
      if (k + 2u < K) {
        conv_state[s + k] = conv_state[s + k + 1u];
      } else {
        conv_state[s + k] = r;
      }
    }
    r = silu(acc);
  }
  if (params.accumulate != 0u) {
    r += y[params.y_offset + o];
  }
  y[params.y_offset + o] = r;
}
