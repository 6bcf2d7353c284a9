// attention: causal grouped-query self-attention with a KV cache, for hybrid models' attention
// layers (app/kernels/attention.ts; reference attention.ref.ts). Symbols: T = tokens of this
// chunk, H = heads, Hkv = kv heads (q head h reads kv head h / (H / Hkv)), hd = head dim,
// R = rotary_half (rotaryDim / 2), len = cache_meta[0] = tokens already cached, cap = capacity.
// Token t of the chunk is at position p = len + t. fp32 throughout.
//
//   rope_append:    q[t] = rope(q rows, p), k = rope(k rows, p) → knew[t] and keys[p]; v → values[p];
//                   mask[p] = (t == knock_row). Positions ≥ cap are never written (cache_meta[1] := 1).
//   attend:         flash prefill: per (tile of Q_TILE query rows, head): key tiles in workgroup
//                   memory, online softmax; out[t, h] = Σ_j softmax_j(scale · q·k_j) v_j over
//                   j ≤ p, skipping j < p with mask[j] ≠ 0 (a knocked-out key).
//   decode_partial: split over keys for few rows: per (row, head, split of split_len keys) the
//                   split's max m, sum l and unnormalised Σ exp(s − m)·v into partials;
//   decode_combine: out = Σ_i e^(m_i − M) o_i / Σ_i e^(m_i − M) l_i.
//   advance:        len := min(len + T, cap) (cache_meta[1] := 1 when that clamps).
//   probs:          softmax probabilities [T, T] of one head for a traced prompt from position 0
//                   (q from pq, k from pk, optional mask), zeros where a query does not look.
//
// RoPE: pairs (i, i + R) (rotate_half) or (2i, 2i+1) (interleaved), angle p · θ^(−2i/rotaryDim),
// cos and sin from a table [cap, R, 2] made on the CPU in float64.

const Q_TILE: u32 = 16u;
const THREADS: u32 = 64u;
const KV_TILE_FLOATS: u32 = 1536u;  // keys (and values) of one tile: k_tile · hd ≤ this
const MAX_K_TILE: u32 = 32u;
const MAX_HEAD_DIM: u32 = 256u;
const MAX_SPLIT: u32 = 256u;
const NEG: f32 = -1.0e30;

