// norm_matvec: one decode token's Linear layer with the norm before it and the causal conv step
// after it fused in, so that a decode layer needs fewer dispatches (app/kernels/norm-matvec.ts).
//
//   v = prologue(x)                                          [I]
//     NORM = 0:  v = x
//     NORM = 1:  v = x · rsqrt(mean(x²) + eps) · g            (the block norm / norm_f: RMSNorm)
//     NORM = 2:  u = x · silu(z);  v = u · rsqrt(mean_group(u²) + eps) · g
//                                                            (Mamba-2's gated RMSNorm, over groups
//                                                             of group_size consecutive channels)
//     NORM = 3:  v = x · rsqrt(Σ_k sums[k] / I + eps)        (RMSNorm presummed: x already holds
//                                                             u · g and the kernel that wrote it
//                                                             left Σ u² in params.sums pieces,
//                                                             bound at binding 2: ssd_scan.wgsl's
//                                                             step with NORM_SUMS)
//   r[o] = Σ_i W[o, i] · v[i]                                [O]
//   for o in [conv_start, conv_start + conv_channels), c = o − conv_start (CONV_K > 0):
//     r[o] = silu(conv_b[c] + Σ_{k<K-1} conv_w[c, k] · conv_state[c, k] + conv_w[c, K-1] · r[o])
//     conv_state[c, ·] shifts left by one and takes r[o] (before the conv) as its newest input
//   y[o] = r[o]   (+ y[o] when accumulate = 1: the residual add of out_proj)
//   XPROJ (Mamba-1's x_proj folded in, conv_start = 0): for each block b of rows holding conv
//   channels c ∈ [c0, c1) (their outputs r[c] after the conv),
//     xp_out[j, b] = Σ_{c0 ≤ c < c1} xp_w[j, c] · r[c]        j < xp_outputs (R + 2N)
//   (rows of the blocks rounded up to 4: app/kernels/norm-matvec.ts xProjPartialLayout)
//   partial sums of x_proj(xc) over each block's channels, which the decode step adds
//   (selective_scan.wgsl step_xp) instead of a dispatch of its own.
//
// Symbols: I = in_features (D for in_proj and the LM head, Di for Mamba-2's out_proj), O =
// out_features, K = CONV_K (d_conv). x and z are read at element offsets x_offset and z_offset.
// W is [O, I] row-major in any format of app/kernels/weight-format.ts (W_FORMAT, decoded by
// shaders/weights.wgsl, which app/kernels/norm-matvec.ts prepends): fp32 and f16/bf16 rows are read
// 16 bytes at a time, so I % 4 = 0 (I % 8 = 0 for halves); ggml block formats 32 elements at a
// time (w_chunk_of), so I % 32 = 0, except Q8_0 and Q4_K, read as the halves are: 16-byte units
// of codes (16 weights; Q4_K 32) with their block's scales (unit_at, q4k_dot). conv holds conv1d.weight [C, K] then its bias [C] (zeros when
// the checkpoint has none). fp32 arithmetic throughout.
//
// Threads: every workgroup first writes v into workgroup memory (I ≤ MAX_IN; the norm's sum of
// squares is recomputed by each workgroup — I floats), then takes blocks of output rows (block =
// workgroup index, + number of workgroups, …: the op launches at most a fixed number of
// workgroups so the prologue is paid a bounded number of times, e.g. for the LM head's 50k rows).
// A block is WORKGROUP_SIZE / THREADS_PER_ROW groups of THREADS_PER_ROW threads; each group takes
// ROWS consecutive rows at once (their weights are independent loads in flight, and each v load
// serves ROWS rows) and strides over I with UNROLL 16-byte loads per row before it does the
// arithmetic (fp32 and halves). Each row's partial sums are added with subgroupAdd where the
// device allows (SG_SIZE > 0: app/kernels/subgroups.ts), else through a tree in workgroup memory.
// Lane r < ROWS of a group runs the epilogue of its row r. The conv state of channel c is read
// and written by that one thread only. That lane loads its epilogue's inputs that do not depend on
// the row's sum (the conv's weights, bias and state for K ≤ 4, y[o] where it accumulates) before
// the row's weights (PREFETCH, early_inputs), so a decode layer's chain of dependent memory round
// trips is one shorter (app/gpu/context.ts KernelTuning.decodeLoads turns it off to compare).
//
// With one norm group (NORM = 1, or NORM = 2 with group_size = I: DEFER_SCALE = 1) v holds the
// unscaled x·g (or x·silu(z)·g) and the norm's scale multiplies each row's sum instead (W·(s·u) =
// s·(W·u)), so the prologue's one reduction is the only one before the rows. Several groups: v is
// scaled in the prologue. X_DIRECT with NORM = 1 (the op's choice: one block of rows per
// workgroup, formats read in 16-byte units) has no prologue either: v = x·g read per use from
// global memory, Σx² added by the workgroup after its first block's rows (x is in cache by then),
// its scale on the row sums. NORM = 3 has no prologue: x is read in place (X_DIRECT), each thread
// loads its share of the sums before the rows and the workgroup adds them after its first block's
// loads (so their latency hides behind the weights'); the scale multiplies the row sums.
//
// XPROJ: the op's prefix declares xp_w (x_proj.weight [xp_outputs, C], f32 or packed halves:
// xp_w_at) at binding 8 and xp_out [xp_outputs, blocks rounded up to 4] at binding 9; the epilogue lanes leave
// their conv outputs in workgroup memory (xproj_keep), and after each block's rows the workgroup
// writes that block's partial sums (xproj_block: a thread an output, over the block's channels).
// Without XPROJ both are empty functions and nothing is bound there.

