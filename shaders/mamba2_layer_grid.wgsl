// mamba2_layer_grid: one decode token through one Mamba-2 layer (one norm group) in ONE dispatch,
// its three dependent steps separated by grid barriers instead of dispatch boundaries
// (app/kernels/layer-grid.ts). The same arithmetic as the three-dispatch fused decode
// (norm_matvec.wgsl NORM = 1 with the conv epilogue; ssd_scan.wgsl step with GATE and NORM_SUMS;
// norm_matvec.wgsl NORM = 3 with accumulate):
//
//   phase 1  zx[o] = Σ_i W_in[o, i] · x[i]·g[i] · rsqrt(mean(x²) + eps)          o < O_in
//            xBC channels (o in [xbc_offset, xbc_offset + C)) then the conv step and silu
//   phase 2  per state row (h, p): Δ = clamp(softplus(dt[h] + dt_bias[h])),
//            state = exp(Δ·A)·state + Δ·x·B;  y = Σ_n state·C + D·x;  u = y · silu(z)
//            ug[h·P + p] = u · g_norm[h·P + p];  sums[piece] = Σ u² over the piece's rows
//   phase 3  x[o] += Σ_i W_out[o, i] · ug[i] · rsqrt(Σ sums / Di + eps_norm)      o < D
//
// Grid barriers (a WebGPU dispatch has no grid-wide synchronisation; tooling/grid-barrier-probe.mjs
// measured one on an H200: ~0.8 µs at 64–132 workgroups, 1.2 at 256 — yet within one pass
// dependent dispatches overlap their launches, and on the whole token this kernel gained only at
// 130m: bench/RESULTS.md): the op dispatches GRID workgroups (a power of two: by default half of
// what app/gpu/grid-sync.ts found running at once, at most 256, or what tuning forces). scr[0] counts arrivals: ticket t gives this
// workgroup's index t mod GRID and its dispatch's generation t / GRID; scr[1] counts barrier
// arrivals, GRID · BARRIERS a dispatch, so barrier k of generation e waits until
// scr[1] − e·GRID·BARRIERS ≥ GRID·(k + 1) (u32 wrap-around is consistent because GRID is a power
// of two). Waits are bounded: past SPIN_LIMIT polls a workgroup sets scr[2] (abort) and every
// workgroup stops at its next barrier, now and in every later dispatch (scr[2] stays set; the
// host reads it: app/kernels/layer-grid.ts gridAborted). So a GPU that does not run all GRID
// workgroups at once gives a wrong token and an error, never a hang.
//
// Memory: values one workgroup writes and another reads within the dispatch (zx, ug, sums) are
// stored and loaded as atomic<u32> (bitcast f32): a plain load may hit a stale line of the
// reader's own L1 (the probe saw exactly that). Everything else is read or written by one thread
// or read only (x is written only in phase 3, by the thread that owns the row, after every
// workgroup has read it in phase 1).
//
// Threads: WORKGROUP_SIZE = 256, work spread over "virtual workgroups" (v = index, index + GRID,
// …): the matvecs in groups of TPR = 32 threads a row (8 rows a virtual workgroup), the step in
// STEP_LANES = 32 lanes a state row (8 rows, all of one head: P % 8 = 0). Row sums with
// subgroupAdd where SG_SIZE = 32 (app/kernels/subgroups.ts), else a tree in workgroup memory.
// Weights: f32, f16 or bf16 (W_FORMAT, both matrices in it; shaders/weights.wgsl's halves8),
// 16 bytes a load.

override GRID: u32 = 1u;            // workgroups dispatched (a power of two)
override GRID_SHIFT: u32 = 0u;      // log2(GRID)
override CONV_K: u32 = 4u;          // d_conv, 2..8
override SG_SIZE: u32 = 0u;         // 32: row sums by subgroupAdd; 0: the tree
override MAX_DI: u32 = 1536u;       // workgroup memory for ug: Di rounded up to 4
override SPIN_LIMIT: u32 = 1000000u;
override IN_ROWS: u32 = 4u;         // in_proj rows a group of TPR threads takes at once, 1..MAX_R
override OUT_ROWS: u32 = 2u;        // out_proj's
override IN_UNROLL: u32 = 2u;       // 16-byte loads a row in flight per thread (ROWS · UNROLL ≤ 16)
override OUT_UNROLL: u32 = 2u;
const MAX_R: u32 = 8u;
const WORKGROUP_SIZE: u32 = 256u;
const TPR: u32 = 32u;
const ROWS_PER_V: u32 = 8u;         // WORKGROUP_SIZE / TPR
const BARRIERS: u32 = 2u;
const MAX_N2: u32 = 512u;           // 2·d_state at most
const MAX_N_LANE: u32 = 8u;         // states a lane of the step holds: d_state ≤ 8 · TPR

