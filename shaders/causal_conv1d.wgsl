// causal_conv1d: Mamba's depthwise causal convolution over time, with its bias, the SiLU after
// it, and the conv state carried between calls (prefill of any T, and the one-token decode step).
//
//   out[t, d] = silu( bias[d] + Σ_{k=0..K-1} w[d, k] · xin(t - (K-1) + k, d) )
//   xin(s, d) = x[s, d]                  for s ≥ 0   (this call's inputs)
//             = conv_state[d, K-1 + s]   for s < 0   (the last K-1 inputs of the previous call;
//                                                    zeros at the start of a sequence)
//   afterwards: conv_state[d, j] = xin(T - (K-1) + j, d), j = 0..K-2  (the last K-1 inputs)
//
// Symbols: T = tokens, C = channels (d_inner), K = KERNEL_SIZE (d_conv, 2..8). x is a strided
// view: element (t, d) is x[x_offset + t * x_stride + d] (e.g. the x half of in_proj's output,
// stride 2·Di); out likewise (out_offset, out_stride). fp32 throughout.
//
// Work split: one thread per (channel, chunk of chunk_len consecutive tokens), channels along x
// (coalesced), chunks along y. A thread reads the K-1 inputs before its chunk from x, or, for
// chunk 0, from the old state. Because chunk_len ≥ K-1, only chunk 0 ever reads conv_state[d, ·],
// and the same thread writes the new state after it has read the old one: the update is safe
// inside this one dispatch.

override WORKGROUP_SIZE: u32 = 64u;
override KERNEL_SIZE: u32 = 4u;  // K
const MAX_KERNEL_SIZE: u32 = 8u;
const SUB: u32 = 16u;  // tokens whose inputs are loaded together