override WORKGROUP_SIZE: u32 = 256u;
override THREADS_PER_ROW: u32 = 32u;  // a power of two dividing WORKGROUP_SIZE
override ROWS: u32 = 1u;              // rows per group of threads, 1..MAX_ROWS
override UNROLL: u32 = 1u;            // 16-byte loads per row in flight per thread (fp32, halves, Q8_0), 1..MAX_UNROLL
override NORM: u32 = 0u;              // 0 none, 1 RMSNorm, 2 gated RMSNorm, 3 RMSNorm presummed (X_DIRECT)
override DEFER_SCALE: u32 = 0u;       // 1: one norm group, its scale applied to the row sums
override CONV_K: u32 = 0u;            // 0: no conv epilogue; else d_conv (2..8)
override SG_SIZE: u32 = 0u;           // subgroup size when the sums use subgroupAdd (app/kernels/subgroups.ts), else 0
override PREFETCH: bool = true;       // the epilogue's inputs loaded before the rows, else in the epilogue (Early; CONV_K ≤ 4 for the conv's)

override MAX_IN: u32 = 3072u;         // largest I, a multiple of 4 (workgroup memory: 4·MAX_IN bytes; app/kernels/norm-matvec.ts sets it to I rounded up)
const MAX_GROUPS: u32 = 8u;           // most norm groups (NORM = 2)
const MAX_ROWS: u32 = 4u;
const MAX_UNROLL: u32 = 4u;

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
  sums: u32,          // NORM = 3: pieces of Σ u² at binding 2
  xp_outputs: u32,    // XPROJ: x_proj's outputs (R + 2N)
}

@group(0) @binding(0) var<uniform> params: Params;
// binding 1, x [I] at x_offset: declared by the op's prefix (app/kernels/norm-matvec.ts), as
// array<f32> read through x_at(i) into v (the prologue), or, with X_DIRECT (no norm, RMSNorm in
// place or presummed; x_offset % 4 = 0), as array<vec4<f32>> read by v_word(j) in place of v (no
// prologue, no workgroup memory).
@group(0) @binding(2) var<storage, read> z: array<f32>;                // [I] at z_offset (NORM = 2), the pieces of Σ u² (NORM = 3); any buffer otherwise
@group(0) @binding(3) var<storage, read> g4: array<vec4<f32>>;         // [I] norm weight (NORM = 1, 2; any buffer otherwise)
@group(0) @binding(4) var<storage, read> weight4: array<vec4<u32>>;    // [O, I] in W_FORMAT, 16 bytes at a time
@group(0) @binding(5) var<storage, read> conv: array<f32>;             // [C, K] then [C] (CONV_K > 0; any buffer otherwise)
@group(0) @binding(6) var<storage, read_write> conv_state: array<f32>; // [C, K-1] (CONV_K > 0; a placeholder otherwise)
@group(0) @binding(7) var<storage, read_write> y: array<f32>;          // [O] at y_offset

var<workgroup> v4: array<vec4<f32>, MAX_IN / 4u>;
var<workgroup> partial: array<f32, WORKGROUP_SIZE>;
var<workgroup> scale: array<f32, MAX_GROUPS>;

