// matmul: a Linear layer over tokens, with W stored as PyTorch's Linear weight [O, I].
//
//   Y[t, o] = Σ_i X[t, i] · W[o, i]  (+ bias[o] when has_bias = 1)  (+ Y[t, o] when accumulate = 1)
//
// Symbols: T = tokens (rows of X and Y), I = in_features, O = out_features. A tied LM head is
// this op with W = the embedding table [V, D]. X and Y are strided views into bigger buffers:
// element (t, i) of X is x[x_offset + t * x_stride + i], element (t, o) of Y is
// y[y_offset + t * y_stride + o] (e.g. X = the x half of in_proj's output [T, 2·Di]).
// fp32 arithmetic throughout. W is stored in any format of app/kernels/weight-format.ts (W_FORMAT:
// fp32, packed f16 or bf16 halves, or ggml blocks), bound as u32 words and decoded by
// shaders/weights.wgsl, which app/kernels/matmul.ts prepends to this file (no shader-f16 feature
// needed).
//
// Entry points (the op picks one from T and alignment; all share one bind group layout):
//   tiled        prefill: a 64×64 tile of Y per workgroup, K in steps of 16 through workgroup
//                memory, each of the 16×16 threads computing a 4×4 register block. Edges are
//                bounds-checked (zeros loaded past T, O and I).
//   matvec       decode (T ≤ 4): each row of W is read once for all T tokens; THREADS_PER_ROW
//                threads stride over I and reduce through workgroup memory, giving
//                MATVEC_WORKGROUP_SIZE / THREADS_PER_ROW output rows per workgroup.
//   matvec_vec4  matvec with vec4 loads of X and 16-byte loads of W, for fp32, f16 and bf16: needs
//                I % 4 = 0 (I % 8 = 0 for halves), x_offset % 4 = 0 and x_stride % 4 = 0 (W's
//                rows are then 16-byte aligned too).
//   matvec_blocks matvec for the ggml block formats: each thread takes chunks of 32 elements of
//                a row (w_chunk_of, chunk_runs) and vec4 loads of X; needs I % 32 = 0 and X
//                aligned as above.
//   tiled_wide   prefill with many rows and outputs: a 128×128 tile of Y, 8×8 per thread.
//   split K      for shapes with few tiles (narrow O such as x_proj's R + 2N, or few tokens):
//                `tiled` with k_split ≠ 0 runs workgroup z over in_features
//                [z·k_split, (z+1)·k_split) and writes its raw partial product, dense, to
//                y = a scratch buffer [splits, T, O]; then `reduce_splits` (x = that scratch) adds
//                the partials and stores Y (bias, accumulate, the y view) as usual.
// Workgroups of matvec may be laid out in 2-D (x fastest) to stay within 65535 per dimension.

override MATVEC_WORKGROUP_SIZE: u32 = 256u;
/** Power of two dividing MATVEC_WORKGROUP_SIZE: threads that share one output row. */
override THREADS_PER_ROW: u32 = 32u;