struct Params {
  d_model: u32,      // D
  in_rows: u32,      // O_in = 2·Di + 2·G·N + H
  d_inner: u32,      // Di = H·P
  heads: u32,        // H
  head_dim: u32,     // P
  groups: u32,       // G
  states: u32,       // N
  z_offset: u32,     // z in zx
  xbc_offset: u32,   // x, then B [G·N], then C [G·N], the conv channels
  xbc_width: u32,    // C = Di + 2·G·N
  dt_offset: u32,    // dt [H]
  has_max: u32,
  eps: f32,          // the block norm's
  norm_eps: f32,     // the gated norm's
  dt_min: f32,
  dt_max: f32,
  zx_base: u32,
  ug_base: u32,
  sums_base: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x4: array<vec4<f32>>;     // residual [D]
@group(0) @binding(2) var<storage, read> g4: array<vec4<f32>>;           // block norm weight [D]
@group(0) @binding(3) var<storage, read> w_in: array<vec4<u32>>;         // in_proj [O_in, D]
@group(0) @binding(4) var<storage, read> conv: array<f32>;               // conv1d [C, K] then bias [C]
@group(0) @binding(5) var<storage, read_write> conv_state: array<f32>;   // [C, K−1]
@group(0) @binding(6) var<storage, read> ssd_w: array<f32>;              // A_log [H], D [H], dt_bias [H]
@group(0) @binding(7) var<storage, read_write> state: array<f32>;        // [H, P, N]
@group(0) @binding(8) var<storage, read> norm_g: array<f32>;             // gated norm weight [Di]
@group(0) @binding(9) var<storage, read> w_out: array<vec4<u32>>;        // out_proj [D, Di]
// The grid's words (app/kernels/layer-grid.ts GridControl), all read and written as atomics:
// [0] arrivals, [1] barrier arrivals, [2] abort, then zx [O_in] (in_proj's output) at zx_base,
// u·g [Di] at ug_base, the pieces of Σ u² [Di / 8] at sums_base.
@group(0) @binding(10) var<storage, read_write> scr: array<atomic<u32>>;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;
var<workgroup> u_wg: array<vec4<f32>, MAX_DI / 4u>;
var<workgroup> bc_wg: array<f32, MAX_N2>;
var<workgroup> sq_wg: array<f32, ROWS_PER_V>;
var<workgroup> flag_wg: u32;

// weights.wgsl's accessors (only halves8 is used here).
fn w_word(i: u32) -> u32 { return w_in[i >> 2u][i & 3u]; }
fn w_quad(q: u32) -> vec4<u32> { return w_in[q]; }

// silu: shaders/sigmoid.wgsl, prepended by the op.

fn zx_at(i: u32) -> f32 { return bitcast<f32>(atomicLoad(&scr[params.zx_base + i])); }

// workgroup_sum: shaders/workgroup_sum.wgsl, prepended by the op.

/** Sum over the TPR lanes of a row (every lane gets it). Uniform control flow only. */
fn row_sum(value: f32, lid: u32) -> f32 {
  if (SG_SIZE == TPR) {
    return sg_add_f32(value);
  }
  let lane = lid % TPR;
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[lid - lane];
  workgroupBarrier();
  return total;
}

/** 16-byte units in a row of I weights. */
fn units_per_row(I: u32) -> u32 {
  if (W_FORMAT == WF_F32) {
    return I / 4u;
  }
  return I / 8u;
}

/** Grid barrier k of generation `gen`; false when this dispatch gave up (abort). */
fn grid_barrier(lid: u32, gen: u32, k: u32) -> bool {
  storageBarrier();
  workgroupBarrier();
  if (lid == 0u) {
    atomicAdd(&scr[1], 1u);
    let base = gen * (GRID * BARRIERS);
    let goal = GRID * (k + 1u);
    var spins = 0u;
    var ok = 1u;
    loop {
      if (atomicLoad(&scr[1]) - base >= goal) { break; }
      spins += 1u;
      if ((spins & 31u) == 0u) {
        if (atomicLoad(&scr[2]) != 0u) { ok = 0u; break; }
        if (spins >= SPIN_LIMIT) { atomicStore(&scr[2], 1u); ok = 0u; break; }
      }
    }
    flag_wg = ok;
  }
  return workgroupUniformLoad(&flag_wg) != 0u;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) {
    let ticket = atomicAdd(&scr[0], 1u);
    // The index (ticket mod GRID) and generation in one word; an abort left by an earlier
    // dispatch stops this one at once.
    flag_wg = select(ticket, 0xffffffffu, atomicLoad(&scr[2]) != 0u);
  }
  let ticket = workgroupUniformLoad(&flag_wg);
  if (ticket == 0xffffffffu) {
    return;
  }
  let id = ticket & (GRID - 1u);
  let gen = ticket >> GRID_SHIFT;
  phase_in_proj(id, lid);
  if (!grid_barrier(lid, gen, 0u)) {
    return;
  }
  phase_step(id, lid);
  if (!grid_barrier(lid, gen, 1u)) {
    return;
  }
  phase_out_proj(id, lid);
}

