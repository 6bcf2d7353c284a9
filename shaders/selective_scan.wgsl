// selective_scan: Mamba-1's selective scan, with everything around it fused, over a state that
// persists across calls (prefill, then one step per generated token).
//
//   Δ[t, d]     = softplus(dt_raw[t, d] + dt_bias[d])         (softplus(v) = v when v > 20)
//   A[d, n]     = −exp(A_log[d, n])
//   state[d, n] = exp(Δ[t, d]·A[d, n]) · state[d, n] + Δ[t, d] · B[t, n] · x[t, d]
//   y[t, d]     = (Σ_n state[d, n] · C[t, n] + D[d] · x[t, d]) · silu(z[t, d])
//
// Glossary: t < T tokens, d < Di channels (d_inner), n < N states (d_state); dt_raw is dt_proj's
// output without its bias; B, C are strided views into x_proj's output [T, R + 2N]; z is a strided
// view into in_proj's output [T, 2·Di]. fp32 throughout. Every exponent taken in the scan is ≤ 0
// (Δ ≥ 0, A < 0), and softplus and silu exponentiate −|v| only.
//
// Threads: a workgroup holds WORKGROUP_SIZE / STATE_LANES channels × STATE_LANES lanes; lane l of
// channel d owns states n = l + k·STATE_LANES (k < STATES_PER_LANE). The expanded state
// (T × Di × N) never leaves registers. In prefill (scan, chunk_summary), each token's Δ and Δ·x are
// computed by one lane of the channel per block of STATE_LANES tokens and shared through workgroup
// memory, not recomputed by every lane; a block's inputs are loaded one block ahead (fetch_block,
// stage_block).
//
// Entry points (each with its own bind group layout, ≤ 8 storage buffers):
//   step            T = 1 (decode): one pass; y from a reduction over n in workgroup memory; the
//                   state is updated in place.
//                   With TRACE_SUMMARY (a traced decode step's selection summary, reduced by
//                   step_summary.wgsl): delta_out is the layer's slot [Δ | gate | state²], each [Di].
//   step_dt         step with dt_proj fused in: dt_raw[d] = Σ_r dt_w[d, r] · dt_r[r], dt_r being
//                   the first R = dt_rank columns of x_proj's output (bc[0 .. R-1]); the channel's
//                   lanes split the R products. Binding 2 is then dt_proj.weight [Di, R] as u32
//                   words (fp32 bits, or packed f16 / bf16 halves with DT_F16 / DT_BF16:
//                   app/kernels/weight-format.ts).
//   step_xp         step_dt with x_proj folded into in_proj (norm_matvec.wgsl XPROJ): binding 4
//                   (xp_parts) holds x_proj's partial sums, a row of xp_rows (rounded up to 4) for
//                   each of its b_stride = R + 2N outputs, which every workgroup first adds, in one
//                   fixed order, into xp = dt_r | B | C in workgroup memory (B at b_offset = R, C
//                   at c_offset = R + N); with xp_eps > 0
//                   (Falcon-Mamba) each of dt_r, B and C is then divided by √(mean(v²) + xp_eps).
//                   Then as step_dt, reading dt_r, B and C from xp. Its own workgroup memory
//                   (xp, xp_part, xp_norm_part), not `partial`, so workgroups of up to 1,024 fit.
//   scan            each chunk of ≤ CHUNK_LEN tokens (workgroup_id.y) rescanned from its start
//                   state, writing y; for T ≤ CHUNK_LEN this is the whole prefill (one chunk,
//                   started from the state and written back over it: write_state = 1).
//   chunk_summary   prefill pass 1: each chunk's end state from zero, and Σ_t Δ[t, d] over the
//                   chunk (its decay is exp(A[d, n]·ΣΔ), an exponent ≤ 0).
//   combine_chunks  prefill pass 2: a sequential scan over chunks per (d, n) turning the summaries
//                   into each chunk's start state, and writing the final state back.
//   (prefill pass 3 is `scan` with `state` bound to the summaries: the start states.)
//   scan_serial     prefill on a software adapter (SwiftShader, where barriers cost far more than
//                   the arithmetic): one thread per channel owns all its N ≤ SERIAL_MAX_STATES
//                   states and does the three passes' arithmetic itself, chunk after chunk, in
//                   their order (no workgroup memory, no barriers): the chunk's end state from
//                   zero and ΣΔ, the carried state exp(A·ΣΔ)·h + end, y from the chunk's start
//                   state; one chunk is scanned straight through. So the carried state takes one
//                   exp a chunk, not one a token, as on a GPU (a per-token product compounds the
//                   exp's rounding over thousands of tokens: 1.4e-4 of ‖Δ‖ at token 6,000).
//   channel_summary, channel_scan
//                   prefill passes 1 and 3 with a thread a channel holding all its N ≤ 16 states
//                   (tuning.prefillScan 'channel'; combine_chunks between them): below.

override WORKGROUP_SIZE: u32 = 64u;   // a multiple of STATE_LANES
override STATE_LANES: u32 = 16u;      // lanes per channel: a power of two, ≤ 32
override STATES_PER_LANE: u32 = 1u;   // ceil(N / STATE_LANES), ≤ MAX_STATES_PER_LANE
override CHUNK_LEN: u32 = 64u;        // tokens per chunk in prefill
override TRACE_DELTA: bool = false;   // also write Δ to delta_out
override TRACE_SUMMARY: bool = false; // step, step_dt (with TRACE_DELTA): also the step's summary terms after Δ in delta_out (step_summary)
override DT_F16: bool = false;        // step_dt: dt_w holds packed f16 halves
override DT_BF16: bool = false;       // step_dt: dt_w holds packed bf16 halves
override PREFETCH: bool = true;       // step, step_dt, step_xp: the output's D, x and z loaded first (step_early)
override STAGE_BC: bool = false;      // prefill: B and C of a block through workgroup memory (STATE_LANES · N ≤ BC_PER_THREAD · WORKGROUP_SIZE)

const MAX_STATES_PER_LANE: u32 = 8u;
const BC_PER_THREAD: u32 = 4u;        // B (and C) elements of a block each thread stages (STAGE_BC)

