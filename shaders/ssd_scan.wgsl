// ssd_scan: Mamba-2's selective state space scan (SSD), over a state [H, P, N] that persists
// across calls (prefill in the chunked SSD form, then one step per generated token).
//
//   Δ[t, h]        = clamp(softplus(dt[t, h] + dt_bias[h]), dt_min, dt_max)   (softplus(v) = v when v > 20)
//   A[h]           = −exp(A_log[h])
//   state[h, p, n] = exp(Δ[t, h]·A[h]) · state[h, p, n] + Δ[t, h] · x[t, h, p] · B[t, g, n]
//   y[t, h, p]     = Σ_n state[h, p, n] · C[t, g, n] + D[h] · x[t, h, p]
//
// Glossary: t < T tokens, h < H heads, p < P (head_dim), g = h / (H / G) the head's group (G
// groups), n < N states (d_state). x [T, H·P], B [T, G·N] and C [T, G·N] are strided views into the
// conv output xBC [T, Di + 2·G·N]; dt [T, H] is a strided view into in_proj's output
// [T, 2·Di + 2·G·N + H]. y is before the gate and the norm (gated_rmsnorm.wgsl). fp32 throughout.
//
// Chunked prefill (chunks of CHUNK_LEN tokens, k < K = ceil(T / CHUNK_LEN)); with S[t, h] the
// cumulative sum of Δ·A from the chunk's first token through t (inclusive), every exponent below is
// S itself or a difference S[t] − S[s] with s ≤ t, so ≤ 0:
//   chunk_cumsum   Δ and S per (token, head), into `cums` (and Δ into delta_out when TRACE_DELTA):
//                  segments of a chunk summed apart, then their sums before each added.
//   chunk_states   each chunk's end state from zero: Σ_s exp(S_end − S_s) · Δ_s · x_s ⊗ B_s.
//   chunk_cb       C_t·B_s for t, s in the same chunk, once per group (shared by the group's heads).
//   state_passing  a sequential scan over chunks per (h, p, n): start_k = h; h = exp(S_end,k)·h + local_k.
//                  Start states overwrite the local states; the final state goes to `state`.
//   chunk_scan     y[t] = exp(S_t) · C_t · start_k  +  Σ_{s ≤ t in chunk} (C_t·B_s) · exp(S_t − S_s) · Δ_s · x_s
//                  + D · x_t, with C_t·B_s from chunk_cb; 64 × 64 tiles of (t, p) per workgroup.
//                  No T × H × P × N tensor is ever written.
//   chunk_states_wide, chunk_scan_wide
//                  the same two products in 128 × 64 tiles of 8 × 8 a thread (tuning.ssdTile 'wide'): below.
// Decode:
//   step           T = 1: STEP_LANES threads per state row (h, p) update it in place and write y[h, p]
//                  (with GATE: y · silu(z), z read from the xBC buffer at gate_offset; with NORM_SUMS
//                  also: y written times the norm weight g, and each workgroup's Σ of its rows'
//                  (y · silu(z))² into norm_sums[workgroup], the one-group RMSNorm's sum of squares in
//                  pieces, so that out_proj reads y in place: norm_matvec.wgsl NORM = 3). With
//                  TRACE_SUMMARY (a traced decode step's selection summary, reduced by
//                  step_summary.wgsl) also 1 − exp(Δ·A) per head and Σ_n state² per row (h, p).

override WORKGROUP_SIZE: u32 = 64u;
override CHUNK_LEN: u32 = 64u;        // tokens per chunk in prefill
override TRACE_DELTA: bool = false;   // also write Δ to delta_out
override TRACE_SUMMARY: bool = false; // step (with TRACE_DELTA): delta_out is the layer's slot [Δ [H] | gate [H] | state² [H·P]] (step_summary.wgsl reduces it)
override STEP_LANES: u32 = 32u;       // step: threads per state row (h, p), a power of two dividing WORKGROUP_SIZE
override GATE: bool = false;         // step: y = (Σ_n state·C + D·x) · silu(z) (Mamba-2's gate, applied here when its norm has one group)
override NORM_SUMS: bool = false;    // step with GATE: y · silu(z) · g and per-workgroup Σ (y · silu(z))² (norm_g, norm_sums)
override PREFETCH: bool = true;       // step: D, z and the norm weight loaded before the states (step_out_inputs)
override SG_SIZE: u32 = 0u;           // step: subgroup size when the row sums use subgroupAdd (app/kernels/subgroups.ts), else 0

// The chunk kernels' tiles: a 64 × 64 output tile per workgroup of GRID × GRID threads, each
// thread a BLOCK × BLOCK register block; K in steps of TILE_K through workgroup memory, the next
// step's values loaded into registers (StepLoads) while a step computes.
const TILE: u32 = 64u;
const TILE_K: u32 = 16u;
const BLOCK: u32 = 4u;
const GRID: u32 = 16u;  // TILE / BLOCK
// vec4s per step column in a_tile / b_tile: GRID + 1, so that the stores of 16 neighbouring
// threads at consecutive step columns (chunk_cb, chunk_scan: a pitch of 16 vec4 = 256 bytes would
// put all of them on the same four banks) spread over the banks.
const PITCH: u32 = GRID + 1u;