struct Params {
  tokens: u32,        // T
  in_features: u32,   // I
  out_features: u32,  // O
  has_bias: u32,      // 1: add bias[o]
  x_offset: u32,      // elements
  x_stride: u32,      // elements between rows of X (≥ I)
  y_offset: u32,      // elements
  y_stride: u32,      // elements between rows of Y (≥ O)
  accumulate: u32,    // 1: Y += X·Wᵀ (+ bias) instead of Y = …
  k_split: u32,       // tiled with split K: in_features per split (a multiple of 16), else 0
  splits: u32,        // reduce_splits: partial products to add
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // view [T, I] (x_offset, x_stride)
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;     // the same buffer, for matvec_vec4
@group(0) @binding(2) var<storage, read> weight: array<u32>;        // [O, I] row-major in W_FORMAT (weights.wgsl)
@group(0) @binding(2) var<storage, read> weight4: array<vec4<u32>>; // the same, 16 bytes at a time, for matvec_vec4
@group(0) @binding(3) var<storage, read> bias: array<f32>;         // [O] (any buffer when has_bias = 0)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;      // view [T, O] (y_offset, y_stride)

/** Word i of W (weights.wgsl decodes W's element e = o·I + i with w_at(e)). */
fn w_word(i: u32) -> u32 {
  return weight[i];
}

/** Words 4q .. 4q + 3 of W (for weights.wgsl). */
fn w_quad(q: u32) -> vec4<u32> {
  return vec4<u32>(weight[4u * q], weight[4u * q + 1u], weight[4u * q + 2u], weight[4u * q + 3u]);
}

/** The finished value of Y[t, o] (dot = Σ_i X[t, i]·W[o, i]); t < T and o < O. */
fn store(t: u32, o: u32, dot: f32) {
  let index = params.y_offset + t * params.y_stride + o;
  var value = dot;
  if (params.has_bias != 0u) {
    value += bias[o];
  }
  if (params.accumulate != 0u) {
    value += y[index];
  }
  y[index] = value;
}

// ---------------------------------------------------------------------------------------------
// tiled: Y tile [TILE_T, TILE_O] per workgroup.

const TILE_T: u32 = 64u;  // tokens per tile
const TILE_O: u32 = 64u;  // outputs per tile
const TILE_K: u32 = 16u;  // in_features per step
const BLOCK: u32 = 4u;    // each thread: BLOCK tokens × BLOCK outputs
const THREADS_T: u32 = TILE_T / BLOCK;  // 16
const THREADS_O: u32 = TILE_O / BLOCK;  // 16

// A step column's pitch in vec4s: one more than the 16 groups, so that the stores of 16 threads at
// consecutive k (a pitch of 16 vec4 = 256 bytes would put all of them on the same four banks)
// spread over the banks.
const TILE_P: u32 = THREADS_T + 1u;
// x_tile[k * TILE_P + g] = X[t0 + 4g .. t0 + 4g + 3, k0 + k]  (the step's X slice, transposed)
var<workgroup> x_tile: array<vec4<f32>, TILE_K * TILE_P>;
// w_tile[k * TILE_P + g] = W[o0 + 4g .. o0 + 4g + 3, k0 + k]
var<workgroup> w_tile: array<vec4<f32>, TILE_K * TILE_P>;

@compute @workgroup_size(THREADS_O, THREADS_T)
fn tiled(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.tokens;
  let I = params.in_features;
  let O = params.out_features;
  let t0 = wg.y * TILE_T;
  let o0 = wg.x * TILE_O;
  // Loading role: column k of the step, and a group of 4 rows (of X and of W).
  let load_k = lid % TILE_K;
  let load_g = lid / TILE_K;  // 0 .. 15
  // Computing role: tokens t0 + 4·local.y + (0..3), outputs o0 + 4·local.x + (0..3).
  var acc: array<vec4<f32>, BLOCK>;
  for (var i = 0u; i < BLOCK; i++) {
    acc[i] = vec4<f32>(0.0);
  }
  var k_begin = 0u;
  var k_end = I;
  if (params.k_split != 0u) {
    k_begin = wg.z * params.k_split;
    k_end = min(I, k_begin + params.k_split);
  }
  for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
    let k = k0 + load_k;
    var xv = vec4<f32>(0.0);
    var wv = vec4<f32>(0.0);
    if (k < k_end) {
      for (var j = 0u; j < BLOCK; j++) {
        let t = t0 + load_g * BLOCK + j;
        if (t < T) {
          xv[j] = x[params.x_offset + t * params.x_stride + k];
        }
        let o = o0 + load_g * BLOCK + j;
        if (o < O) {
          wv[j] = w_at(o * I + k);
        }
      }
    }
    x_tile[load_k * TILE_P + load_g] = xv;
    w_tile[load_k * TILE_P + load_g] = wv;
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let a = x_tile[kk * TILE_P + local.y];
      let b = w_tile[kk * TILE_P + local.x];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < BLOCK; i++) {
    let t = t0 + local.y * BLOCK + i;
    if (t < T) {
      let row = acc[i];
      for (var j = 0u; j < BLOCK; j++) {
        let o = o0 + local.x * BLOCK + j;
        if (o < O) {
          if (params.k_split != 0u) {
            y[(wg.z * T + t) * O + o] = row[j];
          } else {
            store(t, o, row[j]);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// tiled_wide: Y tile [128, 128] per workgroup of 16×16 threads, each an 8×8 register block (rows
// 4·ly + (0..3) and 64 + 4·ly + (0..3), columns likewise from lx), K in steps of 16. Four times
// the arithmetic of `tiled` per load and per barrier. Split K as in `tiled` (k_split ≠ 0).

const WIDE: u32 = 128u;       // tokens and outputs per tile
const WIDE_Q: u32 = WIDE / 4u; // vec4 row groups per tile column: 32
const WIDE_S: u32 = WIDE_Q + 1u; // tile row pitch in vec4s, padded against bank conflicts on stores

// xw_tile[k * WIDE_S + q] = X[t0 + 4q .. t0 + 4q + 3, k0 + k]; ww_tile likewise for W's rows.
var<workgroup> xw_tile: array<vec4<f32>, TILE_K * WIDE_S>;
var<workgroup> ww_tile: array<vec4<f32>, TILE_K * WIDE_S>;

fn wide_store(wz: u32, t: u32, o0: u32, row: vec4<f32>) {
  let T = params.tokens;
  let O = params.out_features;
  if (t >= T) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let o = o0 + j;
    if (o < O) {
      if (params.k_split != 0u) {
        y[(wz * T + t) * O + o] = row[j];
      } else {
        store(t, o, row[j]);
      }
    }
  }
}

/** One thread's loads for a step of tiled_wide: X and W rows 8·g .. 8·g + 7 at column k (zeros past T, O and k_end). */
struct WideLoads {
  x0: vec4<f32>,
  x1: vec4<f32>,
  w0: vec4<f32>,
  w1: vec4<f32>,
}

fn wide_loads(t0: u32, o0: u32, k: u32, k_end: u32, g: u32) -> WideLoads {
  let T = params.tokens;
  let I = params.in_features;
  let O = params.out_features;
  var l: WideLoads;
  l.x0 = vec4<f32>(0.0);
  l.x1 = vec4<f32>(0.0);
  l.w0 = vec4<f32>(0.0);
  l.w1 = vec4<f32>(0.0);
  if (k >= k_end) {
    return l;
  }
  for (var j = 0u; j < 4u; j++) {
    let r0 = g * 8u + j;
    let r1 = r0 + 4u;
    if (t0 + r0 < T) {
      l.x0[j] = x[params.x_offset + (t0 + r0) * params.x_stride + k];
    }
    if (t0 + r1 < T) {
      l.x1[j] = x[params.x_offset + (t0 + r1) * params.x_stride + k];
    }
    if (o0 + r0 < O) {
      l.w0[j] = w_at((o0 + r0) * I + k);
    }
    if (o0 + r1 < O) {
      l.w1[j] = w_at((o0 + r1) * I + k);
    }
  }
  return l;
}

@compute @workgroup_size(16, 16)
fn tiled_wide(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.tokens;
  let I = params.in_features;
  let O = params.out_features;
  let t0 = wg.y * WIDE;
  let o0 = wg.x * WIDE;
  // Loading role: column k of the step; rows 8·load_g .. 8·load_g + 7 (two vec4 groups).
  let load_k = lid % TILE_K;
  let load_g = lid / TILE_K;  // 0 .. 15
  var l0: array<vec4<f32>, 8>;  // rows 4·ly + i (i < 4) at columns 4·lx + (0..3), then rows 64 + 4·ly + (i − 4)
  var l1: array<vec4<f32>, 8>;  // the same rows at columns 64 + 4·lx + (0..3)
  var k_begin = 0u;
  var k_end = I;
  if (params.k_split != 0u) {
    k_begin = wg.z * params.k_split;
    k_end = min(I, k_begin + params.k_split);
  }
  let ly = local.y;
  let lx = local.x;
  // The next step's X and W values are loaded into registers while this step computes from
  // workgroup memory (their latency hidden behind the arithmetic), then stored after its barrier.
  var next = wide_loads(t0, o0, k_begin + load_k, k_end, load_g);
  for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
    xw_tile[load_k * WIDE_S + load_g * 2u] = next.x0;
    xw_tile[load_k * WIDE_S + load_g * 2u + 1u] = next.x1;
    ww_tile[load_k * WIDE_S + load_g * 2u] = next.w0;
    ww_tile[load_k * WIDE_S + load_g * 2u + 1u] = next.w1;
    workgroupBarrier();
    if (k0 + TILE_K < k_end) {
      next = wide_loads(t0, o0, k0 + TILE_K + load_k, k_end, load_g);
    }
    for (var kk = 0u; kk < TILE_K; kk++) {
      let a0 = xw_tile[kk * WIDE_S + ly];
      let a1 = xw_tile[kk * WIDE_S + 16u + ly];
      let b0 = ww_tile[kk * WIDE_S + lx];
      let b1 = ww_tile[kk * WIDE_S + 16u + lx];
      l0[0] += a0.x * b0;
      l1[0] += a0.x * b1;
      l0[1] += a0.y * b0;
      l1[1] += a0.y * b1;
      l0[2] += a0.z * b0;
      l1[2] += a0.z * b1;
      l0[3] += a0.w * b0;
      l1[3] += a0.w * b1;
      l0[4] += a1.x * b0;
      l1[4] += a1.x * b1;
      l0[5] += a1.y * b0;
      l1[5] += a1.y * b1;
      l0[6] += a1.z * b0;
      l1[6] += a1.z * b1;
      l0[7] += a1.w * b0;
      l1[7] += a1.w * b1;
    }
    workgroupBarrier();
  }
  // The tile's rows 4·ly + i and 64 + 4·ly + i; for this layout (loads of 8 consecutive rows by
  // load_g), vec4 group q holds rows 4q .. 4q + 3, so a0 = group ly, a1 = group 16 + ly.
  // Constant indices only: a loop index into l0 / l1 would push them out of registers.
  let ta = t0 + 4u * ly;
  let tb = t0 + 64u + 4u * ly;
  let oa = o0 + 4u * lx;
  let ob = o0 + 64u + 4u * lx;
  wide_store(wg.z, ta, oa, l0[0]);
  wide_store(wg.z, ta + 1u, oa, l0[1]);
  wide_store(wg.z, ta + 2u, oa, l0[2]);
  wide_store(wg.z, ta + 3u, oa, l0[3]);
  wide_store(wg.z, tb, oa, l0[4]);
  wide_store(wg.z, tb + 1u, oa, l0[5]);
  wide_store(wg.z, tb + 2u, oa, l0[6]);
  wide_store(wg.z, tb + 3u, oa, l0[7]);
  wide_store(wg.z, ta, ob, l1[0]);
  wide_store(wg.z, ta + 1u, ob, l1[1]);
  wide_store(wg.z, ta + 2u, ob, l1[2]);
  wide_store(wg.z, ta + 3u, ob, l1[3]);
  wide_store(wg.z, tb, ob, l1[4]);
  wide_store(wg.z, tb + 1u, ob, l1[5]);
  wide_store(wg.z, tb + 2u, ob, l1[6]);
  wide_store(wg.z, tb + 3u, ob, l1[7]);
}

// reduce_splits: one thread per (t, o): Y[t, o] = Σ_z partial[z, t, o] (x = the partials [splits, T, O]).
@compute @workgroup_size(256)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let T = params.tokens;
  let O = params.out_features;
  let e = gid.y * groups.x * 256u + gid.x;
  if (e >= T * O) {
    return;
  }
  var sum = 0.0;
  for (var z = 0u; z < params.splits; z++) {
    sum += x[z * T * O + e];
  }
  store(e / O, e % O, sum);
}

// ---------------------------------------------------------------------------------------------
// matvec: T ≤ 4 tokens; partial sums of the T tokens travel as one vec4 (component t = token t).

var<workgroup> partial: array<vec4<f32>, MATVEC_WORKGROUP_SIZE>;

/** Subgroup size when the row sums use subgroupAdd (app/kernels/subgroups.ts), else 0. */
override SG_SIZE: u32 = 0u;

/** Reduces each row's THREADS_PER_ROW partial sums and stores Y[0..T-1, o]. */
fn reduce_and_store(sum: vec4<f32>, o: u32, lid: u32, lane: u32) {
  if (SG_SIZE > 0u) {
    // Each subgroup lies within one row: its sum, then the row's THREADS_PER_ROW / SG_SIZE of them.
    // (max: SG_SIZE = 0 in the other variant, where a division by the constant 0 would not compile.)
    let sg = max(SG_SIZE, 1u);
    let s = sg_add_v4(sum);
    if (lid % sg == 0u) {
      partial[lid / sg] = s;
    }
    workgroupBarrier();
    if (o < params.out_features && lane < params.tokens) {
      let first = (lid - lane) / sg;
      var total = 0.0;
      for (var g = 0u; g < THREADS_PER_ROW / sg; g++) {
        total += partial[first + g][lane];
      }
      store(lane, o, total);
    }
    return;
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = THREADS_PER_ROW / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  // Lane t of the row stores token t.
  if (o < params.out_features && lane < params.tokens) {
    store(lane, o, partial[lid - lane][lane]);
  }
}

fn matvec_row(wg: vec3<u32>, groups: vec3<u32>, lid: u32) -> u32 {
  let block = wg.y * groups.x + wg.x;
  return block * (MATVEC_WORKGROUP_SIZE / THREADS_PER_ROW) + lid / THREADS_PER_ROW;
}

@compute @workgroup_size(MATVEC_WORKGROUP_SIZE)
fn matvec(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.tokens;
  let I = params.in_features;
  let o = matvec_row(wg, groups, lid);
  let lane = lid % THREADS_PER_ROW;
  var sum = vec4<f32>(0.0);
  if (o < params.out_features) {
    let w_row = o * I;
    let xs = params.x_stride;
    for (var i = lane; i < I; i += THREADS_PER_ROW) {
      let w = w_at(w_row + i);
      let xi = params.x_offset + i;
      sum.x += w * x[xi];
      if (T > 1u) {
        sum.y += w * x[xi + xs];
      }
      if (T > 2u) {
        sum.z += w * x[xi + 2u * xs];
      }
      if (T > 3u) {
        sum.w += w * x[xi + 3u * xs];
      }
    }
  }
  reduce_and_store(sum, o, lid, lane);
}

@compute @workgroup_size(MATVEC_WORKGROUP_SIZE)
fn matvec_vec4(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.tokens;
  let o = matvec_row(wg, groups, lid);
  let lane = lid % THREADS_PER_ROW;
  var sum = vec4<f32>(0.0);
  if (o < params.out_features) {
    let xs = params.x_stride / 4u;
    let x_base = params.x_offset / 4u;
    if (W_FORMAT == WF_F16 || W_FORMAT == WF_BF16) {
      // 16 bytes of W = 8 halves = two vec4s of X.
      let I8 = params.in_features / 8u;
      let w_row = o * I8;
      for (var i = lane; i < I8; i += THREADS_PER_ROW) {
        let w = halves8(weight4[w_row + i]);
        let w0 = w[0];
        let w1 = w[1];
        let xi = x_base + 2u * i;
        sum.x += dot(w0, x4[xi]) + dot(w1, x4[xi + 1u]);
        if (T > 1u) {
          sum.y += dot(w0, x4[xi + xs]) + dot(w1, x4[xi + xs + 1u]);
        }
        if (T > 2u) {
          sum.z += dot(w0, x4[xi + 2u * xs]) + dot(w1, x4[xi + 2u * xs + 1u]);
        }
        if (T > 3u) {
          sum.w += dot(w0, x4[xi + 3u * xs]) + dot(w1, x4[xi + 3u * xs + 1u]);
        }
      }
    } else {
      let I4 = params.in_features / 4u;
      let w_row = o * I4;
      for (var i = lane; i < I4; i += THREADS_PER_ROW) {
        let w = bitcast<vec4<f32>>(weight4[w_row + i]);
        let xi = x_base + i;
        sum.x += dot(w, x4[xi]);
        if (T > 1u) {
          sum.y += dot(w, x4[xi + xs]);
        }
        if (T > 2u) {
          sum.z += dot(w, x4[xi + 2u * xs]);
        }
        if (T > 3u) {
          sum.w += dot(w, x4[xi + 3u * xs]);
        }
      }
    }
  }
  reduce_and_store(sum, o, lid, lane);
}

@compute @workgroup_size(MATVEC_WORKGROUP_SIZE)
fn matvec_blocks(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.tokens;
  let o = matvec_row(wg, groups, lid);
  let lane = lid % THREADS_PER_ROW;
  var sum = vec4<f32>(0.0);
  if (o < params.out_features) {
    let xs = params.x_stride / 4u;
    let x_base = params.x_offset / 4u;
    let I = params.in_features;
    let chunks = I / 32u;
    for (var c = lane; c < chunks; c += THREADS_PER_ROW) {
      let w = w_chunk_of(o * I, c);
      let runs = chunk_runs(c);
      for (var k = 0u; k < 8u; k++) {
        // w[0..3]: the first run of 16 elements, w[4..7] the second.
        let xi = x_base + select(runs.y / 4u + k - 4u, runs.x / 4u + k, k < 4u);
        sum.x += dot(w[k], x4[xi]);
        if (T > 1u) {
          sum.y += dot(w[k], x4[xi + xs]);
        }
        if (T > 2u) {
          sum.z += dot(w[k], x4[xi + 2u * xs]);
        }
        if (T > 3u) {
          sum.w += dot(w[k], x4[xi + 3u * xs]);
        }
      }
    }
  }
  reduce_and_store(sum, o, lid, lane);
}

// ---------------------------------------------------------------------------------------------
// rowdot: T ≤ 4 tokens, one thread per output row, no workgroup memory and no barriers. For
// software adapters (SwiftShader), where a barrier costs far more than the arithmetic it saves.

const ROWDOT_WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(ROWDOT_WORKGROUP_SIZE)
fn rowdot(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let o = gid.y * groups.x * ROWDOT_WORKGROUP_SIZE + gid.x;
  if (o >= params.out_features) {
    return;
  }
  let I = params.in_features;
  let w_row = o * I;
  for (var t = 0u; t < params.tokens; t++) {
    let x_row = params.x_offset + t * params.x_stride;
    var dot = 0.0;
    for (var i = 0u; i < I; i++) {
      dot += w_at(w_row + i) * x[x_row + i];
    }
    store(t, o, dot);
  }
}