struct Params {
  tokens: u32,       // T
  channels: u32,     // Di
  states: u32,       // N
  chunks: u32,       // ceil(T / CHUNK_LEN)
  b_offset: u32,     // B[t, n] = bc[b_offset + t·b_stride + n]   (x_proj: R)
  b_stride: u32,     //                                          (x_proj: R + 2N)
  c_offset: u32,     // C[t, n] = bc[c_offset + t·c_stride + n]   (x_proj: R + N)
  c_stride: u32,     //                                          (x_proj: R + 2N)
  z_offset: u32,     // z[t, d] = z[z_offset + t·z_stride + d]    (in_proj: Di)
  z_stride: u32,     //                                          (in_proj: 2·Di)
  write_state: u32,  // scan: 1 → write each chunk's end state back over its start state
  dt_rank: u32,      // step_dt, step_xp: R
  xp_rows: u32,      // step_xp: x_proj's partial sums an output (blocks of in_proj's rows)
  xp_eps: f32,       // step_xp: > 0: Falcon-Mamba's RMS norm of dt_r, B and C with this eps
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;               // [T, Di] conv output
@group(0) @binding(2) var<storage, read> dt_raw: array<f32>;          // [T, Di] dt_proj(dt_r), no bias
@group(0) @binding(2) var<storage, read> dt_w: array<u32>;            // step_dt: dt_proj.weight [Di, R] (f32 bits or packed f16 / bf16 halves)
@group(0) @binding(3) var<storage, read> weights: array<f32>;         // [Di·N + 2·Di]: A_log [Di, N], D [Di], dt_bias [Di] (packed by the op)
@group(0) @binding(4) var<storage, read> bc: array<f32>;              // B [T, N] and C [T, N] as strided views (x_proj's output [T, R + 2N])
@group(0) @binding(5) var<storage, read> z: array<f32>;               // z [T, Di] as a strided view (in_proj's output [T, 2·Di])
@group(0) @binding(6) var<storage, read_write> y: array<f32>;         // [T, Di]
@group(0) @binding(7) var<storage, read_write> state: array<f32>;     // [chunks, Di, N] start states; the state [Di, N] itself in step, single-chunk scan and combine_chunks
@group(0) @binding(8) var<storage, read_write> delta_out: array<f32>; // [T, Di] Δ when TRACE_DELTA, else a placeholder
@group(0) @binding(9) var<storage, read_write> summary: array<f32>;   // [chunks, Di, N] chunk end states from zero, then [chunks, Di] Σ Δ

// y partials of one block of STATE_LANES tokens: [token in block][thread], rows padded by one
// float so that the transposed reads hit distinct banks.
var<workgroup> partial: array<f32, (WORKGROUP_SIZE + 1u) * STATE_LANES>;
// (Δ, Δ·x) of one block of STATE_LANES tokens (stage_block): one 8-byte read a token step.
var<workgroup> blk_step: array<vec2<f32>, WORKGROUP_SIZE>;

// softplus(v) and log1p_unit(u): shaders/softplus.wgsl; silu: shaders/sigmoid.wgsl (both prepended by the op).

struct Lane {
  d: u32,        // channel
  lane: u32,     // lane within the channel
  live: bool,  // d < Di (the last workgroup may have spare channels)
}

fn lane_of(group: u32, lid: u32) -> Lane {
  let d = group * (WORKGROUP_SIZE / STATE_LANES) + lid / STATE_LANES;
  return Lane(d, lid % STATE_LANES, d < params.channels);
}

// The channel's state column n = lane + k·STATE_LANES, or none (N when out of range).
fn state_index(l: Lane, k: u32) -> u32 {
  let n = l.lane + k * STATE_LANES;
  return select(params.states, n, l.live && n < params.states);
}

// Thread-private A and state for the lane's columns.
struct Columns {
  a: array<f32, MAX_STATES_PER_LANE>,
  s: array<f32, MAX_STATES_PER_LANE>,
}

// A for the lane's columns; states zero.
fn columns_from_zero(l: Lane) -> Columns {
  var c: Columns;
  for (var k = 0u; k < STATES_PER_LANE; k++) {
    let n = state_index(l, k);
    if (n < params.states) {
      c.a[k] = -exp(weights[l.d * params.states + n]);
    }
  }
  return c;
}

// A for the lane's columns; states from state[state_base + n].
fn columns_from_state(l: Lane, state_base: u32) -> Columns {
  var c = columns_from_zero(l);
  for (var k = 0u; k < STATES_PER_LANE; k++) {
    let n = state_index(l, k);
    if (n < params.states) {
      c.s[k] = state[state_base + n];
    }
  }
  return c;
}

// One token: updates the lane's states and returns its part of Σ_n state · C.
fn advance(l: Lane, c: ptr<function, Columns>, t: u32, delta: f32) -> f32 {
  return advance_dx(l, c, t, delta, delta * x[t * params.channels + l.d]);
}

// advance with Δ·x given.
fn advance_dx(l: Lane, c: ptr<function, Columns>, t: u32, delta: f32, dx: f32) -> f32 {
  var p = 0.0;
  for (var k = 0u; k < STATES_PER_LANE; k++) {
    let n = state_index(l, k);
    if (n < params.states) {
      let s = exp(delta * (*c).a[k]) * (*c).s[k] + dx * bc[params.b_offset + t * params.b_stride + n];
      (*c).s[k] = s;
      p += s * bc[params.c_offset + t * params.c_stride + n];
    }
  }
  return p;
}

// Prefill goes through the tokens in blocks of STATE_LANES from t0. A block's inputs are loaded
// into registers one block ahead (fetch_block, issued right after the barrier that opens the block
// before, so that their latency hides behind that block's arithmetic), then put into workgroup
// memory (stage_block): lane j of each channel computes Δ and Δ·x of token t0 + j once (not once
// per lane) into blk_step[lid], and with STAGE_BC the block's B [and C] rows go to
// blk_bc [token in block · N + n] as (B, C) pairs, so that a token's step reads no global memory
// and makes two 8-byte reads of workgroup memory, not four of 4 bytes (the scan's steps are as
// much workgroup-memory traffic as arithmetic). The channel's lanes read them after a barrier
// (token j at blk_step[lid − lane + j]).
var<workgroup> blk_bc: array<vec2<f32>, BC_PER_THREAD * WORKGROUP_SIZE>;

struct Block {
  dt: f32,                          // dt_raw[t0 + lane, d] (0 past t_end or for a spare channel)
  xv: f32,                          // x[t0 + lane, d]
  b: array<f32, BC_PER_THREAD>,     // STAGE_BC: block elements lid + i·WORKGROUP_SIZE of B
  c: array<f32, BC_PER_THREAD>,     //                                          and of C (with_c)
}

fn fetch_block(l: Lane, lid: u32, t0: u32, t_end: u32, with_c: bool) -> Block {
  let Di = params.channels;
  let N = params.states;
  var k: Block;
  k.dt = 0.0;
  k.xv = 0.0;
  let t = t0 + l.lane;
  if (l.live && t < t_end) {
    k.dt = dt_raw[t * Di + l.d];
    k.xv = x[t * Di + l.d];
  }
  for (var i = 0u; i < BC_PER_THREAD; i++) {
    k.b[i] = 0.0;
    k.c[i] = 0.0;
    let e = lid + i * WORKGROUP_SIZE;
    let tb = t0 + e / N;
    if (STAGE_BC && e < STATE_LANES * N && tb < t_end) {
      k.b[i] = bc[params.b_offset + tb * params.b_stride + e % N];
      if (with_c) {
        k.c[i] = bc[params.c_offset + tb * params.c_stride + e % N];
      }
    }
  }
  return k;
}

// scan's reduction inputs, fetched a block ahead as the block is: x and z at output (t, d), or 0.
fn fetch_out(t: u32, t_end: u32, d: u32) -> vec2<f32> {
  if (d < params.channels && t < t_end) {
    return vec2<f32>(x[t * params.channels + d], z[params.z_offset + t * params.z_stride + d]);
  }
  return vec2<f32>(0.0);
}

// Puts a fetched block into workgroup memory; returns the lane's Δ (0 past t_end).
fn stage_block(k: Block, l: Lane, lid: u32, t0: u32, t_end: u32) -> f32 {
  let Di = params.channels;
  var delta = 0.0;
  var dx = 0.0;
  if (l.live && t0 + l.lane < t_end) {
    delta = softplus(k.dt + weights[Di * params.states + Di + l.d]);
    dx = delta * k.xv;
  }
  blk_step[lid] = vec2<f32>(delta, dx);
  if (STAGE_BC) {
    for (var i = 0u; i < BC_PER_THREAD; i++) {
      blk_bc[lid + i * WORKGROUP_SIZE] = vec2<f32>(k.b[i], k.c[i]);
    }
  }
  return delta;
}

// advance_dx for token j of a staged block, step = (Δ, Δ·x) (B and C from the block with STAGE_BC, else from bc).
fn advance_block(l: Lane, c: ptr<function, Columns>, t: u32, j: u32, step: vec2<f32>) -> f32 {
  if (!STAGE_BC) {
    return advance_dx(l, c, t, step.x, step.y);
  }
  var p = 0.0;
  for (var k = 0u; k < STATES_PER_LANE; k++) {
    let n = state_index(l, k);
    if (n < params.states) {
      let bc_n = blk_bc[j * params.states + n];
      let s = exp(step.x * (*c).a[k]) * (*c).s[k] + step.y * bc_n.x;
      (*c).s[k] = s;
      p += s * bc_n.y;
    }
  }
  return p;
}

fn delta_at(l: Lane, t: u32) -> f32 {
  let Di = params.channels;
  let delta = softplus(dt_raw[t * Di + l.d] + weights[Di * params.states + Di + l.d]);
  if (TRACE_DELTA && l.lane == 0u) {
    delta_out[t * Di + l.d] = delta;
  }
  return delta;
}

fn gated_output(t: u32, d: u32, sum_sc: f32) -> f32 {
  return gated_output_xz(d, sum_sc, x[t * params.channels + d], z[params.z_offset + t * params.z_stride + d]);
}

fn gated_output_xz(d: u32, sum_sc: f32, xv: f32, zv: f32) -> f32 {
  let skip = weights[params.channels * params.states + d];
  return (sum_sc + skip * xv) * silu(zv);
}

// A one-token step's output inputs of the lane's channel d that do not depend on the state:
// (D[d], x[d], z[d]) (step_inputs). With PREFETCH the steps load them first (step_early), so that
// their latency hides behind the state's and dt_proj's loads instead of following the lanes' sum;
// else step_early gives zeros and the output loads them itself (step_output).
fn step_inputs(l: Lane) -> vec3<f32> {
  return vec3<f32>(weights[params.channels * params.states + l.d], x[l.d], z[params.z_offset + l.d]);
}

fn step_early(l: Lane) -> vec3<f32> {
  if (!PREFETCH || !l.live) {
    return vec3<f32>(0.0);
  }
  return step_inputs(l);
}

// The gated output of a one-token step from the lanes' sum (and step_early's values).
fn step_output(l: Lane, sum_sc: f32, early: vec3<f32>) -> f32 {
  var e = early;
  if (!PREFETCH) {
    e = step_inputs(l);
  }
  return (sum_sc + e.x * e.y) * silu(e.z);
}

// x[d] · Δ of a one-token step (step_early's x where it was loaded).
fn step_dx(l: Lane, delta: f32, early: vec3<f32>) -> f32 {
  if (PREFETCH) {
    return delta * early.y;
  }
  return delta * x[l.d];
}

// The end of a one-token step (step, step_dt): the channel's lanes add their parts of C·state
// into y[d] (with the skip and the gate), and the state goes back to memory.
fn finish_step(l: Lane, c: Columns, p: f32, lid: u32, base: u32, early: vec3<f32>) {
  partial[lid] = p;
  workgroupBarrier();
  if (l.live && l.lane == 0u) {
    var sum_sc = 0.0;
    for (var i = 0u; i < STATE_LANES; i++) {
      sum_sc += partial[lid + i];
    }
    y[l.d] = step_output(l, sum_sc, early);
  }
  for (var k = 0u; k < STATES_PER_LANE; k++) {
    let n = state_index(l, k);
    if (n < params.states) {
      state[base + n] = c.s[k];
    }
  }
}

var<workgroup> summary_part: array<vec2<f32>, WORKGROUP_SIZE>;

// TRACE_SUMMARY, after finish_step (uniform control flow): the channel's Σ_n (1 − exp(Δ·A[d, n]))
// and Σ_n state[d, n]² after the step, its lanes' parts added in lane order, at delta_out[Di + d]
// and delta_out[2·Di + d] (Δ itself is at delta_out[d]: TRACE_DELTA).
fn step_summary(l: Lane, c: Columns, delta: f32, lid: u32) {
  var part = vec2<f32>(0.0);
  for (var k = 0u; k < STATES_PER_LANE; k++) {
    if (state_index(l, k) < params.states) {
      part += vec2<f32>(one_minus_exp(delta * c.a[k]), c.s[k] * c.s[k]);
    }
  }
  summary_part[lid] = part;
  workgroupBarrier();
  if (l.live && l.lane == 0u) {
    var total = vec2<f32>(0.0);
    for (var i = 0u; i < STATE_LANES; i++) {
      total += summary_part[lid + i];
    }
    delta_out[params.channels + l.d] = total.x;
    delta_out[2u * params.channels + l.d] = total.y;
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let l = lane_of(wg.x, lid);
  let base = l.d * params.states;
  var c = columns_from_state(l, base);
  let early = step_early(l);
  var p = 0.0;
  var delta = 0.0;
  if (l.live) {
    delta = delta_at(l, 0u);
    p = advance_dx(l, &c, 0u, delta, step_dx(l, delta, early));
  }
  finish_step(l, c, p, lid, base, early);
  if (TRACE_SUMMARY) {
    step_summary(l, c, delta, lid);
  }
}

fn dt_w_at(e: u32) -> f32 {
  if (DT_BF16) {
    return bitcast<f32>(((dt_w[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu) << 16u);
  }
  if (DT_F16) {
    let pair = unpack2x16float(dt_w[e >> 1u]);
    return select(pair.x, pair.y, (e & 1u) == 1u);
  }
  return bitcast<f32>(dt_w[e]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn step_dt(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let l = lane_of(wg.x, lid);
  let Di = params.channels;
  let R = params.dt_rank;
  // The state and A first, so that their loads are in flight during the dt_proj products.
  let base = l.d * params.states;
  var c = columns_from_state(l, base);
  let early = step_early(l);
  // dt_raw[d]: the channel's lanes each sum every STATE_LANES-th product, then all of them add
  // the STATE_LANES partial sums in the same order (the same value in every lane).
  var part = 0.0;
  if (l.live) {
    for (var r = l.lane; r < R; r += STATE_LANES) {
      part += dt_w_at(l.d * R + r) * bc[r];
    }
  }
  partial[lid] = part;
  workgroupBarrier();
  let first = lid - l.lane;
  var raw = 0.0;
  for (var i = 0u; i < STATE_LANES; i++) {
    raw += partial[first + i];
  }
  workgroupBarrier();
  var p = 0.0;
  var delta = 0.0;
  if (l.live) {
    delta = softplus(raw + weights[Di * params.states + Di + l.d]);
    if (TRACE_DELTA && l.lane == 0u) {
      delta_out[l.d] = delta;
    }
    p = advance_dx(l, &c, 0u, delta, step_dx(l, delta, early));
  }
  finish_step(l, c, p, lid, base, early);
  if (TRACE_SUMMARY) {
    step_summary(l, c, delta, lid);
  }
}

const MAX_XP: u32 = 1024u;             // step_xp: most x_proj outputs (R + 2N)
var<workgroup> xp: array<f32, MAX_XP>;
var<workgroup> xp_part: array<f32, WORKGROUP_SIZE>;
const XP_NORM_THREADS: u32 = 256u;     // step_xp: the threads that take the norm's sums (a power of two ≤ WORKGROUP_SIZE)
var<workgroup> xp_norm_part: array<vec3<f32>, XP_NORM_THREADS>;

// step_xp: xp[j] = Σ_b parts[j][b] over the xp_rows blocks' partial sums of output j (a row of
// xp_parts, ceil(xp_rows / 4) vec4s; the entries past xp_rows, never written, are masked). Where the outputs leave
// threads over, `splits` threads take each output, each every splits-th vec4 of its row from its
// own first, and their sums are added in split order.
@group(0) @binding(4) var<storage, read> xp_parts: array<vec4<f32>>;

fn xp_row_sum(j: u32, first: u32, splits: u32, quads: u32) -> f32 {
  var s = array<vec4<f32>, 4>();
  let row = j * quads;
  var q = first;
  // Four vec4s a round in flight, none of them the row's last (masked past xp_rows below).
  for (; quads > 1u && q + 3u * splits < quads - 1u; q += 4u * splits) {
    let a = xp_parts[row + q];
    let b = xp_parts[row + q + splits];
    let c = xp_parts[row + q + 2u * splits];
    let d = xp_parts[row + q + 3u * splits];
    s[0] += a;
    s[1] += b;
    s[2] += c;
    s[3] += d;
  }
  for (; q < quads; q += splits) {
    let v = xp_parts[row + q];
    let valid = vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.xp_rows);
    s[0] += select(vec4<f32>(0.0), v, valid);
  }
  let u = (s[0] + s[1]) + (s[2] + s[3]);
  return (u.x + u.y) + (u.z + u.w);
}

fn xp_add_partials(lid: u32) {
  let width = params.b_stride;
  let quads = (params.xp_rows + 3u) / 4u;
  if (width <= WORKGROUP_SIZE) {
    let splits = WORKGROUP_SIZE / width;
    let first = lid / width;
    var part = 0.0;
    if (first < splits) {
      part = xp_row_sum(lid % width, first, splits, quads);
    }
    xp_part[lid] = part;
    workgroupBarrier();
    if (lid < width) {
      var total = 0.0;
      for (var k = 0u; k < splits; k++) {
        total += xp_part[k * width + lid];
      }
      xp[lid] = total;
    }
  } else {
    for (var j = lid; j < width; j += WORKGROUP_SIZE) {
      xp[j] = xp_row_sum(j, 0u, 1u, quads);
    }
  }
  workgroupBarrier();
}

// step_xp with xp_eps > 0: dt_r = xp[0, R), B = xp[R, R + N), C = xp[R + N, R + 2N) each divided
// by its own √(mean(v²) + eps) (Falcon-Mamba; segment_rmsnorm.wgsl in the unfolded decode).
fn xp_norm(lid: u32) {
  let R = params.dt_rank;
  let N = params.states;
  // The first XP_NORM_THREADS threads sum the squares of the three parts, then a tree.
  var sq = vec3<f32>(0.0);
  if (lid < XP_NORM_THREADS) {
    for (var i = lid; i < R + 2u * N; i += XP_NORM_THREADS) {
      let v = xp[i];
      if (i < R) {
        sq.x += v * v;
      } else if (i < R + N) {
        sq.y += v * v;
      } else {
        sq.z += v * v;
      }
    }
    xp_norm_part[lid] = sq;
  }
  workgroupBarrier();
  for (var stride = XP_NORM_THREADS / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      xp_norm_part[lid] += xp_norm_part[lid + stride];
    }
    workgroupBarrier();
  }
  let scale = inverseSqrt(xp_norm_part[0] / vec3<f32>(f32(R), f32(N), f32(N)) + params.xp_eps);
  // Every read of xp above came before the tree's first barrier.
  for (var i = lid; i < R + 2u * N; i += WORKGROUP_SIZE) {
    xp[i] *= select(scale.z, select(scale.y, scale.x, i < R), i < R + N);
  }
  workgroupBarrier();
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn step_xp(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let l = lane_of(wg.x, lid);
  let Di = params.channels;
  let R = params.dt_rank;
  // The state and A first, so that their loads are in flight during the sums.
  let base = l.d * params.states;
  var c = columns_from_state(l, base);
  let early = step_early(l);
  xp_add_partials(lid);
  if (params.xp_eps > 0.0) {
    xp_norm(lid);
  }
  // dt_raw[d] as in step_dt, from xp's dt_r.
  var part = 0.0;
  if (l.live) {
    for (var r = l.lane; r < R; r += STATE_LANES) {
      part += dt_w_at(l.d * R + r) * xp[r];
    }
  }
  xp_part[lid] = part;
  workgroupBarrier();
  let first = lid - l.lane;
  var raw = 0.0;
  for (var i = 0u; i < STATE_LANES; i++) {
    raw += xp_part[first + i];
  }
  workgroupBarrier();
  var p = 0.0;
  var delta = 0.0;
  if (l.live) {
    delta = softplus(raw + weights[Di * params.states + Di + l.d]);
    if (TRACE_DELTA && l.lane == 0u) {
      delta_out[l.d] = delta;
    }
    let dx = step_dx(l, delta, early);
    for (var k = 0u; k < STATES_PER_LANE; k++) {
      let n = state_index(l, k);
      if (n < params.states) {
        let s = exp(delta * c.a[k]) * c.s[k] + dx * xp[params.b_offset + n];
        c.s[k] = s;
        p += s * xp[params.c_offset + n];
      }
    }
  }
  // finish_step's work through xp_part (finish_step's `partial` is sized for the prefill's blocks).
  xp_part[lid] = p;
  workgroupBarrier();
  if (l.live && l.lane == 0u) {
    var sum_sc = 0.0;
    for (var i = 0u; i < STATE_LANES; i++) {
      sum_sc += xp_part[lid + i];
    }
    y[l.d] = step_output(l, sum_sc, early);
  }
  for (var k = 0u; k < STATES_PER_LANE; k++) {
    let n = state_index(l, k);
    if (n < params.states) {
      state[base + n] = c.s[k];
    }
  }
  if (TRACE_SUMMARY) {
    step_summary(l, c, delta, lid);
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn scan(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let Di = params.channels;
  let l = lane_of(wg.x, lid);
  let chunk = wg.y;
  let t_begin = chunk * CHUNK_LEN;
  let t_end = min(t_begin + CHUNK_LEN, params.tokens);
  let base = chunk * Di * params.states + l.d * params.states;
  var c = columns_from_state(l, base);

  // In the reduction, thread lid sums token j = lid / channels_per_group of channel `col`, so that
  // neighbouring threads write neighbouring channels of y.
  let channels_per_group = WORKGROUP_SIZE / STATE_LANES;
  let j_out = lid / channels_per_group;
  let col = lid % channels_per_group;
  let d_out = wg.x * channels_per_group + col;
  let row = WORKGROUP_SIZE + 1u;

  let first_lane = lid - l.lane;
  // Two barriers a block: the next block's stage_block writes blk_* only after the barrier that
  // ends this block's steps (their last reader), and its steps write partial only after its
  // opening barrier, which every thread reaches after its reduction of this block.
  var blk = fetch_block(l, lid, t_begin, t_end, true);
  var out = fetch_out(t_begin + j_out, t_end, d_out);
  for (var t0 = t_begin; t0 < t_end; t0 += STATE_LANES) {
    let delta_lane = stage_block(blk, l, lid, t0, t_end);
    if (TRACE_DELTA && l.live && t0 + l.lane < t_end) {
      delta_out[(t0 + l.lane) * Di + l.d] = delta_lane;
    }
    let out_xz = out;
    workgroupBarrier();
    let t_next = t0 + STATE_LANES;
    if (t_next < t_end) {
      blk = fetch_block(l, lid, t_next, t_end, true);
      out = fetch_out(t_next + j_out, t_end, d_out);
    }
    for (var j = 0u; j < STATE_LANES; j++) {
      let t = t0 + j;
      var p = 0.0;
      if (l.live && t < t_end) {
        p = advance_block(l, &c, t, j, blk_step[first_lane + j]);
      }
      partial[j * row + lid] = p;
    }
    workgroupBarrier();
    let t = t0 + j_out;
    if (d_out < Di && t < t_end) {
      var sum_sc = 0.0;
      let first = j_out * row + col * STATE_LANES;
      for (var i = 0u; i < STATE_LANES; i++) {
        sum_sc += partial[first + i];
      }
      y[t * Di + d_out] = gated_output_xz(d_out, sum_sc, out_xz.x, out_xz.y);
    }
  }

  if (params.write_state != 0u) {
    for (var k = 0u; k < STATES_PER_LANE; k++) {
      let n = state_index(l, k);
      if (n < params.states) {
        state[base + n] = c.s[k];
      }
    }
  }
}

const SERIAL_MAX_STATES: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_serial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let Di = params.channels;
  let N = params.states;
  let d = wg.x * WORKGROUP_SIZE + lid;
  if (d >= Di) {
    return;
  }
  var a: array<f32, SERIAL_MAX_STATES>;
  var s: array<f32, SERIAL_MAX_STATES>;
  for (var n = 0u; n < N; n++) {
    a[n] = -exp(weights[d * N + n]);
    s[n] = state[d * N + n];
  }
  let dt_bias = weights[Di * N + Di + d];
  let chunks = params.chunks;
  for (var chunk = 0u; chunk < chunks; chunk++) {
    let t_begin = chunk * CHUNK_LEN;
    let t_end = min(t_begin + CHUNK_LEN, params.tokens);
    var end: array<f32, SERIAL_MAX_STATES>;
    if (chunks > 1u) {
      // chunk_summary: the end state from zero and ΣΔ; combine_chunks: the carried state.
      for (var n = 0u; n < N; n++) {
        end[n] = 0.0;
      }
      var delta_sum = 0.0;
      for (var t = t_begin; t < t_end; t++) {
        let delta = softplus(dt_raw[t * Di + d] + dt_bias);
        delta_sum += delta;
        let dx = delta * x[t * Di + d];
        for (var n = 0u; n < N; n++) {
          end[n] = exp(delta * a[n]) * end[n] + dx * bc[params.b_offset + t * params.b_stride + n];
        }
      }
      for (var n = 0u; n < N; n++) {
        end[n] = exp(a[n] * delta_sum) * s[n] + end[n];
      }
    }
    // scan: y from the chunk's start state s.
    var r = s;
    for (var t = t_begin; t < t_end; t++) {
      let delta = softplus(dt_raw[t * Di + d] + dt_bias);
      if (TRACE_DELTA) {
        delta_out[t * Di + d] = delta;
      }
      let dx = delta * x[t * Di + d];
      var p = 0.0;
      for (var n = 0u; n < N; n++) {
        let v = exp(delta * a[n]) * r[n] + dx * bc[params.b_offset + t * params.b_stride + n];
        r[n] = v;
        p += v * bc[params.c_offset + t * params.c_stride + n];
      }
      y[t * Di + d] = gated_output(t, d, p);
    }
    if (chunks > 1u) {
      s = end;
    } else {
      s = r;
    }
  }
  for (var n = 0u; n < N; n++) {
    state[d * N + n] = s[n];
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn chunk_summary(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let l = lane_of(wg.x, lid);
  let Di = params.channels;
  let chunk = wg.y;
  let t_begin = chunk * CHUNK_LEN;
  let t_end = min(t_begin + CHUNK_LEN, params.tokens);
  var c = columns_from_zero(l);
  var delta_sum = 0.0;
  let first_lane = lid - l.lane;
  var blk = fetch_block(l, lid, t_begin, t_end, false);
  for (var t0 = t_begin; t0 < t_end; t0 += STATE_LANES) {
    stage_block(blk, l, lid, t0, t_end);
    workgroupBarrier();
    let t_next = t0 + STATE_LANES;
    if (t_next < t_end) {
      blk = fetch_block(l, lid, t_next, t_end, false);
    }
    for (var j = 0u; j < STATE_LANES; j++) {
      let t = t0 + j;
      if (l.live && t < t_end) {
        let step = blk_step[first_lane + j];
        delta_sum += step.x;
        advance_block(l, &c, t, j, step);
      }
    }
    workgroupBarrier();
  }
  if (!l.live) {
    return;
  }
  let base = chunk * Di * params.states + l.d * params.states;
  for (var k = 0u; k < STATES_PER_LANE; k++) {
    let n = state_index(l, k);
    if (n < params.states) {
      summary[base + n] = c.s[k];
    }
  }
  if (l.lane == 0u) {
    summary[params.chunks * Di * params.states + chunk * Di + l.d] = delta_sum;
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn combine_chunks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let l = lane_of(wg.x, lid);
  if (!l.live) {
    return;
  }
  let Di = params.channels;
  let N = params.states;
  let sums = params.chunks * Di * N;
  for (var k = 0u; k < STATES_PER_LANE; k++) {
    let n = state_index(l, k);
    if (n < N) {
      let a = -exp(weights[l.d * N + n]);
      var h = state[l.d * N + n];
      for (var chunk = 0u; chunk < params.chunks; chunk++) {
        let i = chunk * Di * N + l.d * N + n;
        let local_end = summary[i];
        summary[i] = h;  // the chunk's start state
        h = exp(a * summary[sums + chunk * Di + l.d]) * h + local_end;
      }
      state[l.d * N + n] = h;
    }
  }
}

// ---- Prefill with a channel a thread (tuning.prefillScan 'channel'; N ≤ 16) ----
//
// The lanes kernels above give a channel STATE_LANES threads, one state each, and add a token's
// Σ_n state·C over the lanes through workgroup memory. Here a thread owns all the N ≤ 16 states of
// one channel (d = workgroup_id.x · WORKGROUP_SIZE + local index) over one chunk (workgroup_id.y),
// as four vec4 (CH_VECS of them live; states n ≥ N have A = 0, B = C = 0 and stay 0), so a token's
// step is vector arithmetic in registers and y needs no reduction between threads. The prefill is
// always chunked (channel_summary, combine_chunks, channel_scan: the three passes above), since a
// thread a channel alone would leave the GPU mostly idle; its chunks bring the threads to a full
// GPU (app/kernels/selective-scan.ts scanChunkLength).
// Loads: a stage of CH_STAGE tokens' B and C goes through workgroup memory as vec4 (every thread
// reads the same token's, so a token costs 8 broadcast vec4 reads), fetched into registers one
// stage ahead; a thread's dt, x (and z) are loaded four tokens at a time, one group of four ahead.
// No arrays in the loop (the causal conv's main_k4 measured why).

override CH_VECS: u32 = 4u;  // ceil(N / 4)
const CH_STAGE: u32 = 16u;   // tokens of B and C a stage: CH_STAGE · 8 vec4 = 2 a thread at WORKGROUP_SIZE 64
var<workgroup> ch_bc: array<vec4<f32>, 128>;  // token j of the stage: B at [8j .. 8j + 3], C at [8j + 4 .. 8j + 7]

struct Sixteen {
  q0: vec4<f32>,
  q1: vec4<f32>,
  q2: vec4<f32>,
  q3: vec4<f32>,
}

// A's or a state's four elements n .. n + 3 of a live channel (n ≥ N → 0). Two functions, so that
// each entry point uses only the bindings of its layout.
fn ch_a_at(base: u32, n: u32) -> f32 {
  if (n >= params.states) {
    return 0.0;
  }
  return -exp(weights[base + n]);
}

fn ch_state_at(base: u32, n: u32) -> f32 {
  if (n >= params.states) {
    return 0.0;
  }
  return state[base + n];
}

fn ch_a_row(base: u32, n: u32) -> vec4<f32> {
  return vec4<f32>(ch_a_at(base, n), ch_a_at(base, n + 1u), ch_a_at(base, n + 2u), ch_a_at(base, n + 3u));
}

fn ch_state_row(base: u32, n: u32) -> vec4<f32> {
  return vec4<f32>(ch_state_at(base, n), ch_state_at(base, n + 1u), ch_state_at(base, n + 2u), ch_state_at(base, n + 3u));
}

fn ch_zero() -> Sixteen {
  return Sixteen(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
}

// A for channel d (zeros for a spare thread).
fn ch_a(live: bool, d: u32) -> Sixteen {
  var r = ch_zero();
  if (live) {
    let base = d * params.states;
    r.q0 = ch_a_row(base, 0u);
    if (CH_VECS > 1u) { r.q1 = ch_a_row(base, 4u); }
    if (CH_VECS > 2u) { r.q2 = ch_a_row(base, 8u); }
    if (CH_VECS > 3u) { r.q3 = ch_a_row(base, 12u); }
  }
  return r;
}

// The states at state[base + n] (zeros for a spare thread).
fn ch_state(live: bool, base: u32) -> Sixteen {
  var r = ch_zero();
  if (live) {
    r.q0 = ch_state_row(base, 0u);
    if (CH_VECS > 1u) { r.q1 = ch_state_row(base, 4u); }
    if (CH_VECS > 2u) { r.q2 = ch_state_row(base, 8u); }
    if (CH_VECS > 3u) { r.q3 = ch_state_row(base, 12u); }
  }
  return r;
}

// Element n of s.
fn ch_elem(s: Sixteen, n: u32) -> f32 {
  let q = n / 4u;
  return select(select(select(s.q3, s.q2, q == 2u), s.q1, q == 1u), s.q0, q == 0u)[n % 4u];
}

// s's elements n < N at state[base + n], or summary[base + n] (two functions, for the layouts).
// Once a thread, so a loop.
fn ch_store_state(s: Sixteen, base: u32) {
  for (var n = 0u; n < params.states; n++) {
    state[base + n] = ch_elem(s, n);
  }
}

fn ch_store_summary(s: Sixteen, base: u32) {
  for (var n = 0u; n < params.states; n++) {
    summary[base + n] = ch_elem(s, n);
  }
}

// Slot e (< CH_STAGE · 8) of the stage of tokens from t0: token t0 + e / 8, B's (e % 8 < 4) or
// C's vec4 number e % 4 (states 4·(e % 4) .. + 3); zeros past t_end or N.
fn ch_fetch(e: u32, t0: u32, t_end: u32) -> vec4<f32> {
  let t = t0 + e / 8u;
  let n = (e % 4u) * 4u;
  let N = params.states;
  var v = vec4<f32>(0.0);
  if (t < t_end && n < N) {
    let at = select(params.b_offset + t * params.b_stride, params.c_offset + t * params.c_stride, (e % 8u) >= 4u) + n;
    v.x = bc[at];
    if (n + 1u < N) { v.y = bc[at + 1u]; }
    if (n + 2u < N) { v.z = bc[at + 2u]; }
    if (n + 3u < N) { v.w = bc[at + 3u]; }
  }
  return v;
}

// Tokens t .. t + 3 of channel d: dt_raw (from_x false) or x, both [T, Di] and bound to both
// channel kernels; z (ch_z4) through its strided view. 0 past t_end or for a spare thread.
fn ch_at(from_x: bool, row: u32, d: u32) -> f32 {
  let i = row * params.channels + d;
  if (from_x) {
    return x[i];
  }
  return dt_raw[i];
}

fn ch_quad(from_x: bool, t: u32, t_end: u32, d: u32, live: bool) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  if (live && t < t_end) { v.x = ch_at(from_x, t, d); }
  if (live && t + 1u < t_end) { v.y = ch_at(from_x, t + 1u, d); }
  if (live && t + 2u < t_end) { v.z = ch_at(from_x, t + 2u, d); }
  if (live && t + 3u < t_end) { v.w = ch_at(from_x, t + 3u, d); }
  return v;
}

fn ch_z4(t: u32, t_end: u32, d: u32, live: bool) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  let at = params.z_offset + t * params.z_stride + d;
  let stride = params.z_stride;
  if (live && t < t_end) { v.x = z[at]; }
  if (live && t + 1u < t_end) { v.y = z[at + stride]; }
  if (live && t + 2u < t_end) { v.z = z[at + 2u * stride]; }
  if (live && t + 3u < t_end) { v.w = z[at + 3u * stride]; }
  return v;
}

// One token (staged at slot 8j): state ← exp(Δ·A) ∘ state + Δ·x · B.
fn ch_advance(a: Sixteen, s: ptr<function, Sixteen>, j: u32, delta: f32, dx: f32) {
  let k = 8u * j;
  (*s).q0 = exp(delta * a.q0) * (*s).q0 + dx * ch_bc[k];
  if (CH_VECS > 1u) { (*s).q1 = exp(delta * a.q1) * (*s).q1 + dx * ch_bc[k + 1u]; }
  if (CH_VECS > 2u) { (*s).q2 = exp(delta * a.q2) * (*s).q2 + dx * ch_bc[k + 2u]; }
  if (CH_VECS > 3u) { (*s).q3 = exp(delta * a.q3) * (*s).q3 + dx * ch_bc[k + 3u]; }
}

// Σ_n state · C of the token staged at slot 8j.
fn ch_read(s: Sixteen, j: u32) -> f32 {
  let k = 8u * j + 4u;
  var p = dot(s.q0, ch_bc[k]);
  if (CH_VECS > 1u) { p += dot(s.q1, ch_bc[k + 1u]); }
  if (CH_VECS > 2u) { p += dot(s.q2, ch_bc[k + 2u]); }
  if (CH_VECS > 3u) { p += dot(s.q3, ch_bc[k + 3u]); }
  return p;
}

// A thread's channel in the channel kernels (its chunk's tokens come from the workgroup alone).
struct ChChunk {
  d: u32,
  live: bool,
  chunk: u32,
  bias: f32,
}

fn ch_chunk(wg: vec3<u32>, lid: u32) -> ChChunk {
  let d = wg.x * WORKGROUP_SIZE + lid;
  let live = d < params.channels;
  var bias = 0.0;
  if (live) {
    bias = weights[params.channels * params.states + params.channels + d];
  }
  return ChChunk(d, live, wg.y, bias);
}

// One token of channel_summary (stage slot j; dt, x its inputs): Σ Δ and the state.
fn ch_summary_token(c: ChChunk, a: Sixteen, s: ptr<function, Sixteen>, delta_sum: ptr<function, f32>, j: u32, dt: f32, xv: f32) {
  let delta = select(0.0, softplus(dt + c.bias), c.live);
  *delta_sum += delta;
  ch_advance(a, s, j, delta, delta * xv);
}

// One token of channel_scan (stage slot j, token t): the state, then y (and Δ).
fn ch_scan_token(c: ChChunk, a: Sixteen, s: ptr<function, Sixteen>, j: u32, t: u32, dt: f32, xv: f32, zv: f32) {
  let delta = select(0.0, softplus(dt + c.bias), c.live);
  ch_advance(a, s, j, delta, delta * xv);
  let p = ch_read(*s, j);
  if (c.live) {
    let row = t * params.channels + c.d;
    y[row] = gated_output_xz(c.d, p, xv, zv);
    if (TRACE_DELTA) {
      delta_out[row] = delta;
    }
  }
}

// Prefill pass 1 with a channel a thread: chunk_summary's end state from zero and Σ Δ.
@compute @workgroup_size(WORKGROUP_SIZE)
fn channel_summary(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = ch_chunk(wg, lid);
  let Di = params.channels;
  // The loop bounds from the workgroup alone (c holds per-thread values, so WGSL counts all of it non-uniform).
  let t_begin = wg.y * CHUNK_LEN;
  let t_end = min(t_begin + CHUNK_LEN, params.tokens);
  let a = ch_a(c.live, c.d);
  var s = ch_zero();
  var delta_sum = 0.0;
  var st0 = ch_fetch(lid, t_begin, t_end);
  var st1 = ch_fetch(lid + WORKGROUP_SIZE, t_begin, t_end);
  var dt4 = ch_quad(false, t_begin, t_end, c.d, c.live);
  var x4 = ch_quad(true, t_begin, t_end, c.d, c.live);
  for (var t0 = t_begin; t0 < t_end; t0 += CH_STAGE) {
    ch_bc[lid] = st0;
    ch_bc[lid + WORKGROUP_SIZE] = st1;
    workgroupBarrier();
    let t_next = t0 + CH_STAGE;
    if (t_next < t_end) {
      st0 = ch_fetch(lid, t_next, t_end);
      st1 = ch_fetch(lid + WORKGROUP_SIZE, t_next, t_end);
    }
    let stage_end = min(t_next, t_end);
    for (var t = t0; t < stage_end; t += 4u) {
      let dt_cur = dt4;
      let x_cur = x4;
      dt4 = ch_quad(false, t + 4u, t_end, c.d, c.live);
      x4 = ch_quad(true, t + 4u, t_end, c.d, c.live);
      let j = t - t0;
      ch_summary_token(c, a, &s, &delta_sum, j, dt_cur.x, x_cur.x);
      if (t + 1u < stage_end) { ch_summary_token(c, a, &s, &delta_sum, j + 1u, dt_cur.y, x_cur.y); }
      if (t + 2u < stage_end) { ch_summary_token(c, a, &s, &delta_sum, j + 2u, dt_cur.z, x_cur.z); }
      if (t + 3u < stage_end) { ch_summary_token(c, a, &s, &delta_sum, j + 3u, dt_cur.w, x_cur.w); }
    }
    workgroupBarrier();
  }
  if (!c.live) {
    return;
  }
  ch_store_summary(s, c.chunk * Di * params.states + c.d * params.states);
  summary[params.chunks * Di * params.states + c.chunk * Di + c.d] = delta_sum;
}

// Prefill pass 3 with a channel a thread (or the whole prefill when it is one chunk): the chunk
// from its start state (state[chunk · Di · N + d · N + n]: the summaries after combine_chunks, or
// the state itself), writing y (and Δ with TRACE_DELTA); the end state back with write_state.
@compute @workgroup_size(WORKGROUP_SIZE)
fn channel_scan(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = ch_chunk(wg, lid);
  let t_begin = wg.y * CHUNK_LEN;
  let t_end = min(t_begin + CHUNK_LEN, params.tokens);
  let base = c.chunk * params.channels * params.states + c.d * params.states;
  let a = ch_a(c.live, c.d);
  var s = ch_state(c.live, base);
  var st0 = ch_fetch(lid, t_begin, t_end);
  var st1 = ch_fetch(lid + WORKGROUP_SIZE, t_begin, t_end);
  var dt4 = ch_quad(false, t_begin, t_end, c.d, c.live);
  var x4 = ch_quad(true, t_begin, t_end, c.d, c.live);
  var z4 = ch_z4(t_begin, t_end, c.d, c.live);
  for (var t0 = t_begin; t0 < t_end; t0 += CH_STAGE) {
    ch_bc[lid] = st0;
    ch_bc[lid + WORKGROUP_SIZE] = st1;
    workgroupBarrier();
    let t_next = t0 + CH_STAGE;
    if (t_next < t_end) {
      st0 = ch_fetch(lid, t_next, t_end);
      st1 = ch_fetch(lid + WORKGROUP_SIZE, t_next, t_end);
    }
    let stage_end = min(t_next, t_end);
    for (var t = t0; t < stage_end; t += 4u) {
      let dt_cur = dt4;
      let x_cur = x4;
      let z_cur = z4;
      dt4 = ch_quad(false, t + 4u, t_end, c.d, c.live);
      x4 = ch_quad(true, t + 4u, t_end, c.d, c.live);
      z4 = ch_z4(t + 4u, t_end, c.d, c.live);
      let j = t - t0;
      ch_scan_token(c, a, &s, j, t, dt_cur.x, x_cur.x, z_cur.x);
      if (t + 1u < stage_end) { ch_scan_token(c, a, &s, j + 1u, t + 1u, dt_cur.y, x_cur.y, z_cur.y); }
      if (t + 2u < stage_end) { ch_scan_token(c, a, &s, j + 2u, t + 2u, dt_cur.z, x_cur.z, z_cur.z); }
      if (t + 3u < stage_end) { ch_scan_token(c, a, &s, j + 3u, t + 3u, dt_cur.w, x_cur.w, z_cur.w); }
    }
    workgroupBarrier();
  }
  if (c.live && params.write_state != 0u) {
    ch_store_state(s, base);
  }
}