// silu: shaders/sigmoid.wgsl, prepended by the op.

/** Word i of W (for weights.wgsl). */
fn w_word(i: u32) -> u32 {
  return weight4[i >> 2u][i & 3u];
}

/** Words 4q .. 4q + 3 of W (for weights.wgsl). */
fn w_quad(q: u32) -> vec4<u32> {
  return weight4[q];
}

fn g_at(i: u32) -> f32 {
  return g4[i >> 2u][i & 3u];
}

fn v_at(i: u32) -> f32 {
  return v4[i / 4u][i % 4u];
}

/** v's elements 4j .. 4j + 3. */
fn v_word(j: u32) -> vec4<f32> {
  if (X_DIRECT && NORM == 1u) {
    return x_word(j) * g4[j];  // RMSNorm read in place: x·g (the scale multiplies the row sums)
  }
  if (X_DIRECT) {
    return x_word(j);
  }
  return v4[j];
}

// workgroup_sum: shaders/workgroup_sum.wgsl, prepended by the op.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  var row_scale = 1.0;
  var held = vec4<f32>(0.0);
  if (NORM == 3u) {
    held = sums_held(lid);
  } else if (!X_DIRECT) {
    row_scale = prologue(lid);
  }
  let rows_per_block = (WORKGROUP_SIZE / THREADS_PER_ROW) * ROWS;
  let blocks = (params.out_features + rows_per_block - 1u) / rows_per_block;
  for (var block = wg.x; block < blocks; block += groups.x) {
    row_block(block, lid, &row_scale, held, block == wg.x);
    xproj_block(block, rows_per_block, lid);
  }
}

/** NORM = 3: this thread's first four pieces of Σ u² (pieces lid, lid + WORKGROUP_SIZE, …), loaded only. */
fn sums_held(lid: u32) -> vec4<f32> {
  var held = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    let i = lid + k * WORKGROUP_SIZE;
    if (i < params.sums) {
      held[k] = z[i];
    }
  }
  return held;
}

/** NORM = 3: rsqrt(Σ u² / I + eps) from the held pieces and any beyond the first 4 · WORKGROUP_SIZE. */
fn presummed_scale(held: vec4<f32>, lid: u32) -> f32 {
  var s = held.x + held.y + held.z + held.w;
  for (var i = lid + 4u * WORKGROUP_SIZE; i < params.sums; i += WORKGROUP_SIZE) {
    s += z[i];
  }
  let total = workgroup_sum(s, lid);
  return inverseSqrt(total / f32(params.in_features) + params.eps);
}

/** Writes v into workgroup memory; returns the scale of the row sums (DEFER_SCALE), else 1. */
fn prologue(lid: u32) -> f32 {
  let I = params.in_features;
  let defer = NORM > 0u && DEFER_SCALE == 1u;
  var sq = 0.0;
  for (var i = lid; i < I; i += WORKGROUP_SIZE) {
    var a = x_at(params.x_offset + i);
    if (NORM == 2u) {
      a *= silu(z[params.z_offset + i]);
    }
    if (defer) {
      sq += a * a;
      a *= g_at(i);
    }
    v4[i / 4u][i % 4u] = a;
  }
  if (defer) {
    // One reduction; its barriers also make v visible to the whole workgroup.
    let total = workgroup_sum(sq, lid);
    return inverseSqrt(total / f32(I) + params.eps);
  }
  workgroupBarrier();
  if (NORM > 0u) {
    let gs = params.group_size;
    let n_groups = I / gs;
    for (var grp = 0u; grp < n_groups; grp++) {
      var gsq = 0.0;
      for (var i = grp * gs + lid; i < (grp + 1u) * gs; i += WORKGROUP_SIZE) {
        let a = v_at(i);
        gsq += a * a;
      }
      let total = workgroup_sum(gsq, lid);
      if (lid == 0u) {
        scale[grp] = inverseSqrt(total / f32(gs) + params.eps);
      }
    }
    workgroupBarrier();
    for (var i = lid; i < I; i += WORKGROUP_SIZE) {
      v4[i / 4u][i % 4u] = v_at(i) * scale[i / gs] * g_at(i);
    }
    workgroupBarrier();
  }
  return 1.0;
}