struct Params {
  tokens: u32,
  n_heads: u32,
  n_kv_heads: u32,
  head_dim: u32,
  capacity: u32,
  rotary_half: u32,
  interleaved: u32,
  knock_row: u32,     // 0xffffffff: none
  qkv_offset: u32,
  qkv_stride: u32,
  splits: u32,
  split_len: u32,
  scale: f32,
  probs_head: u32,
  has_mask: u32,
  k_tile: u32,        // keys per tile of attend (≤ MAX_K_TILE, k_tile · hd ≤ KV_TILE_FLOATS)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;            // view [T, qDim + 2 kvDim] (qkv_offset, qkv_stride)
@group(0) @binding(2) var<storage, read> rope: array<f32>;           // [cap, R, 2] (cos, sin)
@group(0) @binding(3) var<storage, read_write> q: array<f32>;        // [T, H·hd] after RoPE
@group(0) @binding(4) var<storage, read_write> knew: array<f32>;     // [T, Hkv·hd] this chunk's keys after RoPE
@group(0) @binding(5) var<storage, read_write> keys: array<f32>;     // [cap, Hkv·hd]
@group(0) @binding(6) var<storage, read_write> values: array<f32>;   // [cap, Hkv·hd]
@group(0) @binding(7) var<storage, read_write> cache_meta: array<u32>;     // [len, overflowed, 0, 0]
@group(0) @binding(8) var<storage, read_write> mask: array<u32>;     // [cap] 1: a knocked-out key
@group(0) @binding(9) var<storage, read_write> out: array<f32>;      // [T, H·hd]
@group(0) @binding(10) var<storage, read_write> partials: array<f32>; // [T, H, splits, hd + 2] (m, l, o)
@group(0) @binding(11) var<storage, read_write> probs: array<f32>;   // [T, T]
@group(0) @binding(12) var<storage, read> pq: array<f32>;            // [T, H·hd]
@group(0) @binding(13) var<storage, read> pk: array<f32>;            // [T, Hkv·hd]
@group(0) @binding(14) var<storage, read> pmask: array<u32>;         // [T] (when has_mask)

// ---- rope_append: one thread per (row, column of the q | k | v row) ----

fn qkv_at(t: u32, c: u32) -> f32 {
  return qkv[params.qkv_offset + t * params.qkv_stride + c];
}

/** Column c (of a q or k part starting at `base`) after RoPE at position `pos`. */
fn rotated(t: u32, base: u32, c: u32, pos: u32) -> f32 {
  let hd = params.head_dim;
  let R = params.rotary_half;
  let d = c % hd;
  let x = qkv_at(t, base + c);
  if (d >= 2u * R) {
    return x;
  }
  var i: u32;
  var partner: u32;
  var first: bool;
  if (params.interleaved != 0u) {
    i = d / 2u;
    first = d % 2u == 0u;
    partner = select(d - 1u, d + 1u, first);
  } else {
    first = d < R;
    i = select(d - R, d, first);
    partner = select(d - R, d + R, first);
  }
  let y = qkv_at(t, base + c - d + partner);
  let at = (min(pos, params.capacity - 1u) * R + i) * 2u;
  let cs = rope[at];
  let sn = rope[at + 1u];
  // (a, b) → (a cos − b sin, b cos + a sin)
  return select(x * cs + y * sn, x * cs - y * sn, first);
}

@compute @workgroup_size(THREADS)
fn rope_append(@builtin(global_invocation_id) gid: vec3<u32>) {
  let hd = params.head_dim;
  let q_dim = params.n_heads * hd;
  let kv_dim = params.n_kv_heads * hd;
  let c = gid.x;
  let t = gid.y;
  if (c >= q_dim + 2u * kv_dim || t >= params.tokens) {
    return;
  }
  let pos = cache_meta[0] + t;
  let inside = pos < params.capacity;
  if (c == 0u) {
    if (inside) {
      mask[pos] = select(0u, 1u, t == params.knock_row);
    } else {
      cache_meta[1] = 1u;
    }
  }
  if (c < q_dim) {
    q[t * q_dim + c] = rotated(t, 0u, c, pos);
  } else if (c < q_dim + kv_dim) {
    let kc = c - q_dim;
    let v = rotated(t, q_dim, kc, pos);
    knew[t * kv_dim + kc] = v;
    if (inside) {
      keys[pos * kv_dim + kc] = v;
    }
  } else if (inside) {
    let vc = c - q_dim - kv_dim;
    values[pos * kv_dim + vc] = qkv_at(t, q_dim + kv_dim + vc);
  }
}

/** Whether query position p looks at key j (j < cap): causal, and not a knocked-out earlier key. */
fn visible(j: u32, p: u32) -> bool {
  return j <= p && j < params.capacity && (j == p || mask[j] == 0u);
}

// ---- attend: flash prefill ----

var<workgroup> tile_k: array<f32, KV_TILE_FLOATS>;
var<workgroup> tile_v: array<f32, KV_TILE_FLOATS>;
var<workgroup> scores: array<f32, 512>;  // [Q_TILE, MAX_K_TILE]
var<workgroup> shared_len: u32;

@compute @workgroup_size(THREADS)
fn attend(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hd = params.head_dim;
  let h = wg.y;
  let kvh = h / (params.n_heads / params.n_kv_heads);
  let q_dim = params.n_heads * hd;
  let kv_dim = params.n_kv_heads * hd;
  let kt = params.k_tile;
  let t0 = wg.x * Q_TILE;
  if (lid == 0u) {
    shared_len = cache_meta[0];
  }
  let len = workgroupUniformLoad(&shared_len);
  let r = lid / 4u;      // this thread's query row in the tile
  let sub = lid % 4u;    // and its quarter: keys sub, sub + 4, … for scores; dims sub, sub + 4, … for the output
  let t = t0 + r;
  let row_valid = t < params.tokens;
  let p = len + t;
  // Keys up to the tile's last query: len + min(t0 + Q_TILE, T) − 1, at most cap − 1.
  let last = min(len + min(t0 + Q_TILE, params.tokens) - 1u, params.capacity - 1u);
  var m = NEG;
  var l = 0.0;
  var acc: array<f32, 64>;  // dims sub + 4·i (hd ≤ 256)
  for (var i = 0u; i < 64u; i++) {
    acc[i] = 0.0;
  }
  for (var j0 = 0u; j0 <= last; j0 += kt) {
    workgroupBarrier();
    for (var e = lid; e < kt * hd; e += THREADS) {
      let j = j0 + e / hd;
      let d = e % hd;
      var kv = 0.0;
      var vv = 0.0;
      if (j <= last) {
        kv = keys[j * kv_dim + kvh * hd + d];
        vv = values[j * kv_dim + kvh * hd + d];
      }
      tile_k[e] = kv;
      tile_v[e] = vv;
    }
    workgroupBarrier();
    for (var kk = sub; kk < kt; kk += 4u) {
      let j = j0 + kk;
      var s = NEG;
      if (row_valid && j <= last && visible(j, p)) {
        var dot = 0.0;
        for (var d = 0u; d < hd; d++) {
          dot += q[t * q_dim + h * hd + d] * tile_k[kk * hd + d];
        }
        s = dot * params.scale;
      }
      scores[r * MAX_K_TILE + kk] = s;
    }
    workgroupBarrier();
    var m_tile = NEG;
    for (var kk = 0u; kk < kt; kk++) {
      m_tile = max(m_tile, scores[r * MAX_K_TILE + kk]);
    }
    let m_new = max(m, m_tile);
    let alpha = exp(m - m_new);
    l *= alpha;
    for (var i = 0u; sub + 4u * i < hd; i++) {
      acc[i] *= alpha;
    }
    for (var kk = 0u; kk < kt; kk++) {
      let s = scores[r * MAX_K_TILE + kk];
      if (s > 0.5 * NEG) {
        let w = exp(s - m_new);
        l += w;
        for (var i = 0u; sub + 4u * i < hd; i++) {
          acc[i] += w * tile_v[kk * hd + sub + 4u * i];
        }
      }
    }
    m = m_new;
  }
  if (row_valid) {
    for (var i = 0u; sub + 4u * i < hd; i++) {
      out[t * q_dim + h * hd + sub + 4u * i] = acc[i] / l;
    }
  }
}

// ---- decode: split over keys, then combine ----

var<workgroup> q_row: array<f32, MAX_HEAD_DIM>;
var<workgroup> split_scores: array<f32, MAX_SPLIT>;
var<workgroup> reduce: array<f32, THREADS>;

/** The max (is_max) or the sum of `v` over the workgroup, for every thread; call from uniform control flow. */
fn workgroup_reduce(v: f32, lid: u32, is_max: bool) -> f32 {
  reduce[lid] = v;
  workgroupBarrier();
  for (var stride = THREADS / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      let a = reduce[lid];
      let b = reduce[lid + stride];
      reduce[lid] = select(a + b, max(a, b), is_max);
    }
    workgroupBarrier();
  }
  let r = reduce[0];
  workgroupBarrier();  // reduce is free for the next call
  return r;
}