struct Params {
  tokens: u32,        // T
  channels: u32,      // C
  x_offset: u32,      // elements
  x_stride: u32,      // elements between rows of x (≥ C)
  out_offset: u32,    // elements
  out_stride: u32,    // elements between rows of out (≥ C)
  state_offset: u32,  // elements: conv_state[d, j] is state[state_offset + d·(K-1) + j]
  chunk_len: u32,     // tokens per thread (≥ K-1)
  has_bias: u32,      // 1: add bias[d]
  no_silu: u32,       // 1: no SiLU after the conv (mamba_ssm MHA's conv over q | k | v)
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;                // view [T, C] (x_offset, x_stride)
@group(0) @binding(2) var<storage, read> weight: array<f32>;           // [C, K] (conv1d.weight [C, 1, K])
@group(0) @binding(3) var<storage, read> bias: array<f32>;             // [C] (any buffer when has_bias = 0)
@group(0) @binding(4) var<storage, read_write> conv_state: array<f32>; // [C, K-1] at state_offset; in: previous inputs, out: last K-1 inputs
@group(0) @binding(5) var<storage, read_write> output: array<f32>;     // view [T, C] (out_offset, out_stride)

// silu: shaders/sigmoid.wgsl, prepended by the op.

fn x_at(t: u32, d: u32) -> f32 {
  return x[params.x_offset + t * params.x_stride + d];
}

// An invocation's channel d and tokens [t0, t1) (both kernels); t1 = 0 where it has none.
struct Span {
  d: u32,
  t0: u32,
  t1: u32,
}

fn span(wg: vec3<u32>, lid: u32) -> Span {
  let d = wg.x * WORKGROUP_SIZE + lid;
  let t0 = wg.y * params.chunk_len;
  if (d >= params.channels || t0 >= params.tokens) {
    return Span(d, 0u, 0u);
  }
  return Span(d, t0, min(t0 + params.chunk_len, params.tokens));
}

fn bias_at(d: u32) -> f32 {
  return select(0.0, bias[d], params.has_bias != 0u);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let T = params.tokens;
  let sp = span(wg, lid);
  if (sp.t1 == 0u) {
    return;
  }
  let d = sp.d;
  let t0 = sp.t0;
  let t1 = sp.t1;
  let history = KERNEL_SIZE - 1u;  // K-1 ≥ 1
  let first_chunk = wg.y == 0u;
  let state_base = params.state_offset + d * history;

  var w: array<f32, MAX_KERNEL_SIZE>;
  for (var k = 0u; k < KERNEL_SIZE; k++) {
    w[k] = weight[d * KERNEL_SIZE + k];
  }
  let b = bias_at(d);
  // old[j] = conv_state[d, j] (chunk 0 only: the one reader and writer of this channel's state)
  var old: array<f32, MAX_KERNEL_SIZE>;
  if (first_chunk) {
    for (var j = 0u; j < history; j++) {
      old[j] = conv_state[state_base + j];
    }
  }
  // window[j] = xin(t - (K-1) + j) for the current t, j = 0..K-2
  var window: array<f32, MAX_KERNEL_SIZE>;
  for (var j = 0u; j < history; j++) {
    let s = i32(t0) - i32(history) + i32(j);
    if (s >= 0) {
      window[j] = x_at(u32(s), d);
    } else {
      window[j] = old[u32(i32(history) + s)];  // s < 0 only when t0 = 0, i.e. chunk 0
    }
  }
  // SUB tokens at a time: their inputs are all loaded before the arithmetic (a loop of constant
  // length the compiler unrolls), so their latencies overlap instead of one token waiting for the next.
  for (var tb = t0; tb < t1; tb += SUB) {
    var xs: array<f32, SUB>;
    for (var i = 0u; i < SUB; i++) {
      xs[i] = 0.0;
      if (tb + i < t1) {
        xs[i] = x_at(tb + i, d);
      }
    }
    for (var i = 0u; i < SUB; i++) {
      let t = tb + i;
      if (t < t1) {
        let current = xs[i];
        var acc = b + w[history] * current;
        for (var k = 0u; k < history; k++) {
          acc += w[k] * window[k];
        }
        output[params.out_offset + t * params.out_stride + d] = select(silu(acc), acc, params.no_silu != 0u);
        for (var k = 0u; k + 1u < history; k++) {
          window[k] = window[k + 1u];
        }
        window[history - 1u] = current;
      }
    }
  }
  if (first_chunk) {
    // The new state: the last K-1 inputs, from x and, when T < K-1, from the old state.
    for (var j = 0u; j < history; j++) {
      let s = i32(T) - i32(history) + i32(j);
      if (s >= 0) {
        conv_state[state_base + j] = x_at(u32(s), d);
      } else {
        conv_state[state_base + j] = old[u32(i32(history) + s)];
      }
    }
  }
}

// main_k4: the same outputs and state for KERNEL_SIZE = 4 (every Mamba checkpoint's d_conv) with
// no arrays: the weights a vec4, the window the last three inputs a vec3, and a thread's 16 tokens
// loaded as four vec4 before their arithmetic, so nothing depends on the compiler unrolling loops
// over arrays to keep them in registers. The sums in main's order (the bias and the current
// input's term, then the window's oldest to newest), so both give the same floats.
fn xin_k4(s: i32, d: u32, old: vec3<f32>) -> f32 {
  if (s >= 0) {
    return x_at(u32(s), d);
  }
  return select(select(old.x, old.y, s == -2), old.z, s == -1);  // s ∈ {-3, -2, -1}: chunk 0 only
}

fn load4_k4(t: u32, t1: u32, d: u32) -> vec4<f32> {
  var q = vec4<f32>(0.0);
  if (t < t1) { q.x = x_at(t, d); }
  if (t + 1u < t1) { q.y = x_at(t + 1u, d); }
  if (t + 2u < t1) { q.z = x_at(t + 2u, d); }
  if (t + 3u < t1) { q.w = x_at(t + 3u, d); }
  return q;
}

fn out_k4(t: u32, t1: u32, d: u32, acc: f32) {
  if (t < t1) {
    output[params.out_offset + t * params.out_stride + d] = select(silu(acc), acc, params.no_silu != 0u);
  }
}

// Tokens t .. t + 3 (inputs q) after the window h = (xin(t-3), xin(t-2), xin(t-1)); returns the next window.
fn emit4_k4(q: vec4<f32>, h: vec3<f32>, t: u32, t1: u32, d: u32, w: vec4<f32>, b: f32) -> vec3<f32> {
  out_k4(t, t1, d, b + w.w * q.x + w.x * h.x + w.y * h.y + w.z * h.z);
  out_k4(t + 1u, t1, d, b + w.w * q.y + w.x * h.y + w.y * h.z + w.z * q.x);
  out_k4(t + 2u, t1, d, b + w.w * q.z + w.x * h.z + w.y * q.x + w.z * q.y);
  out_k4(t + 3u, t1, d, b + w.w * q.w + w.x * q.x + w.y * q.y + w.z * q.z);
  return q.yzw;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_k4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let sp = span(wg, lid);
  if (sp.t1 == 0u) {
    return;
  }
  let d = sp.d;
  let first_chunk = wg.y == 0u;
  let state_base = params.state_offset + d * 3u;
  let w = vec4<f32>(weight[d * 4u], weight[d * 4u + 1u], weight[d * 4u + 2u], weight[d * 4u + 3u]);
  let b = bias_at(d);
  var old = vec3<f32>(0.0);
  if (first_chunk) {
    old = vec3<f32>(conv_state[state_base], conv_state[state_base + 1u], conv_state[state_base + 2u]);
  }
  let s0 = i32(sp.t0);
  var h = vec3<f32>(xin_k4(s0 - 3, d, old), xin_k4(s0 - 2, d, old), xin_k4(s0 - 1, d, old));
  for (var tb = sp.t0; tb < sp.t1; tb += 16u) {
    let q0 = load4_k4(tb, sp.t1, d);
    let q1 = load4_k4(tb + 4u, sp.t1, d);
    let q2 = load4_k4(tb + 8u, sp.t1, d);
    let q3 = load4_k4(tb + 12u, sp.t1, d);
    h = emit4_k4(q0, h, tb, sp.t1, d, w, b);
    h = emit4_k4(q1, h, tb + 4u, sp.t1, d, w, b);
    h = emit4_k4(q2, h, tb + 8u, sp.t1, d, w, b);
    h = emit4_k4(q3, h, tb + 12u, sp.t1, d, w, b);
  }
  if (first_chunk) {
    let sT = i32(params.tokens);
    conv_state[state_base] = xin_k4(sT - 3, d, old);
    conv_state[state_base + 1u] = xin_k4(sT - 2, d, old);
    conv_state[state_base + 2u] = xin_k4(sT - 1, d, old);
  }
}