/** x·g at words 4j .. 4j + 3 (the block norm read in place: its scale multiplies the row sums). */
fn v_in(j: u32) -> vec4<f32> {
  return x4[j] * g4[j];
}

/** A 16-byte unit j of an in_proj row (4 fp32 or 8 halves) times x·g. */
fn dot_in(w: vec4<u32>, j: u32) -> f32 {
  if (W_FORMAT == WF_F32) {
    return dot(bitcast<vec4<f32>>(w), v_in(j));
  }
  let h = halves8(w);
  return dot(h[0], v_in(2u * j)) + dot(h[1], v_in(2u * j + 1u));
}

/** A 16-byte unit j of an out_proj row times u·g (in workgroup memory). */
fn dot_out(w: vec4<u32>, j: u32) -> f32 {
  if (W_FORMAT == WF_F32) {
    return dot(bitcast<vec4<f32>>(w), u_wg[j]);
  }
  let h = halves8(w);
  return dot(h[0], u_wg[2u * j]) + dot(h[1], u_wg[2u * j + 1u]);
}

/** Row o's conv weights, bias and state, loaded before the row's sum is ready (on: o is a conv channel and this lane runs its epilogue). */
struct ConvPre {
  w: array<f32, 8>,
  st: array<f32, 7>,
  bias: f32,
  on: bool,
}

fn conv_pre(o: u32, mine: bool) -> ConvPre {
  var c = ConvPre(array<f32, 8>(), array<f32, 7>(), 0.0, false);  // explicit: see acc below
  c.on = mine && o >= params.xbc_offset && o < params.xbc_offset + params.xbc_width;
  if (c.on) {
    let C = params.xbc_width;
    let ch = o - params.xbc_offset;
    let K = CONV_K;
    for (var k = 0u; k < K; k++) {
      c.w[k] = conv[ch * K + k];
    }
    c.bias = conv[C * K + ch];
    for (var k = 0u; k + 1u < K; k++) {
      c.st[k] = conv_state[ch * (K - 1u) + k];
    }
  }
  return c;
}

fn epilogue_in(o: u32, total: f32, pre: ConvPre) {
  var r = total;
  if (pre.on) {
    let K = CONV_K;
    let s = (o - params.xbc_offset) * (K - 1u);
    var a = pre.bias + pre.w[K - 1u] * r;
    for (var k = 0u; k + 1u < K; k++) {
      a += pre.w[k] * pre.st[k];
    }
    // The state shifts left by one and takes r (before the conv) as its newest input.
    for (var k = 0u; k + 2u < K; k++) {
      conv_state[s + k] = pre.st[k + 1u];
    }
    conv_state[s + K - 2u] = r;
    r = silu(a);
  }
  atomicStore(&scr[params.zx_base + o], bitcast<u32>(r));
}