@compute @workgroup_size(THREADS)
fn decode_partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hd = params.head_dim;
  let H = params.n_heads;
  let t = wg.x / H;
  let h = wg.x % H;
  let split = wg.y;
  let kvh = h / (H / params.n_kv_heads);
  let q_dim = H * hd;
  let kv_dim = params.n_kv_heads * hd;
  if (lid == 0u) {
    shared_len = cache_meta[0];
  }
  let len = workgroupUniformLoad(&shared_len);
  let p = len + t;
  let j0 = split * params.split_len;
  let j1 = min(min(j0 + params.split_len, p + 1u), params.capacity);
  let base = ((t * H + h) * params.splits + split) * (hd + 2u);
  for (var d = lid; d < hd; d += THREADS) {
    q_row[d] = q[t * q_dim + h * hd + d];
  }
  workgroupBarrier();
  var local_max = NEG;
  for (var kk = lid; j0 + kk < j1; kk += THREADS) {
    let j = j0 + kk;
    var s = NEG;
    if (visible(j, p)) {
      var dot = 0.0;
      for (var d = 0u; d < hd; d++) {
        dot += q_row[d] * keys[j * kv_dim + kvh * hd + d];
      }
      s = dot * params.scale;
    }
    split_scores[kk] = s;
    local_max = max(local_max, s);
  }
  let m = workgroup_reduce(local_max, lid, true);
  var local_sum = 0.0;
  for (var kk = lid; j0 + kk < j1; kk += THREADS) {
    let s = split_scores[kk];
    var w = 0.0;
    if (s > 0.5 * NEG) {
      w = exp(s - m);
    }
    split_scores[kk] = w;
    local_sum += w;
  }
  let total = workgroup_reduce(local_sum, lid, false);
  for (var d = lid; d < hd; d += THREADS) {
    var o = 0.0;
    for (var j = j0; j < j1; j++) {
      o += split_scores[j - j0] * values[j * kv_dim + kvh * hd + d];
    }
    partials[base + 2u + d] = o;
  }
  if (lid == 0u) {
    partials[base] = m;
    partials[base + 1u] = total;
  }
}