struct Params {
  tokens: u32,     // T
  heads: u32,      // H
  head_dim: u32,   // P
  groups: u32,     // G (divides H)
  states: u32,     // N
  chunks: u32,     // K = ceil(T / CHUNK_LEN)
  xbc_stride: u32, // elements between rows of xBC (conv output: Di + 2·G·N)
  x_offset: u32,   // x[t, h·P + p] = xbc[x_offset + t·xbc_stride + h·P + p]  (0)
  b_offset: u32,   // B[t, g·N + n] = xbc[b_offset + t·xbc_stride + g·N + n]  (Di)
  c_offset: u32,   // C[t, g·N + n] = xbc[c_offset + t·xbc_stride + g·N + n]  (Di + G·N)
  dt_offset: u32,  // dt[t, h] = dt[dt_offset + t·dt_stride + h]             (in_proj: 2·Di + 2·G·N)
  dt_stride: u32,  //                                                       (in_proj: 2·Di + 2·G·N + H)
  dt_min: f32,     // time_step_limit[0]
  dt_max: f32,     // time_step_limit[1] when has_max = 1
  has_max: u32,    // 0: no upper bound (time_step_limit[1] = ∞)
  gate_offset: u32, // step with GATE: z[h·P + p] = xbc[gate_offset + h·P + p] (in_proj's z, when xBC is read in place from in_proj's output)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> xbc: array<f32>;                // x [T, H·P], B, C [T, G·N] as strided views (conv output [T, Di + 2·G·N])
@group(0) @binding(2) var<storage, read> dt: array<f32>;                 // dt [T, H] as a strided view (in_proj's output), no bias
@group(0) @binding(3) var<storage, read> weights: array<f32>;            // [3·H]: A_log [H], D [H], dt_bias [H] (packed by the op)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;            // [T, H·P]
@group(0) @binding(5) var<storage, read_write> state: array<f32>;        // [H, P, N]
@group(0) @binding(6) var<storage, read_write> delta_out: array<f32>;    // [T, H] Δ when TRACE_DELTA, else a placeholder
@group(0) @binding(7) var<storage, read_write> cums: array<f32>;         // [2, T, H]: Δ, then S (cumulative Δ·A within each chunk)
@group(0) @binding(8) var<storage, read_write> chunk_state: array<f32>; // [K, H, P, N] local end states, then start states
@group(0) @binding(9) var<storage, read_write> cb: array<f32>;          // [K, G, L, L] C·Bᵀ within each chunk (L = CHUNK_LEN)
@group(0) @binding(10) var<storage, read> norm_g: array<f32>;           // step with NORM_SUMS: the norm weight [H·P], else a placeholder
@group(0) @binding(11) var<storage, read_write> norm_sums: array<f32>;  // step with NORM_SUMS: [step workgroups] Σ (y · silu(z))², else a placeholder

// a_tile[k · PITCH + q] = rows 4q .. 4q + 3 of the left operand at step column k (q < GRID);
// b_tile likewise for the right operand; the product tile is Σ_k a_tile[k, row] · b_tile[k, col].
alias Tile = array<vec4<f32>, TILE_K * PITCH>;
var<workgroup> a_tile: Tile;
var<workgroup> b_tile: Tile;

// acc[i][j] += Σ_k a[k, 4·ly + i] · b[k, 4·lx + j] over one step of TILE_K.
fn tile_mma(acc: ptr<function, array<vec4<f32>, BLOCK>>, ly: u32, lx: u32) {
  for (var kk = 0u; kk < TILE_K; kk++) {
    let a = a_tile[kk * PITCH + ly];
    let b = b_tile[kk * PITCH + lx];
    (*acc)[0] += a.x * b;
    (*acc)[1] += a.y * b;
    (*acc)[2] += a.z * b;
    (*acc)[3] += a.w * b;
  }
}

// One thread's values of one K step of a chunk kernel, loaded into registers before they are
// stored: the kernels load step k + 1 while step k computes from workgroup memory (between its two
// barriers), so the loads' latency hides behind the arithmetic.
struct StepLoads {
  a: vec4<f32>,
  b: vec4<f32>,
}

// The two loading layouts, into a_tile or b_tile: a vec4 of 4 rows (q = 0..GRID−1) at step
// column k, or 4 step columns kq·4 .. kq·4 + 3 of row r (TILE rows).

fn put_col(tile: ptr<workgroup, Tile>, k: u32, q: u32, v: vec4<f32>) {
  (*tile)[k * PITCH + q] = v;
}

fn put_rows(tile: ptr<workgroup, Tile>, kq: u32, r: u32, v: vec4<f32>) {
  for (var j = 0u; j < BLOCK; j++) {
    (*tile)[(kq * BLOCK + j) * PITCH + r / BLOCK][r % BLOCK] = v[j];
  }
}

// softplus(v) and log1p_unit(u): shaders/softplus.wgsl; silu: shaders/sigmoid.wgsl (both prepended by the op).

fn delta_of(t: u32, h: u32) -> f32 {
  let H = params.heads;
  var d = max(softplus(dt[params.dt_offset + t * params.dt_stride + h] + weights[2u * H + h]), params.dt_min);
  if (params.has_max != 0u) {
    d = min(d, params.dt_max);
  }
  return d;
}

// S[t, h] and Δ[t, h] as chunk_cumsum left them in `cums`.
fn cum_s(t: u32, h: u32) -> f32 {
  return cums[params.tokens * params.heads + t * params.heads + h];
}

fn cum_delta(t: u32, h: u32) -> f32 {
  return cums[t * params.heads + h];
}

fn a_of(h: u32) -> f32 {
  return -exp(weights[h]);
}

fn group_of(h: u32) -> u32 {
  return h / (params.heads / params.groups);
}

fn x_at(t: u32, h: u32, p: u32) -> f32 {
  return xbc[params.x_offset + t * params.xbc_stride + h * params.head_dim + p];
}

fn b_at(t: u32, g: u32, n: u32) -> f32 {
  return xbc[params.b_offset + t * params.xbc_stride + g * params.states + n];
}

fn c_at(t: u32, g: u32, n: u32) -> f32 {
  return xbc[params.c_offset + t * params.xbc_stride + g * params.states + n];
}

// A linear workgroup index from a 2-D dispatch (x, y) that folds counts over the per-dimension limit.
fn linear_group(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.y * nwg.x + wg.x;
}

// One token: STEP_LANES threads per state row (h, p) (WORKGROUP_SIZE / STEP_LANES rows per
// workgroup, rows h·P + p in order, so a row's N states are read and written by neighbouring
// threads), each taking states n = lane, lane + STEP_LANES, …, four at a time (loads first); the
// row's Σ_n state·C is added over its lanes (subgroupAdd where SG_SIZE > 0: app/kernels/subgroups.ts,
// else a tree in workgroup memory), and lane 0 writes y.
@compute @workgroup_size(WORKGROUP_SIZE)
fn step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let P = params.head_dim;
  let N = params.states;
  let rows = params.heads * P;
  let row = linear_group(wg, nwg) * (WORKGROUP_SIZE / STEP_LANES) + lid / STEP_LANES;
  let lane = lid % STEP_LANES;
  let live = row < rows;
  let r = min(row, rows - 1u);  // a spare row computes the last one again and writes nothing
  let h = r / P;
  let p = r % P;
  let g = group_of(h);
  let delta = delta_of(0u, h);
  let decay = exp(delta * a_of(h));
  let xv = x_at(0u, h, p);
  let dx = delta * xv;
  let base = r * N;
  // The output's own inputs (D, the gate's z, the norm's weight), loaded now so that their latency
  // hides behind the states' instead of following the row sum (PREFETCH; every lane of the row
  // loads the same words, lane 0 uses them).
  var out_in = vec3<f32>(0.0, 0.0, 1.0);
  if (PREFETCH) {
    out_in = step_out_inputs(h, p);
  }
  var acc = 0.0;
  var sq = 0.0;  // TRACE_SUMMARY: Σ_n state² of the row's lane
  for (var n0 = 0u; n0 < N; n0 += 4u * STEP_LANES) {
    var s: array<f32, 4>;
    var bn: array<f32, 4>;
    var cn: array<f32, 4>;
    for (var k = 0u; k < 4u; k++) {
      let n = n0 + k * STEP_LANES + lane;
      if (n < N) {
        s[k] = state[base + n];
        bn[k] = b_at(0u, g, n);
        cn[k] = c_at(0u, g, n);
      }
    }
    for (var k = 0u; k < 4u; k++) {
      let n = n0 + k * STEP_LANES + lane;
      if (n < N) {
        let v = decay * s[k] + dx * bn[k];
        if (live) {
          state[base + n] = v;
        }
        acc += v * cn[k];
        sq += v * v;
      }
    }
  }
  let total = step_row_sum(acc, lid, lane);
  var row_sq = 0.0;
  if (TRACE_SUMMARY) {
    workgroupBarrier();  // every lane has read step_partial before it is reused
    row_sq = step_row_sum(sq, lid, lane);
  }
  if (live && lane == 0u) {
    if (!PREFETCH) {
      out_in = step_out_inputs(h, p);
    }
    var out = total + out_in.x * xv;
    if (GATE) {
      out *= silu(out_in.y);
    }
    if (NORM_SUMS) {
      step_sq[lid / STEP_LANES] = out * out;
      out *= out_in.z;
    }
    y[h * P + p] = out;
    if (TRACE_DELTA && p == 0u) {
      delta_out[h] = delta;
    }
    if (TRACE_SUMMARY) {
      if (p == 0u) {
        delta_out[params.heads + h] = one_minus_exp(delta * a_of(h));
      }
      delta_out[2u * params.heads + h * P + p] = row_sq;
    }
  }
  if (NORM_SUMS) {
    // The workgroup's rows' squares (spare rows count 0), summed by thread 0 in row order.
    let rows_here = WORKGROUP_SIZE / STEP_LANES;
    if (!live && lane == 0u) {
      step_sq[lid / STEP_LANES] = 0.0;
    }
    workgroupBarrier();
    let index = linear_group(wg, nwg);
    if (lid == 0u && index < (rows + rows_here - 1u) / rows_here) {
      var s = 0.0;
      for (var k = 0u; k < rows_here; k++) {
        s += step_sq[k];
      }
      norm_sums[index] = s;
    }
  }
}

