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

override WORKGROUP_SIZE: u32 = 64u;   // a multiple of STATE_LANES
override STATE_LANES: u32 = 16u;      // lanes per channel: a power of two, ≤ 32
override STATES_PER_LANE: u32 = 1u;   // ceil(N / STATE_LANES), ≤ MAX_STATES_PER_LANE
override CHUNK_LEN: u32 = 64u;        // tokens per chunk in prefill
override TRACE_DELTA: bool = false;   // also write Δ to delta_out
override TRACE_SUMMARY: bool = false; // step, step_dt (with TRACE_DELTA): also the step's summary terms after Δ in delta_out (step_summary)
override DT_F16: bool = false;        // step_dt: dt_w holds packed f16 halves
override DT_BF16: bool = false;       // step_dt: dt_w holds packed bf16 halves
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
  dt_rank: u32,      // step_dt: R
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

// The end of a one-token step (step, step_dt): the channel's lanes add their parts of C·state
// into y[d] (with the skip and the gate), and the state goes back to memory.
fn finish_step(l: Lane, c: Columns, p: f32, lid: u32, base: u32) {
  partial[lid] = p;
  workgroupBarrier();
  if (l.live && l.lane == 0u) {
    var sum_sc = 0.0;
    for (var i = 0u; i < STATE_LANES; i++) {
      sum_sc += partial[lid + i];
    }
    y[l.d] = gated_output(0u, l.d, sum_sc);
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
  var p = 0.0;
  var delta = 0.0;
  if (l.live) {
    delta = delta_at(l, 0u);
    p = advance(l, &c, 0u, delta);
  }
  finish_step(l, c, p, lid, base);
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
    p = advance(l, &c, 0u, delta);
  }
  finish_step(l, c, p, lid, base);
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