@compute @workgroup_size(THREADS)
fn decode_combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hd = params.head_dim;
  // Workgroup x = t·H + h: its row's partials start at x · splits · (hd + 2).
  let base = wg.x * params.splits * (hd + 2u);
  var big = NEG;
  for (var i = 0u; i < params.splits; i++) {
    big = max(big, partials[base + i * (hd + 2u)]);
  }
  var total = 0.0;
  for (var i = 0u; i < params.splits; i++) {
    let at = base + i * (hd + 2u);
    if (partials[at + 1u] > 0.0) {
      total += exp(partials[at] - big) * partials[at + 1u];
    }
  }
  for (var d = lid; d < hd; d += THREADS) {
    var o = 0.0;
    for (var i = 0u; i < params.splits; i++) {
      let at = base + i * (hd + 2u);
      if (partials[at + 1u] > 0.0) {
        o += exp(partials[at] - big) * partials[at + 2u + d];
      }
    }
    out[wg.x * hd + d] = o / total;  // out[t, h·hd + d]
  }
}

@compute @workgroup_size(1)
fn advance() {
  let next = cache_meta[0] + params.tokens;
  if (next > params.capacity) {
    cache_meta[1] = 1u;
  }
  cache_meta[0] = min(next, params.capacity);
}

// ---- probs: one workgroup per query row of a traced prompt ----

fn probs_score(t: u32, j: u32) -> f32 {
  let hd = params.head_dim;
  let h = params.probs_head;
  let kvh = h / (params.n_heads / params.n_kv_heads);
  var dot = 0.0;
  for (var d = 0u; d < hd; d++) {
    dot += pq[t * params.n_heads * hd + h * hd + d] * pk[j * params.n_kv_heads * hd + kvh * hd + d];
  }
  return dot * params.scale;
}

fn probs_visible(t: u32, j: u32) -> bool {
  return j <= t && (j == t || params.has_mask == 0u || pmask[j] == 0u);
}

@compute @workgroup_size(THREADS)
fn probs_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let T = params.tokens;
  let t = wg.y * groups.x + wg.x;
  let live = t < T;
  var local_max = NEG;
  for (var j = lid; live && j <= t; j += THREADS) {
    if (probs_visible(t, j)) {
      local_max = max(local_max, probs_score(t, j));
    }
  }
  let m = workgroup_reduce(local_max, lid, true);
  var local_sum = 0.0;
  for (var j = lid; live && j <= t; j += THREADS) {
    if (probs_visible(t, j)) {
      local_sum += exp(probs_score(t, j) - m);
    }
  }
  let total = workgroup_reduce(local_sum, lid, false);
  for (var j = lid; live && j < T; j += THREADS) {
    var pr = 0.0;
    if (probs_visible(t, j)) {
      pr = exp(probs_score(t, j) - m) / total;
    }
    probs[t * T + j] = pr;
  }
}