/** step: row (h, p)'s D, gate z (GATE) and norm weight (NORM_SUMS; 1 otherwise). */
fn step_out_inputs(h: u32, p: u32) -> vec3<f32> {
  var v = vec3<f32>(weights[params.heads + h], 0.0, 1.0);
  if (GATE) {
    v.y = xbc[params.gate_offset + h * params.head_dim + p];
  }
  if (NORM_SUMS) {
    v.z = norm_g[h * params.head_dim + p];
  }
  return v;
}

var<workgroup> step_sq: array<f32, WORKGROUP_SIZE>;  // NORM_SUMS: each row's (y · silu(z))² (index: row in the workgroup)

var<workgroup> step_partial: array<f32, WORKGROUP_SIZE>;

/** The sum of `value` over the STEP_LANES lanes of a row (every lane gets it). Uniform control flow only. */
fn step_row_sum(value: f32, lid: u32, lane: u32) -> f32 {
  if (SG_SIZE > 0u) {
    // (max: SG_SIZE = 0 in the other variant, where a division by the constant 0 would not compile.)
    let sg = max(SG_SIZE, 1u);
    let s = sg_add_f32(value);
    if (STEP_LANES == sg) {
      return s;
    }
    if (lid % sg == 0u) {
      step_partial[lid / sg] = s;
    }
    workgroupBarrier();
    var total = 0.0;
    let first = (lid - lane) / sg;
    for (var k = 0u; k < STEP_LANES / sg; k++) {
      total += step_partial[first + k];
    }
    return total;
  }
  step_partial[lid] = value;
  workgroupBarrier();
  for (var stride = STEP_LANES / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      step_partial[lid] += step_partial[lid + stride];
    }
    workgroupBarrier();
  }
  return step_partial[lid - lane];
}

// Workgroups (head block, chunk) of CUMSUM_HEADS × CUMSUM_SEGS threads: thread (segment, head)
// takes CUMSUM_SEG_LEN consecutive tokens of the chunk for one head (a head block's heads are
// neighbouring threads, so a token's dt loads are contiguous). First each thread adds its tokens'
// Δ·A; the segments' sums before it (workgroup memory) give its starting S; then it walks its
// tokens again writing Δ and S. The dependent chain a thread waits on is CUMSUM_SEG_LEN tokens
// long, not the chunk's length.
const CUMSUM_HEADS: u32 = 8u;
const CUMSUM_SEGS: u32 = 32u;
const CUMSUM_SIZE: u32 = CUMSUM_HEADS * CUMSUM_SEGS;
override CUMSUM_SEG_LEN: u32 = (CHUNK_LEN + CUMSUM_SEGS - 1u) / CUMSUM_SEGS;  // tokens a thread takes (not set by the op)

var<workgroup> segment_sums: array<f32, CUMSUM_SIZE>;

@compute @workgroup_size(CUMSUM_SIZE)
fn chunk_cumsum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let T = params.tokens;
  let head = lid % CUMSUM_HEADS;
  let segment = lid / CUMSUM_HEADS;
  let h = wg.x * CUMSUM_HEADS + head;
  let hc = min(h, H - 1u);  // heads past the end compute head H − 1's sums and write nothing
  let c0 = wg.y * CHUNK_LEN;
  let len = min(CHUNK_LEN, T - c0);
  let t_first = c0 + segment * CUMSUM_SEG_LEN;
  let t_end = c0 + min(len, (segment + 1u) * CUMSUM_SEG_LEN);
  let a = a_of(hc);
  var s = 0.0;
  for (var t = t_first; t < t_end; t++) {
    s += delta_of(t, hc) * a;
  }
  segment_sums[lid] = s;
  workgroupBarrier();
  s = 0.0;
  for (var k = 0u; k < segment; k++) {
    s += segment_sums[k * CUMSUM_HEADS + head];
  }
  if (h >= H) {
    return;
  }
  for (var t = t_first; t < t_end; t++) {
    let delta = delta_of(t, h);
    s += delta * a;
    cums[t * H + h] = delta;
    cums[T * H + t * H + h] = s;
    if (TRACE_DELTA) {
      delta_out[t * H + h] = delta;
    }
  }
}