/** The 16-byte word j of a row (fp32: 4 values, halves: 8) times v, summed. */
fn dot16(w: vec4<u32>, j: u32) -> f32 {
  if (W_FORMAT == WF_F16 || W_FORMAT == WF_BF16) {
    let h = halves8(w);
    return dot(h[0], v_word(2u * j)) + dot(h[1], v_word(2u * j + 1u));
  }
  return dot(bitcast<vec4<f32>>(w), v_word(j));
}

/**
 * 16-byte unit j of a row: 4 fp32 weights, 8 halves, or 16 Q8_0 codes with their block's d
 * (Q8_0's groups: 16 bytes of 8 d's, then 8 × 32 codes; weight-format.ts).
 */
struct Unit {
  q: vec4<u32>,
  d: f32,
}

fn units_per_row() -> u32 {
  switch W_FORMAT {
    case WF_F32: { return params.in_features / 4u; }
    case WF_Q8_0: { return params.in_features / 16u; }
    default: { return params.in_features / 8u; }
  }
}

fn unit_at(row: u32, j: u32) -> Unit {
  if (W_FORMAT == WF_Q8_0) {
    let b = row * (params.in_features / 32u) + (j >> 1u);  // the block
    return Unit(w_quad_at(q_field(b, 16u, 32u) + 16u * (j & 1u)), w_half(q_field(b, 0u, 2u)));
  }
  return Unit(weight4[row * units_per_row() + j], 1.0);
}

/** Unit j's weights times v's elements from 4j (fp32), 8j (halves) or 16j (Q8_0) on. */
fn unit_dot(w: Unit, j: u32) -> f32 {
  if (W_FORMAT == WF_Q8_0) {
    let q = w.q;
    return w.d * (dot(i8x4(q.x), v_word(4u * j)) + dot(i8x4(q.y), v_word(4u * j + 1u)) + dot(i8x4(q.z), v_word(4u * j + 2u)) + dot(i8x4(q.w), v_word(4u * j + 3u)));
  }
  return dot16(w.q, j);
}

/** v at piece j's two runs of 16 elements (chunk_runs) and their sums: shared by the rows. */
struct Q4kX {
  a: array<vec4<f32>, 4>,
  b: array<vec4<f32>, 4>,
  sum_a: f32,
  sum_b: f32,
}

fn q4k_x(j: u32) -> Q4kX {
  let runs = chunk_runs(j) / 4u;
  var x: Q4kX;
  for (var i = 0u; i < 4u; i++) {
    x.a[i] = v_word(runs.x + i);
    x.b[i] = v_word(runs.y + i);
  }
  x.sum_a = dot(x.a[0] + x.a[1] + x.a[2] + x.a[3], vec4<f32>(1.0));
  x.sum_b = dot(x.b[0] + x.b[1] + x.b[2] + x.b[3], vec4<f32>(1.0));
  return x;
}

/**
 * Piece j's 32 weights (nibbles q; head: d, dmin, the scale bytes) times v: per sub-block run,
 * Σ w·v = d·sc·Σ q·v − dmin·m·Σ v.
 */
fn q4k_dot(q: vec4<u32>, head: vec4<u32>, x: Q4kX, j: u32) -> f32 {
  let sub = 2u * ((j & 7u) >> 1u);
  let dd = unpack2x16float(head.x);
  let sm = small_f32x4(vec4<u32>(k_scale_min_words(head.yzw, sub), k_scale_min_words(head.yzw, sub + 1u)));
  var lo = 0.0;
  var hi = 0.0;
  for (var i = 0u; i < 4u; i++) {
    lo += dot(small_f32x4(nib4(q[i], 0u)), x.a[i]);
    hi += dot(small_f32x4(nib4(q[i], 1u)), x.b[i]);
  }
  return dd.x * (sm.x * lo + sm.z * hi) - dd.y * (sm.y * x.sum_a + sm.w * x.sum_b);
}

/**
 * The ROWS rows of a group of block `block`: THREADS_PER_ROW threads per group stride over I.
 * Every thread of the workgroup calls this the same number of times (the barriers).
 */
