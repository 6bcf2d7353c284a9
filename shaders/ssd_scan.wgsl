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
//   chunk_cumsum   Δ and S per (token, head), into `cums` (and Δ into delta_out when TRACE_DELTA).
//   chunk_states   each chunk's end state from zero: Σ_s exp(S_end − S_s) · Δ_s · x_s ⊗ B_s.
//   state_passing  a sequential scan over chunks per (h, p, n): start_k = h; h = exp(S_end,k)·h + local_k.
//                  Start states overwrite the local states; the final state goes to `state`.
//   chunk_scan     y[t] = exp(S_t) · C_t · start_k  +  Σ_{s ≤ t in chunk} (C_t·B_s) · exp(S_t − S_s) · Δ_s · x_s
//                  + D · x_t; the C_t·B_s products of a block of WORKGROUP_SIZE tokens s go through
//                  workgroup memory. No T × H × P × N tensor is ever written.
// Decode:
//   step           T = 1: one workgroup per head updates state[h] in place and writes y.

override WORKGROUP_SIZE: u32 = 64u;
override CHUNK_LEN: u32 = 64u;        // tokens per chunk in prefill
override ROWS_PER_THREAD: u32 = 1u;   // ceil(P / WORKGROUP_SIZE), ≤ MAX_ROWS_PER_THREAD
override TRACE_DELTA: bool = false;   // also write Δ to delta_out

const MAX_ROWS_PER_THREAD: u32 = 4u;

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
  pad0: u32,
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

// chunk_scan: (C_t · B_s) · exp(S_t − S_s) · Δ_s for a block of tokens s.
var<workgroup> weight_s: array<f32, WORKGROUP_SIZE>;

// log(1 + u) for u in [0, 1]: a series where log(1 + u) would lose digits to rounding.
fn log1p_unit(u: f32) -> f32 {
  if (u < 0.25) {
    return u * (1.0 - u * (1.0 / 2.0 - u * (1.0 / 3.0 - u * (1.0 / 4.0 - u * (1.0 / 5.0 - u * (1.0 / 6.0
      - u * (1.0 / 7.0 - u * (1.0 / 8.0 - u * (1.0 / 9.0 - u * (1.0 / 10.0 - u / 11.0))))))))));
  }
  return log(1.0 + u);
}

// softplus(v) = max(v, 0) + log(1 + e^−|v|); v itself above 20. 0 (not NaN) when e^−|v| underflows.
fn softplus(v: f32) -> f32 {
  if (v > 20.0) {
    return v;
  }
  return max(v, 0.0) + log1p_unit(exp(-abs(v)));
}

fn delta_of(t: u32, h: u32) -> f32 {
  let H = params.heads;
  var d = max(softplus(dt[params.dt_offset + t * params.dt_stride + h] + weights[2u * H + h]), params.dt_min);
  if (params.has_max != 0u) {
    d = min(d, params.dt_max);
  }
  return d;
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wg.x;
  let P = params.head_dim;
  let N = params.states;
  let g = group_of(h);
  let delta = delta_of(0u, h);
  if (TRACE_DELTA && lid == 0u) {
    delta_out[h] = delta;
  }
  let decay = exp(delta * a_of(h));
  let skip = weights[params.heads + h];
  for (var p = lid; p < P; p += WORKGROUP_SIZE) {
    let xv = x_at(0u, h, p);
    let dx = delta * xv;
    let base = (h * P + p) * N;
    var acc = 0.0;
    for (var n = 0u; n < N; n++) {
      let s = decay * state[base + n] + dx * b_at(0u, g, n);
      state[base + n] = s;
      acc += s * c_at(0u, g, n);
    }
    y[h * P + p] = acc + skip * xv;
  }
}

// One thread per (chunk, head).
@compute @workgroup_size(WORKGROUP_SIZE)
fn chunk_cumsum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let T = params.tokens;
  let e = linear_group(wg, nwg) * WORKGROUP_SIZE + lid;
  if (e >= params.chunks * H) {
    return;
  }
  let chunk = e / H;
  let h = e % H;
  let a = a_of(h);
  let t_end = min((chunk + 1u) * CHUNK_LEN, T);
  var s = 0.0;
  for (var t = chunk * CHUNK_LEN; t < t_end; t++) {
    let delta = delta_of(t, h);
    s += delta * a;
    cums[t * H + h] = delta;
    cums[T * H + t * H + h] = s;
    if (TRACE_DELTA) {
      delta_out[t * H + h] = delta;
    }
  }
}