// Workgroups (p tile · n tiles + n tile, head, chunk); a 64 × 64 tile of the chunk's end state
// from zero, local[p, n] = Σ_t (w_t · x[t, h, p]) · B[t, g, n] with w_t = exp(S_end − S_t) · Δ_t: a
// small matrix product over the chunk's tokens, K in steps of TILE_K through workgroup memory.
@compute @workgroup_size(GRID, GRID)
fn chunk_states(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let P = params.head_dim;
  let N = params.states;
  let T = params.tokens;
  let n_tiles = (N + TILE - 1u) / TILE;
  let p0 = (wg.x / n_tiles) * TILE;
  let n0 = (wg.x % n_tiles) * TILE;
  let h = wg.y;
  let chunk = wg.z;
  let g = group_of(h);
  let t_begin = chunk * CHUNK_LEN;
  let t_end = min(t_begin + CHUNK_LEN, T);
  let s_end = cum_s(t_end - 1u, h);
  // Loading role (rows contiguous in memory): row r of the tile, K rows kq·4 .. kq·4 + 3 of the step.
  let r = lid % TILE;
  let kq = lid / TILE;
  var acc: array<vec4<f32>, BLOCK>;
  var next = states_loads(t_begin, t_end, kq, r, p0, n0, h, g, s_end);
  for (var t0 = t_begin; t0 < t_end; t0 += TILE_K) {
    put_rows(&a_tile, kq, r, next.a);
    put_rows(&b_tile, kq, r, next.b);
    workgroupBarrier();
    if (t0 + TILE_K < t_end) {
      next = states_loads(t0 + TILE_K, t_end, kq, r, p0, n0, h, g, s_end);
    }
    tile_mma(&acc, local.y, local.x);
    workgroupBarrier();
  }
  for (var i = 0u; i < BLOCK; i++) {
    let p = p0 + local.y * BLOCK + i;
    for (var j = 0u; j < BLOCK; j++) {
      let n = n0 + local.x * BLOCK + j;
      if (p < P && n < N) {
        chunk_state[((chunk * H + h) * P + p) * N + n] = acc[i][j];
      }
    }
  }
}

// chunk_states' step from token t0: rows kq·4 + j of the step, x weighted by exp(S_end − S_t)·Δ_t
// (p0 + r) and B (n0 + r); zeros past the chunk, P and N.
fn states_loads(t0: u32, t_end: u32, kq: u32, r: u32, p0: u32, n0: u32, h: u32, g: u32, s_end: f32) -> StepLoads {
  var l = StepLoads(vec4<f32>(0.0), vec4<f32>(0.0));
  for (var j = 0u; j < BLOCK; j++) {
    let t = t0 + kq * BLOCK + j;
    if (t < t_end) {
      if (p0 + r < params.head_dim) {
        l.a[j] = x_at(t, h, p0 + r) * exp(s_end - cum_s(t, h)) * cum_delta(t, h);
      }
      if (n0 + r < params.states) {
        l.b[j] = b_at(t, g, n0 + r);
      }
    }
  }
  return l;
}

// Workgroups (i tile · tiles + j tile, group, chunk), tiles = ceil(CHUNK_LEN / TILE): the chunk's
// C·Bᵀ once per group (not per head), cb[k, g, i, j] = Σ_n C[k·L + i, g, n] · B[k·L + j, g, n] for
// j ≤ i (tiles above the diagonal are skipped; entries j > i inside a diagonal tile are written
// but never read).
@compute @workgroup_size(GRID, GRID)
fn chunk_cb(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = params.states;
  let T = params.tokens;
  let tiles = (CHUNK_LEN + TILE - 1u) / TILE;
  let ti = wg.x / tiles;
  let tj = wg.x % tiles;
  let g = wg.y;
  let chunk = wg.z;
  let c0 = chunk * CHUNK_LEN;
  let len = min(CHUNK_LEN, T - c0);
  let i0 = ti * TILE;
  let j0 = tj * TILE;
  if (tj > ti || i0 >= len) {
    return;  // uniform across the workgroup
  }
  // Loading role (K contiguous in memory): column lk of the step, rows lg·4 .. lg·4 + 3.
  let lk = lid % TILE_K;
  let lg = lid / TILE_K;
  var acc: array<vec4<f32>, BLOCK>;
  var next = cb_loads(lk, lg, i0, j0, len, c0, g);
  for (var k0 = 0u; k0 < N; k0 += TILE_K) {
    put_col(&a_tile, lk, lg, next.a);
    put_col(&b_tile, lk, lg, next.b);
    workgroupBarrier();
    if (k0 + TILE_K < N) {
      next = cb_loads(k0 + TILE_K + lk, lg, i0, j0, len, c0, g);
    }
    tile_mma(&acc, local.y, local.x);
    workgroupBarrier();
  }
  let base = (chunk * params.groups + g) * CHUNK_LEN * CHUNK_LEN;
  for (var i = 0u; i < BLOCK; i++) {
    let row = i0 + local.y * BLOCK + i;
    for (var j = 0u; j < BLOCK; j++) {
      let col = j0 + local.x * BLOCK + j;
      if (row < len && col < len) {
        cb[base + row * CHUNK_LEN + col] = acc[i][j];
      }
    }
  }
}

// C at state n of the chunk's rows i0 + lg·4 + j (zeros past the chunk and N): the left operand
// of chunk_cb's and chunk_scan's state-to-output steps.
fn c_rows(n: u32, lg: u32, i0: u32, len: u32, c0: u32, g: u32) -> vec4<f32> {
  var c = vec4<f32>(0.0);
  if (n < params.states) {
    for (var j = 0u; j < BLOCK; j++) {
      let i = i0 + lg * BLOCK + j;
      if (i < len) {
        c[j] = c_at(c0 + i, g, n);
      }
    }
  }
  return c;
}

// chunk_cb's step at state n: C of rows i0 + lg·4 + j, B of rows j0 + lg·4 + j (zeros past the chunk and N).
fn cb_loads(n: u32, lg: u32, i0: u32, j0: u32, len: u32, c0: u32, g: u32) -> StepLoads {
  var l = StepLoads(c_rows(n, lg, i0, len, c0, g), vec4<f32>(0.0));
  if (n < params.states) {
    for (var j = 0u; j < BLOCK; j++) {
      let s = j0 + lg * BLOCK + j;
      if (s < len) {
        l.b[j] = b_at(c0 + s, g, n);
      }
    }
  }
  return l;
}

/** exp(S) at the last token of `chunk`: the decay of a state carried over the whole chunk. */
fn chunk_decay(chunk: u32, h: u32) -> f32 {
  let T = params.tokens;
  let t_last = min((chunk + 1u) * CHUNK_LEN, T) - 1u;
  return exp(cum_s(t_last, h));
}

// One thread per state element (h, p, n); workgroups folded into 2-D.
@compute @workgroup_size(WORKGROUP_SIZE)
fn state_passing(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let per_head = params.head_dim * params.states;
  let e = linear_group(wg, nwg) * WORKGROUP_SIZE + lid;
  if (e >= H * per_head) {
    return;
  }
  let h = e / per_head;
  let stride = H * per_head;
  var s = state[e];
  // Chunk k + 1's local end state and decay are loaded before chunk k's start state is stored, so
  // a chunk does not wait for its own loads behind the previous store.
  var local_next = chunk_state[e];
  var decay_next = chunk_decay(0u, h);
  for (var chunk = 0u; chunk < params.chunks; chunk++) {
    let local_end = local_next;
    let decay = decay_next;
    if (chunk + 1u < params.chunks) {
      local_next = chunk_state[(chunk + 1u) * stride + e];
      decay_next = chunk_decay(chunk + 1u, h);
    }
    chunk_state[chunk * stride + e] = s;  // the chunk's start state
    s = decay * s + local_end;
  }
  state[e] = s;
}