fn row_block(block: u32, lid: u32, row_scale: ptr<function, f32>, held: vec4<f32>, first_block: bool) {
  let I = params.in_features;
  let O = params.out_features;
  let lane = lid % THREADS_PER_ROW;
  let first = (block * (WORKGROUP_SIZE / THREADS_PER_ROW) + lid / THREADS_PER_ROW) * ROWS;
  // Rows past the end read the last row (no branch around the loads) and store nothing.
  var row: array<u32, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    row[r] = min(first + r, O - 1u);
  }
  var acc: array<f32, MAX_ROWS>;
  // The epilogue's own inputs (its lane's row: first + lane), loaded now so that their latency
  // hides behind the weights' instead of following the row sums.
  let early = early_inputs(first + lane, lane < ROWS && first + lane < O);
  if (W_FORMAT == WF_Q4_K) {
    // The same on Q4_K's 16-byte pieces of nibbles (32 weights, I / 32 per row; q4k_dot).
    let units = I / 32u;
    let step = THREADS_PER_ROW * UNROLL;
    var j0 = 0u;
    for (; j0 + step <= units; j0 += step) {
      var w: array<vec4<u32>, 16>;  // [u · MAX_ROWS + r]: the nibbles
      var h: array<vec4<u32>, 16>;  // their super-block's d, dmin and scales
      for (var u = 0u; u < UNROLL; u++) {
        let j = j0 + u * THREADS_PER_ROW + lane;
        for (var r = 0u; r < ROWS; r++) {
          let sb = k_unit(row[r] * I, j);
          w[u * MAX_ROWS + r] = weight4[sb + 1u + (j & 7u)];
          h[u * MAX_ROWS + r] = weight4[sb];
        }
      }
      for (var u = 0u; u < UNROLL; u++) {
        let j = j0 + u * THREADS_PER_ROW + lane;
        let xs = q4k_x(j);
        for (var r = 0u; r < ROWS; r++) {
          acc[r] += q4k_dot(w[u * MAX_ROWS + r], h[u * MAX_ROWS + r], xs, j);
        }
      }
    }
    for (var j = j0 + lane; j < units; j += THREADS_PER_ROW) {
      let xs = q4k_x(j);
      for (var r = 0u; r < ROWS; r++) {
        let sb = k_unit(row[r] * I, j);
        acc[r] += q4k_dot(weight4[sb + 1u + (j & 7u)], weight4[sb], xs, j);
      }
    }
  } else if (W_FORMAT >= WF_Q4_0) {
    let chunks = I / 32u;
    for (var c = lane; c < chunks; c += THREADS_PER_ROW) {
      let runs = chunk_runs(c) / 4u;
      for (var r = 0u; r < ROWS; r++) {
        let w = w_chunk_of(row[r] * I, c);
        var s = 0.0;
        for (var k = 0u; k < 4u; k++) {
          s += dot(w[k], v_word(runs.x + k)) + dot(w[4u + k], v_word(runs.y + k));
        }
        acc[r] += s;
      }
    }
  } else {
    // fp32, halves, Q8_0: 16-byte units of a row (unit_at), UNROLL of each of the ROWS rows loaded
    // before any arithmetic, then the units left one at a time.
    let units = units_per_row();
    let step = THREADS_PER_ROW * UNROLL;
    var j0 = 0u;
    for (; j0 + step <= units; j0 += step) {
      var w: array<Unit, 16>;  // [u · MAX_ROWS + r]
      for (var u = 0u; u < UNROLL; u++) {
        for (var r = 0u; r < ROWS; r++) {
          w[u * MAX_ROWS + r] = unit_at(row[r], j0 + u * THREADS_PER_ROW + lane);
        }
      }
      for (var u = 0u; u < UNROLL; u++) {
        let j = j0 + u * THREADS_PER_ROW + lane;
        for (var r = 0u; r < ROWS; r++) {
          acc[r] += unit_dot(w[u * MAX_ROWS + r], j);
        }
      }
    }
    for (var j = j0 + lane; j < units; j += THREADS_PER_ROW) {
      for (var r = 0u; r < ROWS; r++) {
        acc[r] += unit_dot(unit_at(row[r], j), j);
      }
    }
  }
  if (NORM == 3u && first_block) {
    *row_scale = presummed_scale(held, lid);
  }
  if (X_DIRECT && NORM == 1u && first_block) {
    // RMSNorm read in place: Σx² once the rows have read x (its words are in cache by now).
    var sq = 0.0;
    for (var k = lid; k < I / 4u; k += WORKGROUP_SIZE) {
      let w = x_word(k);
      sq += dot(w, w);
    }
    *row_scale = inverseSqrt(workgroup_sum(sq, lid) / f32(I) + params.eps);
  }
  // Each row's sum over its THREADS_PER_ROW lanes; every lane of the group gets it.
  var total: array<f32, MAX_ROWS>;
  if (SG_SIZE > 0u) {
    let sg = max(SG_SIZE, 1u);
    for (var r = 0u; r < ROWS; r++) {
      total[r] = sg_add_f32(acc[r]);
    }
    if (THREADS_PER_ROW > sg) {
      // Several subgroups per row (ROWS ≤ SG_SIZE, so the slots fit): their sums through workgroup memory.
      if (lid % sg == 0u) {
        for (var r = 0u; r < ROWS; r++) {
          partial[(lid / sg) * ROWS + r] = total[r];
        }
      }
      workgroupBarrier();
      let first_sg = (lid - lane) / sg;
      for (var r = 0u; r < ROWS; r++) {
        var t = 0.0;
        for (var k = 0u; k < THREADS_PER_ROW / sg; k++) {
          t += partial[(first_sg + k) * ROWS + r];
        }
        total[r] = t;
      }
      workgroupBarrier();  // partial is reused by the next block
    }
  } else {
    for (var r = 0u; r < ROWS; r++) {
      partial[lid] = acc[r];
      workgroupBarrier();
      for (var stride = THREADS_PER_ROW / 2u; stride > 0u; stride /= 2u) {
        if (lane < stride) {
          partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
      }
      total[r] = partial[lid - lane];
      workgroupBarrier();  // partial is reused
    }
  }
  if (lane < ROWS && first + lane < O) {
    epilogue(first + lane, total[lane] * *row_scale, (WORKGROUP_SIZE / THREADS_PER_ROW) * ROWS, early);
  }
}

