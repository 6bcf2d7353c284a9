// top_k: the K most likely next tokens of each row of logits, with their softmax probabilities.
//
//   m[r]        = max_v logits[r, v]
//   s[r]        = Σ_v exp(logits[r, v] − m[r])
//   ids[r, j]   = the j-th largest logit's index (ties: the lower index first), j < K
//   probs[r, j] = exp(logits[r, ids[r, j]] − m[r]) / s[r]
//
// Symbols: R rows (tokens), V vocabulary, K ≤ MAX_K. One workgroup per row (2-D layout when R is
// over 65535). Each thread scans the row with a stride of WORKGROUP_SIZE keeping its own top K
// (insertion), the maximum and then the sum are tree-reduced in workgroup memory, and thread 0
// merges the WORKGROUP_SIZE·K candidates. Output row r: K ids (u32), then K probabilities (f32 bits).

override WORKGROUP_SIZE: u32 = 128u;
const MAX_K: u32 = 8u;

struct Params {
  rows: u32,    // R
  vocab: u32,   // V
  k: u32,       // K (≤ MAX_K)
  groups_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;       // [R, V]
@group(0) @binding(2) var<storage, read_write> out: array<u32>;    // [R, 2K]: ids, then probability bits

var<workgroup> red: array<f32, WORKGROUP_SIZE>;
var<workgroup> cand_v: array<f32, 1024>;   // WORKGROUP_SIZE · MAX_K (WORKGROUP_SIZE ≤ 128: 8.5 KB of workgroup memory in all)
var<workgroup> cand_i: array<u32, 1024>;

// a ranks before b: a larger value, or the same value at a lower index.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia < ib);
}

// Inserts (x, v) into the sorted list (vals, idx) of *n ≤ K entries, best first, if it ranks
// among the K best; the worst falls off a full list.
fn insert(vals: ptr<function, array<f32, 8>>, idx: ptr<function, array<u32, 8>>, n: ptr<function, u32>, K: u32, x: f32, v: u32) {
  if (*n == K && !before(x, v, (*vals)[K - 1u], (*idx)[K - 1u])) {
    return;
  }
  var at = min(*n, K - 1u);
  if (*n < K) {
    *n += 1u;
  }
  // Shift worse entries down.
  while (at > 0u && before(x, v, (*vals)[at - 1u], (*idx)[at - 1u])) {
    (*vals)[at] = (*vals)[at - 1u];
    (*idx)[at] = (*idx)[at - 1u];
    at--;
  }
  (*vals)[at] = x;
  (*idx)[at] = v;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wg.y * params.groups_x + wg.x;
  let live = r < params.rows;  // every thread reaches every barrier
  let V = params.vocab;
  let K = params.k;
  let base = r * V;
  // This thread's top K, best first; its maximum is top_v[0].
  var top_v: array<f32, 8>;
  var top_i: array<u32, 8>;
  var count = 0u;
  if (live) {
    for (var v = lid; v < V; v += WORKGROUP_SIZE) {
      insert(&top_v, &top_i, &count, K, logits[base + v], v);
    }
  }
  // The row's maximum.
  red[lid] = select(-3.4e38, top_v[0], count > 0u);
  workgroupBarrier();
  for (var half = WORKGROUP_SIZE / 2u; half > 0u; half >>= 1u) {
    if (lid < half) {
      red[lid] = max(red[lid], red[lid + half]);
    }
    workgroupBarrier();
  }
  let m = red[0];
  workgroupBarrier();
  // Σ exp(l − m).
  var s = 0.0;
  if (live) {
    for (var v = lid; v < V; v += WORKGROUP_SIZE) {
      s += exp(logits[base + v] - m);
    }
  }
  red[lid] = s;
  workgroupBarrier();
  for (var half = WORKGROUP_SIZE / 2u; half > 0u; half >>= 1u) {
    if (lid < half) {
      red[lid] += red[lid + half];
    }
    workgroupBarrier();
  }
  let total = red[0];
  // Candidates: each thread's list, padded with "nothing" (−∞ at an index past V).
  for (var j = 0u; j < K; j++) {
    let has = j < count;
    cand_v[lid * K + j] = select(-3.4e38, top_v[j], has);
    cand_i[lid * K + j] = select(0xffffffffu, top_i[j], has);
  }
  workgroupBarrier();
  if (live && lid == 0u) {
    var best_v: array<f32, 8>;
    var best_i: array<u32, 8>;
    var n = 0u;
    for (var c = 0u; c < WORKGROUP_SIZE * K; c++) {
      if (cand_i[c] != 0xffffffffu) {
        insert(&best_v, &best_i, &n, K, cand_v[c], cand_i[c]);
      }
    }
    let o = r * 2u * K;
    for (var j = 0u; j < K; j++) {
      out[o + j] = best_i[j];
      out[o + K + j] = bitcast<u32>(exp(best_v[j] - m) / total);
    }
  }
}