// Workgroups (t tile · p tiles + p tile, head, chunk): a 64 tokens × 64 head-dim tile of y,
//   y[t, p] = exp(S_t) · Σ_n C[t, n] · start[p, n]                          (state to output)
//           + Σ_{s ≤ t in chunk} cb[t, s] · exp(S_t − S_s) · Δ_s · x[s, p]   (within the chunk)
//           + D · x[t, p],
// both sums as small matrix products through workgroup memory (K = n, then K = s in steps of TILE_K).
@compute @workgroup_size(GRID, GRID)
fn chunk_scan(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let P = params.head_dim;
  let N = params.states;
  let T = params.tokens;
  let p_tiles = (P + TILE - 1u) / TILE;
  let i0 = (wg.x / p_tiles) * TILE;
  let p0 = (wg.x % p_tiles) * TILE;
  let h = wg.y;
  let chunk = wg.z;
  let g = group_of(h);
  let c0 = chunk * CHUNK_LEN;
  let len = min(CHUNK_LEN, T - c0);
  if (i0 >= len) {
    return;  // uniform across the workgroup
  }
  let lk = lid % TILE_K;
  let lg = lid / TILE_K;
  let r = lid % TILE;
  let kq = lid / TILE;
  var acc: array<vec4<f32>, BLOCK>;

  // The state-to-output term: rows t (C[t, n]) against rows p (start[p, n]), K = n.
  let start = (chunk * H + h) * P * N;
  var next = state_term_loads(lk, lg, i0, p0, len, c0, g, start);
  for (var k0 = 0u; k0 < N; k0 += TILE_K) {
    put_col(&a_tile, lk, lg, next.a);
    put_col(&b_tile, lk, lg, next.b);
    workgroupBarrier();
    if (k0 + TILE_K < N) {
      next = state_term_loads(k0 + TILE_K + lk, lg, i0, p0, len, c0, g, start);
    }
    tile_mma(&acc, local.y, local.x);
    workgroupBarrier();
  }
  for (var i = 0u; i < BLOCK; i++) {
    let row = min(i0 + local.y * BLOCK + i, len - 1u);
    acc[i] *= exp(cum_s(c0 + row, h));
  }

  // The intra-chunk term: rows t (the weights cb · exp(S_t − S_s) · Δ_s, zero for s > t) against
  // rows p (x[s, p]), K = s from the chunk's start through the tile's last token.
  let cb_base = (chunk * params.groups + g) * CHUNK_LEN * CHUNK_LEN;
  let k_end = min(i0 + TILE, len);
  // S of this thread's loading rows i0 + lg·4 + j (the same at every step).
  var s_rows = vec4<f32>(0.0);
  for (var j = 0u; j < BLOCK; j++) {
    s_rows[j] = cum_s(c0 + min(i0 + lg * BLOCK + j, len - 1u), h);
  }
  var inner = intra_loads(0u, k_end, lk, lg, kq, r, i0, p0, len, c0, h, cb_base, s_rows);
  for (var k0 = 0u; k0 < k_end; k0 += TILE_K) {
    put_col(&a_tile, lk, lg, inner.a);
    put_rows(&b_tile, kq, r, inner.b);
    workgroupBarrier();
    if (k0 + TILE_K < k_end) {
      inner = intra_loads(k0 + TILE_K, k_end, lk, lg, kq, r, i0, p0, len, c0, h, cb_base, s_rows);
    }
    tile_mma(&acc, local.y, local.x);
    workgroupBarrier();
  }

  let skip = weights[H + h];
  for (var i = 0u; i < BLOCK; i++) {
    let t = c0 + i0 + local.y * BLOCK + i;
    for (var j = 0u; j < BLOCK; j++) {
      let p = p0 + local.x * BLOCK + j;
      if (t < c0 + len && p < P) {
        y[t * H * P + h * P + p] = acc[i][j] + skip * x_at(t, h, p);
      }
    }
  }
}

// chunk_scan's state-to-output step at state n: C of rows i0 + lg·4 + j, the start state of head
// dims p0 + lg·4 + j (zeros past the chunk, P and N).
fn state_term_loads(n: u32, lg: u32, i0: u32, p0: u32, len: u32, c0: u32, g: u32, start: u32) -> StepLoads {
  var l = StepLoads(c_rows(n, lg, i0, len, c0, g), vec4<f32>(0.0));
  if (n < params.states) {
    for (var j = 0u; j < BLOCK; j++) {
      let p = p0 + lg * BLOCK + j;
      if (p < params.head_dim) {
        l.b[j] = chunk_state[start + p * params.states + n];
      }
    }
  }
  return l;
}

// chunk_scan's intra-chunk step from token k0 of the chunk: a = the weights cb[i, s]·exp(S_i − S_s)·Δ_s
// of rows i = i0 + lg·4 + j at s = k0 + lk (zero for s > i; s_rows holds S_i), b = x[s, p0 + r]
// at s = k0 + kq·4 + j (zeros past k_end and P).
fn intra_loads(k0: u32, k_end: u32, lk: u32, lg: u32, kq: u32, r: u32, i0: u32, p0: u32, len: u32, c0: u32, h: u32, cb_base: u32, s_rows: vec4<f32>) -> StepLoads {
  var l = StepLoads(vec4<f32>(0.0), vec4<f32>(0.0));
  let s = k0 + lk;
  if (s < k_end) {
    let s_s = cum_s(c0 + s, h);
    let delta_s = cum_delta(c0 + s, h);
    for (var j = 0u; j < BLOCK; j++) {
      let i = i0 + lg * BLOCK + j;
      if (s <= i && i < len) {
        l.a[j] = cb[cb_base + i * CHUNK_LEN + s] * exp(s_rows[j] - s_s) * delta_s;
      }
    }
  }
  for (var j = 0u; j < BLOCK; j++) {
    let sj = k0 + kq * BLOCK + j;
    if (sj < k_end && p0 + r < params.head_dim) {
      l.b[j] = x_at(c0 + sj, h, p0 + r);
    }
  }
  return l;
}

// ---- Wide tiles for chunk_states and chunk_scan (tuning.ssdTile 'wide') ----
//
// The same products in 128 × 64 output tiles per workgroup of 8 × 16 threads, each thread an 8 × 8
// register block (rows 4·ly + i and 64 + 4·ly + i, columns 4·lx + j and 32 + 4·lx + j): per K
// step a thread reads 4 vec4 of workgroup memory for 64 multiply-adds, where the 64 × 64 tiles'
// 4 × 4 blocks read 2 for 16 (the prefill matmul's tiled_wide against tiled: 28–34 against 21–22
// TFLOP/s on the H200). The accumulators are indexed with constants only (tiled_wide's lesson: a
// loop index pushes them out of registers). chunk_states_wide's rows are the states n and its
// columns the head dims p (N = 128, P = 64 at the 2.7B shapes); chunk_scan_wide's rows the tokens
// t and its columns p. chunk_cb keeps the 64 × 64 tiles (it runs once per group, not per head).