// The two matrix-vector steps: a virtual workgroup is 8 groups of TPR threads, each group ROWS
// consecutive rows (IN_ROWS, OUT_ROWS: the op picks them so that the rows fill the grid's groups
// in as few rounds as it can); a thread loads UNROLL units of each of its rows before any
// arithmetic (independent loads in flight), then the units left one at a time. Lane r < ROWS of a
// group runs row r's epilogue.

fn phase_in_proj(id: u32, lid: u32) {
  let D = params.d_model;
  let O = params.in_rows;
  var sq = 0.0;
  for (var j = lid; j < D / 4u; j += WORKGROUP_SIZE) {
    let w = x4[j];
    sq += dot(w, w);
  }
  let scale = inverseSqrt(workgroup_sum(sq, lid) / f32(D) + params.eps);
  let units = units_per_row(D);
  let lane = lid % TPR;
  let rows_v = ROWS_PER_V * IN_ROWS;
  let blocks = (O + rows_v - 1u) / rows_v;
  let step = TPR * IN_UNROLL;
  for (var v = id; v < blocks; v += GRID) {
    let first = (v * ROWS_PER_V + lid / TPR) * IN_ROWS;
    var base: array<u32, MAX_R>;
    for (var r = 0u; r < IN_ROWS; r++) {
      base[r] = min(first + r, O - 1u) * units;
    }
    let pre = conv_pre(first + lane, lane < IN_ROWS && first + lane < O);
    var acc = array<f32, MAX_R>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);  // explicit: SwiftShader did not re-zero a bare var in a loop
    var j0 = 0u;
    for (; j0 + step <= units; j0 += step) {
      var w: array<vec4<u32>, 16>;  // [u · IN_ROWS + r]
      for (var u = 0u; u < IN_UNROLL; u++) {
        for (var r = 0u; r < IN_ROWS; r++) {
          w[u * IN_ROWS + r] = w_in[base[r] + j0 + u * TPR + lane];
        }
      }
      for (var u = 0u; u < IN_UNROLL; u++) {
        let j = j0 + u * TPR + lane;
        for (var r = 0u; r < IN_ROWS; r++) {
          acc[r] += dot_in(w[u * IN_ROWS + r], j);
        }
      }
    }
    for (var j = j0 + lane; j < units; j += TPR) {
      for (var r = 0u; r < IN_ROWS; r++) {
        acc[r] += dot_in(w_in[base[r] + j], j);
      }
    }
    var total: array<f32, MAX_R>;
    for (var r = 0u; r < IN_ROWS; r++) {
      total[r] = row_sum(acc[r], lid);
    }
    if (lane < IN_ROWS && first + lane < O) {
      epilogue_in(first + lane, total[lane] * scale, pre);
    }
  }
}