/**
 * The epilogue's inputs of row o that do not depend on its sum: the conv's weights, bias and state
 * (CONV_K ≤ 4: every Mamba checkpoint's d_conv; vectors, no arrays) and y[o] where the sum is added
 * to it. The lane that runs the epilogue loads them before the row's weights (PREFETCH), else in
 * the epilogue (late); a larger conv reads its own in a loop.
 */
struct Early {
  w: vec4<f32>,   // conv[c, 0 .. K-1]
  s: vec4<f32>,   // conv_state[c, 0 .. K-2]
  bias: f32,      // conv's bias[c]
  resid: f32,     // y[y_offset + o] (accumulate)
}

fn vector_conv() -> bool {
  return CONV_K > 0u && CONV_K <= 4u;
}

fn in_conv(o: u32) -> bool {
  return CONV_K > 0u && o >= params.conv_start && o < params.conv_start + params.conv_channels;
}

fn epilogue_inputs(o: u32) -> Early {
  var e: Early;
  if (vector_conv() && in_conv(o)) {
    let c = o - params.conv_start;
    for (var k = 0u; k < CONV_K; k++) {
      e.w[k] = conv[c * CONV_K + k];
    }
    for (var k = 0u; k + 1u < CONV_K; k++) {
      e.s[k] = conv_state[c * (CONV_K - 1u) + k];
    }
    e.bias = conv[params.conv_channels * CONV_K + c];
  }
  if (params.accumulate != 0u) {
    e.resid = y[params.y_offset + o];
  }
  return e;
}

/** epilogue_inputs where PREFETCH loads them before the rows (a live lane), else zeros. */
fn early_inputs(o: u32, live: bool) -> Early {
  var e: Early;
  if (PREFETCH && live) {
    e = epilogue_inputs(o);
  }
  return e;
}

fn epilogue(o: u32, total: f32, rows_per_block: u32, early: Early) {
  var r = total;
  var e = early;
  if (!PREFETCH) {
    e = epilogue_inputs(o);
  }
  if (in_conv(o)) {
    let c = o - params.conv_start;
    let K = CONV_K;
    let s = c * (K - 1u);
    var acc = 0.0;
    if (vector_conv()) {
      acc = e.bias + e.w[min(K, 4u) - 1u] * r;  // (min: K ≤ 4 here; an override index must be in range for any K)
      for (var k = 0u; k + 1u < K; k++) {
        acc += e.w[k] * e.s[k];
        // Shift: slot k takes slot k + 1, the last slot takes r.
        conv_state[s + k] = select(r, e.s[min(k + 1u, 3u)], k + 2u < K);
      }
    } else {
      acc = conv[params.conv_channels * K + c] + conv[c * K + K - 1u] * r;
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
    }
    r = silu(acc);
    xproj_keep(o % rows_per_block, r);
  }
  if (params.accumulate != 0u) {
    r += e.resid;
  }
  y[params.y_offset + o] = r;
}