const WM: u32 = 128u;   // rows of a wide tile
const WN: u32 = 64u;    // columns
const WA: u32 = 33u;    // aw's pitch in vec4: 32 row groups + 1 (against bank conflicts on stores)
const WB: u32 = 17u;    // bw's pitch: 16 column groups + 1

// aw[k · WA + q] = rows 4q .. 4q + 3 of the left operand at step column k; bw likewise for the columns.
var<workgroup> aw: array<vec4<f32>, TILE_K * WA>;
var<workgroup> bw: array<vec4<f32>, TILE_K * WB>;

struct WideAcc {
  l0: array<vec4<f32>, 8>,  // rows 4·ly + i (i < 4), then 64 + 4·ly + (i − 4), at columns 4·lx + (0..3)
  l1: array<vec4<f32>, 8>,  // the same rows at columns 32 + 4·lx + (0..3)
}

// acc += one K step from aw / bw (constant indices into the accumulators).
fn wide_mma(acc: ptr<function, WideAcc>, ly: u32, lx: u32) {
  for (var kk = 0u; kk < TILE_K; kk++) {
    let a0 = aw[kk * WA + ly];
    let a1 = aw[kk * WA + 16u + ly];
    let b0 = bw[kk * WB + lx];
    let b1 = bw[kk * WB + 8u + lx];
    (*acc).l0[0] += a0.x * b0;
    (*acc).l1[0] += a0.x * b1;
    (*acc).l0[1] += a0.y * b0;
    (*acc).l1[1] += a0.y * b1;
    (*acc).l0[2] += a0.z * b0;
    (*acc).l1[2] += a0.z * b1;
    (*acc).l0[3] += a0.w * b0;
    (*acc).l1[3] += a0.w * b1;
    (*acc).l0[4] += a1.x * b0;
    (*acc).l1[4] += a1.x * b1;
    (*acc).l0[5] += a1.y * b0;
    (*acc).l1[5] += a1.y * b1;
    (*acc).l0[6] += a1.z * b0;
    (*acc).l1[6] += a1.z * b1;
    (*acc).l0[7] += a1.w * b0;
    (*acc).l1[7] += a1.w * b1;
  }
}

fn wide_zero() -> WideAcc {
  var acc: WideAcc;
  let z = vec4<f32>(0.0);
  acc.l0 = array<vec4<f32>, 8>(z, z, z, z, z, z, z, z);
  acc.l1 = array<vec4<f32>, 8>(z, z, z, z, z, z, z, z);
  return acc;
}

// The tile row of accumulator row i (0..7) of thread row ly.
fn wide_row(ly: u32, i: u32) -> u32 {
  return select(4u * ly + i, 64u + 4u * ly + i - 4u, i >= 4u);
}

// Row-scales the accumulators: row i times f[i] (f0 rows 0..3, f1 rows 4..7).
fn wide_scale(acc: ptr<function, WideAcc>, f0: vec4<f32>, f1: vec4<f32>) {
  (*acc).l0[0] *= f0.x;
  (*acc).l1[0] *= f0.x;
  (*acc).l0[1] *= f0.y;
  (*acc).l1[1] *= f0.y;
  (*acc).l0[2] *= f0.z;
  (*acc).l1[2] *= f0.z;
  (*acc).l0[3] *= f0.w;
  (*acc).l1[3] *= f0.w;
  (*acc).l0[4] *= f1.x;
  (*acc).l1[4] *= f1.x;
  (*acc).l0[5] *= f1.y;
  (*acc).l1[5] *= f1.y;
  (*acc).l0[6] *= f1.z;
  (*acc).l1[6] *= f1.z;
  (*acc).l0[7] *= f1.w;
  (*acc).l1[7] *= f1.w;
}

// Loading, 128 threads: the left operand's 128 rows × 16 step columns and the right's 64 × 16.
// "cols" layout (K contiguous in memory): thread (lk = lid % 16, lg = lid / 16) loads at step
// column lk the row groups lg + 8m (4 of the left, 2 of the right: a vec4 = 4 rows at one k).
// "rows" layout (rows contiguous): the left's row lid loads 16 step columns as 4 vec4; the right's
// row lid % 64 loads columns 8·(lid / 64) .. + 7 as 2 vec4.
fn aw_put_cols(lk: u32, lg: u32, l: WideLoads) {
  aw[lk * WA + lg] = l.a0;
  aw[lk * WA + lg + 8u] = l.a1;
  aw[lk * WA + lg + 16u] = l.a2;
  aw[lk * WA + lg + 24u] = l.a3;
}

// Step columns k0 .. k0 + 3 of row r (rows layout).
fn aw_put_row4(r: u32, k0: u32, v: vec4<f32>) {
  let q = r / 4u;
  let c = r % 4u;
  aw[k0 * WA + q][c] = v.x;
  aw[(k0 + 1u) * WA + q][c] = v.y;
  aw[(k0 + 2u) * WA + q][c] = v.z;
  aw[(k0 + 3u) * WA + q][c] = v.w;
}

fn aw_put_rows(r: u32, l: WideLoads) {
  aw_put_row4(r, 0u, l.a0);
  aw_put_row4(r, 4u, l.a1);
  aw_put_row4(r, 8u, l.a2);
  aw_put_row4(r, 12u, l.a3);
}

fn bw_put_cols(lk: u32, lg: u32, l: WideLoads) {
  bw[lk * WB + lg] = l.b0;
  bw[lk * WB + lg + 8u] = l.b1;
}

fn bw_put_row4(r: u32, k0: u32, v: vec4<f32>) {
  let q = r / 4u;
  let c = r % 4u;
  bw[k0 * WB + q][c] = v.x;
  bw[(k0 + 1u) * WB + q][c] = v.y;
  bw[(k0 + 2u) * WB + q][c] = v.z;
  bw[(k0 + 3u) * WB + q][c] = v.w;
}

fn bw_put_rows(lid: u32, l: WideLoads) {
  let k0 = 8u * (lid / WN);
  bw_put_row4(lid % WN, k0, l.b0);
  bw_put_row4(lid % WN, k0 + 4u, l.b1);
}

// One thread's loads of a K step (named vec4s, no arrays: the compiler keeps them in registers
// without having to unroll anything): the left operand's four, the right's two.
struct WideLoads {
  a0: vec4<f32>,
  a1: vec4<f32>,
  a2: vec4<f32>,
  a3: vec4<f32>,
  b0: vec4<f32>,
  b1: vec4<f32>,
}

fn wide_loads_zero() -> WideLoads {
  let z = vec4<f32>(0.0);
  return WideLoads(z, z, z, z, z, z);
}