fn phase_step(id: u32, lid: u32) {
  let H = params.heads;
  let P = params.head_dim;
  let N = params.states;
  let G = params.groups;
  let Di = params.d_inner;
  let lane = lid % TPR;
  let pieces = Di / ROWS_PER_V;  // P % 8 = 0: a piece's rows are one head's
  for (var v = id; v < pieces; v += GRID) {
    let r = v * ROWS_PER_V + lid / TPR;
    let h = r / P;
    let p = r % P;
    let g = h / (H / G);
    // What the row needs besides B and C, loaded before them (independent round trips at once).
    let dt_raw = zx_at(params.dt_offset + h);
    let xv = zx_at(params.xbc_offset + r);
    let zv = zx_at(params.z_offset + r);
    let gn = norm_g[r];
    let base = r * N;
    var old = array<f32, MAX_N_LANE>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (var k = 0u; k < MAX_N_LANE; k++) {
      let n = lane + k * TPR;
      if (n < N) {
        old[k] = state[base + n];
      }
    }
    // B and C of the head's group, once for the piece.
    for (var i = lid; i < 2u * N; i += WORKGROUP_SIZE) {
      let src = params.xbc_offset + Di + select(g * N + i, G * N + g * N + (i - N), i >= N);
      bc_wg[i] = zx_at(src);
    }
    workgroupBarrier();
    var delta = max(softplus(dt_raw + ssd_w[2u * H + h]), params.dt_min);
    if (params.has_max != 0u) {
      delta = min(delta, params.dt_max);
    }
    let decay = exp(delta * -exp(ssd_w[h]));
    let dx = delta * xv;
    var acc = 0.0;
    for (var k = 0u; k < MAX_N_LANE; k++) {
      let n = lane + k * TPR;
      if (n < N) {
        let st = decay * old[k] + dx * bc_wg[n];
        state[base + n] = st;
        acc += st * bc_wg[N + n];
      }
    }
    let total = row_sum(acc, lid);
    if (lane == 0u) {
      let u = (total + ssd_w[H + h] * xv) * silu(zv);
      sq_wg[lid / TPR] = u * u;
      atomicStore(&scr[params.ug_base + r], bitcast<u32>(u * gn));
    }
    workgroupBarrier();
    if (lid == 0u) {
      var s = 0.0;
      for (var k = 0u; k < ROWS_PER_V; k++) {
        s += sq_wg[k];
      }
      atomicStore(&scr[params.sums_base + v], bitcast<u32>(s));
    }
  }
}

fn phase_out_proj(id: u32, lid: u32) {
  let D = params.d_model;
  let Di = params.d_inner;
  // u·g into workgroup memory once, and Σ u² from the pieces.
  for (var i = lid; i < Di; i += WORKGROUP_SIZE) {
    u_wg[i >> 2u][i & 3u] = bitcast<f32>(atomicLoad(&scr[params.ug_base + i]));
  }
  var s = 0.0;
  for (var k = lid; k < Di / ROWS_PER_V; k += WORKGROUP_SIZE) {
    s += bitcast<f32>(atomicLoad(&scr[params.sums_base + k]));
  }
  let scale = inverseSqrt(workgroup_sum(s, lid) / f32(Di) + params.norm_eps);  // its barriers publish u_wg
  let units = units_per_row(Di);
  let lane = lid % TPR;
  let rows_v = ROWS_PER_V * OUT_ROWS;
  let blocks = (D + rows_v - 1u) / rows_v;
  let step = TPR * OUT_UNROLL;
  for (var v = id; v < blocks; v += GRID) {
    let first = (v * ROWS_PER_V + lid / TPR) * OUT_ROWS;
    var base: array<u32, MAX_R>;
    for (var r = 0u; r < OUT_ROWS; r++) {
      base[r] = min(first + r, D - 1u) * units;
    }
    // The residual this lane adds to, loaded with the weights (not after them).
    let mine = min(first + min(lane, OUT_ROWS - 1u), D - 1u);
    let residual = x4[mine >> 2u][mine & 3u];
    var acc = array<f32, MAX_R>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);  // explicit: SwiftShader did not re-zero a bare var in a loop
    var j0 = 0u;
    for (; j0 + step <= units; j0 += step) {
      var w: array<vec4<u32>, 16>;  // [u · OUT_ROWS + r]
      for (var u = 0u; u < OUT_UNROLL; u++) {
        for (var r = 0u; r < OUT_ROWS; r++) {
          w[u * OUT_ROWS + r] = w_out[base[r] + j0 + u * TPR + lane];
        }
      }
      for (var u = 0u; u < OUT_UNROLL; u++) {
        let j = j0 + u * TPR + lane;
        for (var r = 0u; r < OUT_ROWS; r++) {
          acc[r] += dot_out(w[u * OUT_ROWS + r], j);
        }
      }
    }
    for (var j = j0 + lane; j < units; j += TPR) {
      for (var r = 0u; r < OUT_ROWS; r++) {
        acc[r] += dot_out(w_out[base[r] + j], j);
      }
    }
    var total: array<f32, MAX_R>;
    for (var r = 0u; r < OUT_ROWS; r++) {
      total[r] = row_sum(acc[r], lid);
    }
    if (lane < OUT_ROWS && first + lane < D) {
      x4[mine >> 2u][mine & 3u] = residual + total[lane] * scale;
    }
  }
}