// Workgroups (tile of P·N, head, chunk); one thread per state element (p, n).
@compute @workgroup_size(WORKGROUP_SIZE)
fn chunk_states(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let P = params.head_dim;
  let N = params.states;
  let T = params.tokens;
  let e = wg.x * WORKGROUP_SIZE + lid;
  if (e >= P * N) {
    return;
  }
  let p = e / N;
  let n = e % N;
  let h = wg.y;
  let chunk = wg.z;
  let g = group_of(h);
  let t_begin = chunk * CHUNK_LEN;
  let t_end = min(t_begin + CHUNK_LEN, T);
  let s_end = cums[T * H + (t_end - 1u) * H + h];
  var acc = 0.0;
  for (var t = t_begin; t < t_end; t++) {
    let w = exp(s_end - cums[T * H + t * H + h]) * cums[t * H + h];
    acc += w * x_at(t, h, p) * b_at(t, g, n);
  }
  chunk_state[((chunk * H + h) * P + p) * N + n] = acc;
}

// One thread per state element (h, p, n); workgroups folded into 2-D.
@compute @workgroup_size(WORKGROUP_SIZE)
fn state_passing(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let T = params.tokens;
  let per_head = params.head_dim * params.states;
  let e = linear_group(wg, nwg) * WORKGROUP_SIZE + lid;
  if (e >= H * per_head) {
    return;
  }
  let h = e / per_head;
  var s = state[e];
  for (var chunk = 0u; chunk < params.chunks; chunk++) {
    let t_last = min((chunk + 1u) * CHUNK_LEN, T) - 1u;
    let i = chunk * H * per_head + e;
    let local_end = chunk_state[i];
    chunk_state[i] = s;  // the chunk's start state
    s = exp(cums[T * H + t_last * H + h]) * s + local_end;
  }
  state[e] = s;
}

// Workgroups (token, head, token fold); threads over p (ROWS_PER_THREAD rows each).
@compute @workgroup_size(WORKGROUP_SIZE)
fn chunk_scan(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let H = params.heads;
  let P = params.head_dim;
  let N = params.states;
  let T = params.tokens;
  let t = wg.z * nwg.x + wg.x;
  if (t >= T) {
    return;  // uniform across the workgroup
  }
  let h = wg.y;
  let g = group_of(h);
  let chunk = t / CHUNK_LEN;
  let s_t = cums[T * H + t * H + h];

  // The state-to-output term: exp(S_t) · Σ_n C_t[n] · start[p, n].
  var acc: array<f32, MAX_ROWS_PER_THREAD>;
  let start = (chunk * H + h) * P * N;
  let decay = exp(s_t);
  for (var r = 0u; r < ROWS_PER_THREAD; r++) {
    let p = lid + r * WORKGROUP_SIZE;
    if (p < P) {
      var dot = 0.0;
      for (var n = 0u; n < N; n++) {
        dot += c_at(t, g, n) * chunk_state[start + p * N + n];
      }
      acc[r] = decay * dot;
    }
  }

  // The intra-chunk term, WORKGROUP_SIZE source tokens s at a time.
  for (var s0 = chunk * CHUNK_LEN; s0 <= t; s0 += WORKGROUP_SIZE) {
    let s = s0 + lid;
    var w = 0.0;
    if (s <= t) {
      var cb = 0.0;
      for (var n = 0u; n < N; n++) {
        cb += c_at(t, g, n) * b_at(s, g, n);
      }
      w = cb * exp(s_t - cums[T * H + s * H + h]) * cums[s * H + h];
    }
    weight_s[lid] = w;
    workgroupBarrier();
    let count = min(WORKGROUP_SIZE, t + 1u - s0);
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
      let p = lid + r * WORKGROUP_SIZE;
      if (p < P) {
        var sum = 0.0;
        for (var j = 0u; j < count; j++) {
          sum += weight_s[j] * x_at(s0 + j, h, p);
        }
        acc[r] += sum;
      }
    }
    workgroupBarrier();
  }

  let skip = weights[H + h];
  for (var r = 0u; r < ROWS_PER_THREAD; r++) {
    let p = lid + r * WORKGROUP_SIZE;
    if (p < P) {
      y[t * H * P + h * P + p] = acc[r] + skip * x_at(t, h, p);
    }
  }
}