// chunk_states_wide's step from token t0: the left operand B[t, g, n0 + lid] at t = t0 .. t0 + 15
// (rows layout), the right x[t, h, p0 + lid % 64] · exp(S_end − S_t) · Δ_t at t = t0 + 8·(lid / 64) + (0..7).
// B at state n of tokens t .. t + 3 (zeros past t_end and N).
fn b_tokens4(t: u32, t_end: u32, g: u32, n: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  if (n < params.states) {
    for (var j = 0u; j < 4u; j++) {
      if (t + j < t_end) {
        v[j] = b_at(t + j, g, n);
      }
    }
  }
  return v;
}

fn states_wide_loads(t0: u32, t_end: u32, lid: u32, n0: u32, p0: u32, h: u32, g: u32, s_end: f32) -> WideLoads {
  var l = wide_loads_zero();
  let n = n0 + lid;
  l.a0 = b_tokens4(t0, t_end, g, n);
  l.a1 = b_tokens4(t0 + 4u, t_end, g, n);
  l.a2 = b_tokens4(t0 + 8u, t_end, g, n);
  l.a3 = b_tokens4(t0 + 12u, t_end, g, n);
  let p = p0 + lid % WN;
  let tb = t0 + 8u * (lid / WN);
  if (p < params.head_dim) {
    for (var j = 0u; j < 4u; j++) {
      let t = tb + j;
      if (t < t_end) {
        l.b0[j] = x_at(t, h, p) * exp(s_end - cum_s(t, h)) * cum_delta(t, h);
      }
      let u = tb + 4u + j;
      if (u < t_end) {
        l.b1[j] = x_at(u, h, p) * exp(s_end - cum_s(u, h)) * cum_delta(u, h);
      }
    }
  }
  return l;
}

// chunk_states_wide's result row (state n) of columns p0c .. p0c + 3.
fn states_wide_store(base: u32, n: u32, p0c: u32, v: vec4<f32>) {
  if (n >= params.states) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let p = p0c + j;
    if (p < params.head_dim) {
      chunk_state[base + p * params.states + n] = v[j];
    }
  }
}

// Workgroups (n tile · p tiles + p tile, head, chunk): chunk_states with a 128 (n) × 64 (p) tile.
@compute @workgroup_size(8, 16)
fn chunk_states_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let P = params.head_dim;
  let p_tiles = (P + WN - 1u) / WN;
  let n0 = (wg.x / p_tiles) * WM;
  let p0 = (wg.x % p_tiles) * WN;
  let h = wg.y;
  let chunk = wg.z;
  let g = group_of(h);
  let t_begin = chunk * CHUNK_LEN;
  let t_end = min(t_begin + CHUNK_LEN, params.tokens);
  let s_end = cum_s(t_end - 1u, h);
  var acc = wide_zero();
  var next = states_wide_loads(t_begin, t_end, lid, n0, p0, h, g, s_end);
  for (var t0 = t_begin; t0 < t_end; t0 += TILE_K) {
    aw_put_rows(lid, next);
    bw_put_rows(lid, next);
    workgroupBarrier();
    if (t0 + TILE_K < t_end) {
      next = states_wide_loads(t0 + TILE_K, t_end, lid, n0, p0, h, g, s_end);
    }
    wide_mma(&acc, local.y, local.x);
    workgroupBarrier();
  }
  let base = (chunk * H + h) * P * params.states;
  let ly = local.y;
  let pa = p0 + 4u * local.x;
  let pb = p0 + 32u + 4u * local.x;
  states_wide_store(base, n0 + wide_row(ly, 0u), pa, acc.l0[0]);
  states_wide_store(base, n0 + wide_row(ly, 1u), pa, acc.l0[1]);
  states_wide_store(base, n0 + wide_row(ly, 2u), pa, acc.l0[2]);
  states_wide_store(base, n0 + wide_row(ly, 3u), pa, acc.l0[3]);
  states_wide_store(base, n0 + wide_row(ly, 4u), pa, acc.l0[4]);
  states_wide_store(base, n0 + wide_row(ly, 5u), pa, acc.l0[5]);
  states_wide_store(base, n0 + wide_row(ly, 6u), pa, acc.l0[6]);
  states_wide_store(base, n0 + wide_row(ly, 7u), pa, acc.l0[7]);
  states_wide_store(base, n0 + wide_row(ly, 0u), pb, acc.l1[0]);
  states_wide_store(base, n0 + wide_row(ly, 1u), pb, acc.l1[1]);
  states_wide_store(base, n0 + wide_row(ly, 2u), pb, acc.l1[2]);
  states_wide_store(base, n0 + wide_row(ly, 3u), pb, acc.l1[3]);
  states_wide_store(base, n0 + wide_row(ly, 4u), pb, acc.l1[4]);
  states_wide_store(base, n0 + wide_row(ly, 5u), pb, acc.l1[5]);
  states_wide_store(base, n0 + wide_row(ly, 6u), pb, acc.l1[6]);
  states_wide_store(base, n0 + wide_row(ly, 7u), pb, acc.l1[7]);
}


// chunk_scan_wide's state-to-output step at state n = k0 + lk: C of the thread's row groups, and
// the start state of head dims p0 + 4q + j for column groups q = lg, lg + 8 (cols layout).
fn state_term_wide_loads(n: u32, lg: u32, i0: u32, p0: u32, len: u32, c0: u32, g: u32, start: u32) -> WideLoads {
  var l = wide_loads_zero();
  // C of the row groups q = lg + 8m (c_rows: rows i0 + 4q + j).
  l.a0 = c_rows(n, lg, i0, len, c0, g);
  l.a1 = c_rows(n, lg + 8u, i0, len, c0, g);
  l.a2 = c_rows(n, lg + 16u, i0, len, c0, g);
  l.a3 = c_rows(n, lg + 24u, i0, len, c0, g);
  if (n < params.states) {
    for (var j = 0u; j < 4u; j++) {
      let pa = p0 + 4u * lg + j;
      if (pa < params.head_dim) {
        l.b0[j] = chunk_state[start + pa * params.states + n];
      }
      let pb = pa + 32u;
      if (pb < params.head_dim) {
        l.b1[j] = chunk_state[start + pb * params.states + n];
      }
    }
  }
  return l;
}

// The intra-chunk weights cb[i, s]·exp(S_i − S_s)·Δ_s of rows i = i0 + 4q + j at s (zero for
// s > i and past the chunk; s_q holds S of those rows, s_s and delta_s S and Δ of s).
fn intra_group(s: u32, q: u32, i0: u32, len: u32, cb_base: u32, s_q: vec4<f32>, s_s: f32, delta_s: f32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let i = i0 + 4u * q + j;
    if (s <= i && i < len) {
      v[j] = cb[cb_base + i * CHUNK_LEN + s] * exp(s_q[j] - s_s) * delta_s;
    }
  }
  return v;
}

// S of the chunk's rows i0 + 4q + j (the last row's past the chunk).
fn s_group(c0: u32, len: u32, i0: u32, q: u32, h: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    v[j] = cum_s(c0 + min(i0 + 4u * q + j, len - 1u), h);
  }
  return v;
}

// S of a thread's four loading row groups lg + 8m (m = 0..3), the same at every intra step.
struct WideRowsS {
  s0: vec4<f32>,
  s1: vec4<f32>,
  s2: vec4<f32>,
  s3: vec4<f32>,
}

// chunk_scan_wide's intra-chunk step from token k0 of the chunk: the left operand (cols layout) the
// weights of the thread's row groups at s = k0 + lk, the right (rows layout) x[s, p0 + lid % 64]
// at s = k0 + 8·(lid / 64) + (0..7); zeros past k_end and P.
fn intra_wide_loads(k0: u32, k_end: u32, lk: u32, lg: u32, lid: u32, i0: u32, p0: u32, len: u32, c0: u32, h: u32, cb_base: u32, rs: WideRowsS) -> WideLoads {
  var l = wide_loads_zero();
  let s = k0 + lk;
  if (s < k_end) {
    let s_s = cum_s(c0 + s, h);
    let delta_s = cum_delta(c0 + s, h);
    l.a0 = intra_group(s, lg, i0, len, cb_base, rs.s0, s_s, delta_s);
    l.a1 = intra_group(s, lg + 8u, i0, len, cb_base, rs.s1, s_s, delta_s);
    l.a2 = intra_group(s, lg + 16u, i0, len, cb_base, rs.s2, s_s, delta_s);
    l.a3 = intra_group(s, lg + 24u, i0, len, cb_base, rs.s3, s_s, delta_s);
  }
  let p = p0 + lid % WN;
  let sb = k0 + 8u * (lid / WN);
  if (p < params.head_dim) {
    for (var j = 0u; j < 4u; j++) {
      if (sb + j < k_end) {
        l.b0[j] = x_at(c0 + sb + j, h, p);
      }
      if (sb + 4u + j < k_end) {
        l.b1[j] = x_at(c0 + sb + 4u + j, h, p);
      }
    }
  }
  return l;
}

// chunk_scan_wide's output row t (chunk row i) at head dims p0c .. p0c + 3: acc + D·x.
fn scan_wide_store(c0: u32, len: u32, i: u32, h: u32, p0c: u32, skip: f32, v: vec4<f32>) {
  if (i >= len) {
    return;
  }
  let t = c0 + i;
  let HP = params.heads * params.head_dim;
  for (var j = 0u; j < 4u; j++) {
    let p = p0c + j;
    if (p < params.head_dim) {
      y[t * HP + h * params.head_dim + p] = v[j] + skip * x_at(t, h, p);
    }
  }
}

// exp(S) of chunk rows wide_row(ly, 4·half + j), j = 0..3 (the last row's where past the chunk).
fn wide_row_decay(c0: u32, len: u32, i0: u32, ly: u32, half: u32, h: u32) -> vec4<f32> {
  var f = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    f[j] = exp(cum_s(c0 + min(i0 + wide_row(ly, 4u * half + j), len - 1u), h));
  }
  return f;
}

// Workgroups (t tile · p tiles + p tile, head, chunk): chunk_scan with a 128 (t) × 64 (p) tile.
@compute @workgroup_size(8, 16)
fn chunk_scan_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let P = params.head_dim;
  let N = params.states;
  let p_tiles = (P + WN - 1u) / WN;
  let i0 = (wg.x / p_tiles) * WM;
  let p0 = (wg.x % p_tiles) * WN;
  let h = wg.y;
  let chunk = wg.z;
  let g = group_of(h);
  let c0 = chunk * CHUNK_LEN;
  let len = min(CHUNK_LEN, params.tokens - c0);
  if (i0 >= len) {
    return;  // uniform across the workgroup
  }
  let lk = lid % TILE_K;
  let lg = lid / TILE_K;
  let ly = local.y;
  var acc = wide_zero();

  // The state-to-output term: rows t (C[t, n]) against columns p (start[p, n]), K = n.
  let start = (chunk * H + h) * P * N;
  var next = state_term_wide_loads(lk, lg, i0, p0, len, c0, g, start);
  for (var k0 = 0u; k0 < N; k0 += TILE_K) {
    aw_put_cols(lk, lg, next);
    bw_put_cols(lk, lg, next);
    workgroupBarrier();
    if (k0 + TILE_K < N) {
      next = state_term_wide_loads(k0 + TILE_K + lk, lg, i0, p0, len, c0, g, start);
    }
    wide_mma(&acc, ly, local.x);
    workgroupBarrier();
  }
  wide_scale(&acc, wide_row_decay(c0, len, i0, ly, 0u, h), wide_row_decay(c0, len, i0, ly, 1u, h));

  // The intra-chunk term: K = s from the chunk's start through the tile's last token.
  let cb_base = (chunk * params.groups + g) * CHUNK_LEN * CHUNK_LEN;
  let k_end = min(i0 + WM, len);
  let rs = WideRowsS(s_group(c0, len, i0, lg, h), s_group(c0, len, i0, lg + 8u, h), s_group(c0, len, i0, lg + 16u, h), s_group(c0, len, i0, lg + 24u, h));
  var inner = intra_wide_loads(0u, k_end, lk, lg, lid, i0, p0, len, c0, h, cb_base, rs);
  for (var k0 = 0u; k0 < k_end; k0 += TILE_K) {
    aw_put_cols(lk, lg, inner);
    bw_put_rows(lid, inner);
    workgroupBarrier();
    if (k0 + TILE_K < k_end) {
      inner = intra_wide_loads(k0 + TILE_K, k_end, lk, lg, lid, i0, p0, len, c0, h, cb_base, rs);
    }
    wide_mma(&acc, ly, local.x);
    workgroupBarrier();
  }

  let skip = weights[H + h];
  let pa = p0 + 4u * local.x;
  let pb = p0 + 32u + 4u * local.x;
  scan_wide_store(c0, len, i0 + wide_row(ly, 0u), h, pa, skip, acc.l0[0]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 1u), h, pa, skip, acc.l0[1]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 2u), h, pa, skip, acc.l0[2]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 3u), h, pa, skip, acc.l0[3]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 4u), h, pa, skip, acc.l0[4]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 5u), h, pa, skip, acc.l0[5]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 6u), h, pa, skip, acc.l0[6]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 7u), h, pa, skip, acc.l0[7]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 0u), h, pb, skip, acc.l1[0]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 1u), h, pb, skip, acc.l1[1]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 2u), h, pb, skip, acc.l1[2]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 3u), h, pb, skip, acc.l1[3]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 4u), h, pb, skip, acc.l1[4]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 5u), h, pb, skip, acc.l1[5]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 6u), h, pb, skip, acc.l1[6]);
  scan_wide_store(c0, len, i0 + wide_row(ly, 7u), h, pb, skip, acc.l1[7]);
}
