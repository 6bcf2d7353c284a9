// sample: picks the next token from one row of logits, in one workgroup; only the id comes back.
// Bindings, params and the candidates' layout: sample_common.wgsl. When the first stage
// (sample_candidates.wgsl) ran and no block overflowed its slots, every pass below walks its few
// candidates (CAP a block of the vocabulary) instead of the vocabulary: the same kept ids, the
// same thresholds, the same order.
//
//   l'[i]   = logits[offset + i], with the repetition penalty on ids marked in `seen`
//             (HF: l < 0 → l · penalty, else l / penalty)
//   greedy  (temperature = 0, or top_k = 1): argmax l', ties → the lowest id
//   else    w[i] = exp((l'[i] − max l') / temperature)   (exponents ≤ 0)
//           top-k: keep l' ≥ the k-th largest l' (ties at the boundary kept, as HF does)
//           top-p: of those, keep l' ≥ τ, τ the largest value whose kept mass Σ_{l' ≥ τ} w ≥ p · Σ_kept w
//           inverse CDF with u over the kept ids in index order: the first id whose running
//           Σ w exceeds u · Σ_kept w
//
// Thresholds are found by a search over the 32-bit order keys of l' (a float's bits made
// monotonic as a u32) for the largest key whose count (top-k) or mass (top-p) of the vocabulary at
// or above it is enough, exact in the keys. With subgroups (SG_SIZE > 0) a pass over the
// vocabulary tests FAN − 1 keys at once (a FAN-ary search: 8 passes for 32-bit keys), its counts
// or masses added by subgroupAdd and one exchange; else a binary search, a pass and a barrier tree
// a probe (32 at most).

override WORKGROUP_SIZE: u32 = 256u;  // a power of two
// The subgroup size where subgroups are runs of SG_SIZE consecutive invocations (app/gpu/context.ts
// subgroupLayout) dividing WORKGROUP_SIZE, else 0; sg_add_v4u and sg_add_v4 come from the prefix
// the op prepends (app/kernels/subgroups.ts subgroupHelpers).
override SG_SIZE: u32 = 0u;
const FAN: u32 = 16u;  // keys a pass of the subgroup search divides its range by

var<workgroup> red_f: array<f32, WORKGROUP_SIZE>;
var<workgroup> red_u: array<u32, WORKGROUP_SIZE>;
// The subgroup search's partial counts or masses (f32 bits): 4 vec4 a subgroup.
var<workgroup> red_v4: array<vec4<u32>, 4u * (WORKGROUP_SIZE / select(SG_SIZE, WORKGROUP_SIZE, SG_SIZE == 0u))>;
var<workgroup> search_range: vec2<u32>;
var<workgroup> claimed: atomic<u32>;    // chosen id + 1 (0: none)
var<workgroup> last_kept: atomic<u32>;  // largest kept id with w > 0, + 1 (0: none)

// The few ids top-k keeps (at most SMALL, ties included; the constant comes from
// app/kernels/sample.ts with CAP), in increasing order, for the short finish: their l', id and
// weight, the top-p threshold's key and the pick.
var<workgroup> small_l: array<f32, SMALL>;
var<workgroup> small_id: array<u32, SMALL>;
var<workgroup> small_w: array<f32, SMALL>;
var<workgroup> small_tau: atomic<u32>;
var<workgroup> small_pick: u32;

// Whether this pick searches the first stage's candidates (set at the start of main: the stage ran
// and no block overflowed) instead of the whole vocabulary.
var<private> from_candidates: bool;

// What the searches walk: the vocabulary's ids, or the candidates' slots (CAP a block, the unused
// ones not `valid`), in increasing order of id either way.
struct Item {
  valid: bool,
  l: f32,   // the penalized logit
  id: u32,
}

fn item_count() -> u32 {
  return select(params.vocab, cand_blocks() * CAP, from_candidates);
}

fn item(slot: u32) -> Item {
  if (from_candidates) {
    let at = cand_pairs() + 2u * slot;
    return Item(slot % CAP < cand[slot / CAP], bitcast<f32>(cand[at]), cand[at + 1u]);
  }
  return Item(true, penalized(slot), slot);
}

fn weight(l: f32, top: f32, inv_temperature: f32) -> f32 {
  return exp((l - top) * inv_temperature);
}

fn sum_f(lid: u32, v: f32) -> f32 {
  workgroupBarrier();
  red_f[lid] = v;
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) {
      red_f[lid] += red_f[lid + stride];
    }
  }
  return workgroupUniformLoad(&red_f[0]);
}

// The sum (take_max = false) or the maximum of v over the workgroup; every invocation gets it.
fn reduce_u(lid: u32, v: u32, take_max: bool) -> u32 {
  workgroupBarrier();
  red_u[lid] = v;
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) {
      let a = red_u[lid];
      let b = red_u[lid + stride];
      red_u[lid] = select(a + b, max(a, b), take_max);
    }
  }
  return workgroupUniformLoad(&red_u[0]);
}

// This invocation's contiguous run of items [x, y): the passes that must meet the items in order
// across invocations (the compaction, the inverse CDF) give each a run and prefix-sum over them.
fn thread_range(lid: u32) -> vec2<u32> {
  let n = item_count();
  let per_thread = (n + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
  let begin = min(lid * per_thread, n);
  return vec2<u32>(begin, min(begin + per_thread, n));
}

fn count_at_least(lid: u32, key: u32) -> u32 {
  var count = 0u;
  for (var slot = lid; slot < item_count(); slot += WORKGROUP_SIZE) {
    let it = item(slot);
    count += select(0u, 1u, it.valid && order_key(it.l) >= key);
  }
  return reduce_u(lid, count, false);
}

fn mass_at_least(lid: u32, key: u32, top: f32, inv_temperature: f32) -> f32 {
  var mass = 0.0;
  for (var slot = lid; slot < item_count(); slot += WORKGROUP_SIZE) {
    let it = item(slot);
    if (it.valid && order_key(it.l) >= key) {
      mass += weight(it.l, top, inv_temperature);
    }
  }
  return sum_f(lid, mass);
}

// Midpoint of (lo, hi], rounded up, without overflow.
fn upper_mid(lo: u32, hi: u32) -> u32 {
  let gap = hi - lo;
  return lo + (gap >> 1u) + (gap & 1u);
}

// The subgroup search (SG_SIZE > 0). Keys t[j] = lo + j·q + ceil(j·r / FAN), q and r the quotient and
// remainder of (hi − lo) / FAN, cut [lo, hi] into FAN parts: t[0] = lo, non-decreasing, each ≤ hi.
fn fan_keys(lo: u32, hi: u32) -> array<vec4<u32>, 4> {
  let q = (hi - lo) / FAN;
  let r = (hi - lo) % FAN;
  var t: array<vec4<u32>, 4>;
  for (var j = 0u; j < FAN; j++) {
    t[j / 4u][j % 4u] = lo + j * q + (j * r + FAN - 1u) / FAN;
  }
  return t;
}

// Adds four vec4 of every invocation over the workgroup (as u32 bits: counts, or masses with
// `mass`); every invocation gets the sums. subgroupAdd, the subgroups' sums through red_v4, then
// each subgroup adds those (redundantly, so that control flow stays uniform).
fn fan_sum(lid: u32, v: array<vec4<u32>, 4>, mass: bool) -> array<vec4<u32>, 4> {
  let sg = max(SG_SIZE, 1u);
  let groups = WORKGROUP_SIZE / sg;
  var part: array<vec4<u32>, 4>;
  for (var s = 0u; s < 4u; s++) {
    if (mass) {
      part[s] = bitcast<vec4<u32>>(sg_add_v4(bitcast<vec4<f32>>(v[s])));
    } else {
      part[s] = sg_add_v4u(v[s]);
    }
  }
  workgroupBarrier();  // the previous pass's readers are done with red_v4
  if (lid % sg == 0u) {
    for (var s = 0u; s < 4u; s++) {
      red_v4[(lid / sg) * 4u + s] = part[s];
    }
  }
  workgroupBarrier();
  var mine: array<vec4<u32>, 4>;
  for (var s = 0u; s < 4u; s++) {
    if (mass) {
      var cf = vec4<f32>(0.0);
      for (var k = lid % sg; k < groups; k += sg) {
        cf += bitcast<vec4<f32>>(red_v4[k * 4u + s]);
      }
      mine[s] = bitcast<vec4<u32>>(sg_add_v4(cf));
    } else {
      var cu = vec4<u32>(0u);
      for (var k = lid % sg; k < groups; k += sg) {
        cu += red_v4[k * 4u + s];
      }
      mine[s] = sg_add_v4u(cu);
    }
  }
  return mine;
}

// The largest key in [lo, hi] whose count at or above it (mass = false: ≥ need) or mass at or
// above it (mass = true: ≥ bitcast<f32>(need)) is enough, given that lo's is: FAN-ary search,
// one pass over the vocabulary a step. Every invocation calls it; the result is uniform.
fn fan_search(lid: u32, lo_in: u32, hi_in: u32, need: u32, mass: bool, top: f32, inv_temperature: f32) -> u32 {
  var range = vec2<u32>(lo_in, hi_in);
  // Each pass leaves a range shorter than the one it was given (t[best] ≥ lo, the next key ≤ hi),
  // so this ends; the cap (32-bit keys need 8 passes at FAN = 16) only guards against a mistake.
  for (var step = 0u; step < 64u && range.x < range.y; step++) {
    let t = fan_keys(range.x, range.y);
    var c: array<vec4<u32>, 4>;
    for (var s = 0u; s < 4u; s++) {
      c[s] = vec4<u32>(0u);
    }
    for (var slot = lid; slot < item_count(); slot += WORKGROUP_SIZE) {
      let it = item(slot);
      if (!it.valid) {
        continue;
      }
      let key = vec4<u32>(order_key(it.l));
      if (mass) {
        let w = vec4<f32>(weight(it.l, top, inv_temperature));
        for (var s = 0u; s < 4u; s++) {
          c[s] = bitcast<vec4<u32>>(bitcast<vec4<f32>>(c[s]) + select(vec4<f32>(0.0), w, key >= t[s]));
        }
      } else {
        for (var s = 0u; s < 4u; s++) {
          c[s] += select(vec4<u32>(0u), vec4<u32>(1u), key >= t[s]);
        }
      }
    }
    let sums = fan_sum(lid, c, mass);
    // The last key that is enough (t[0] = lo is), then the part above it up to the next key.
    var best = 0u;
    for (var j = 1u; j < FAN; j++) {
      let v = sums[j / 4u][j % 4u];
      if (select(v >= need, bitcast<f32>(v) >= bitcast<f32>(need), mass)) {
        best = j;
      }
    }
    if (lid == 0u) {
      var hi = range.y;
      if (best + 1u < FAN) {
        hi = t[(best + 1u) / 4u][(best + 1u) % 4u] - 1u;
      }
      search_range = vec2<u32>(t[best / 4u][best % 4u], hi);
    }
    range = workgroupUniformLoad(&search_range);
  }
  return range.x;
}

// The largest key in [lo, hi] whose count (mass = false: ≥ need) or mass (mass = true: ≥
// bitcast<f32>(need)) at or above it is enough, given that lo's is: the FAN-ary search with
// subgroups, else a binary search (a pass over the vocabulary and its reduction a probe). Every
// invocation calls it; the result is uniform.
fn threshold_search(lid: u32, lo_in: u32, hi_in: u32, need: u32, mass: bool, top: f32, inv_temperature: f32) -> u32 {
  if (SG_SIZE > 0u) {
    return fan_search(lid, lo_in, hi_in, need, mass, top, inv_temperature);
  }
  var lo = lo_in;
  var hi = hi_in;
  while (lo < hi) {
    let mid = upper_mid(lo, hi);
    var enough: bool;
    if (mass) {
      enough = mass_at_least(lid, mid, top, inv_temperature) >= bitcast<f32>(need);
    } else {
      enough = count_at_least(lid, mid) >= need;
    }
    if (enough) {
      lo = mid;
    } else {
      hi = mid - 1u;
    }
  }
  return lo;
}

// Copies the items at or above keep_key into small_l / small_id in increasing order of id, if they
// are at most SMALL; returns how many there are (uniform). Each thread takes a contiguous range of
// items, and an inclusive prefix sum of their counts over the threads places its run.
fn compact_kept(lid: u32, keep_key: u32) -> u32 {
  let run = thread_range(lid);
  var count = 0u;
  for (var slot = run.x; slot < run.y; slot++) {
    let it = item(slot);
    count += select(0u, 1u, it.valid && order_key(it.l) >= keep_key);
  }
  workgroupBarrier();
  red_u[lid] = count;
  for (var stride = 1u; stride < WORKGROUP_SIZE; stride *= 2u) {
    workgroupBarrier();
    var add = 0u;
    if (lid >= stride) {
      add = red_u[lid - stride];
    }
    workgroupBarrier();
    red_u[lid] += add;
  }
  workgroupBarrier();
  var at = red_u[lid] - count;
  let total = workgroupUniformLoad(&red_u[WORKGROUP_SIZE - 1u]);
  if (total <= SMALL) {
    for (var slot = run.x; slot < run.y; slot++) {
      let it = item(slot);
      if (it.valid && order_key(it.l) >= keep_key) {
        small_l[at] = it.l;
        small_id[at] = it.id;
        at++;
      }
    }
  }
  return total;
}

// top-p and the inverse CDF over the n ≤ SMALL compacted ids (compact_kept), the same rules as the
// passes over the items: τ the largest l' whose mass at or above it reaches p of the n ids' mass
// (each id's mass at or above its own l' summed by its thread), then the first id in increasing
// order whose running weight exceeds u · the mass at or above τ (one thread walks them).
fn finish_small(lid: u32, n: u32, top: f32, inv_temperature: f32) -> u32 {
  workgroupBarrier();  // small_l written
  for (var i = lid; i < n; i += WORKGROUP_SIZE) {
    small_w[i] = weight(small_l[i], top, inv_temperature);
  }
  workgroupBarrier();
  if (params.top_p < 1.0) {
    for (var i = lid; i < n; i += WORKGROUP_SIZE) {
      let key = order_key(small_l[i]);
      var total = 0.0;
      var above = 0.0;
      for (var j = 0u; j < n; j++) {
        let w = small_w[j];
        total += w;
        above += select(0.0, w, order_key(small_l[j]) >= key);
      }
      if (above >= params.top_p * total) {
        atomicMax(&small_tau, key);
      }
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    let tau = atomicLoad(&small_tau);  // 0 (all kept) without top-p
    var total = 0.0;
    var last = 0u;
    for (var i = 0u; i < n; i++) {
      if (order_key(small_l[i]) >= tau) {
        total += small_w[i];
        if (small_w[i] > 0.0) {
          last = i;
        }
      }
    }
    let goal = params.u * total;
    var running = 0.0;
    var pick = last;  // if rounding leaves the walk short of the goal: the last kept id
    for (var i = 0u; i < n; i++) {
      if (order_key(small_l[i]) >= tau) {
        running += small_w[i];
        if (running > goal) {
          pick = i;
          break;
        }
      }
    }
    small_pick = small_id[pick];
  }
  return workgroupUniformLoad(&small_pick);
}

// The inverse CDF over the items at or above keep_key, in index order: each thread sums its run
// of items (thread_range), an inclusive prefix sum over threads places u · total in one run, and
// that thread walks it. Every invocation calls it and gets the same id.
fn cdf_pick(lid: u32, keep_key: u32, top: f32, inv_temperature: f32) -> u32 {
  let run = thread_range(lid);
  var mass = 0.0;
  var last = 0u;
  for (var slot = run.x; slot < run.y; slot++) {
    let it = item(slot);
    if (it.valid && order_key(it.l) >= keep_key) {
      let w = weight(it.l, top, inv_temperature);
      mass += w;
      if (w > 0.0) {
        last = it.id + 1u;
      }
    }
  }
  atomicMax(&last_kept, last);
  workgroupBarrier();
  red_f[lid] = mass;
  for (var stride = 1u; stride < WORKGROUP_SIZE; stride *= 2u) {
    workgroupBarrier();
    var add = 0.0;
    if (lid >= stride) {
      add = red_f[lid - stride];
    }
    workgroupBarrier();
    red_f[lid] += add;
  }
  workgroupBarrier();
  let inclusive = red_f[lid];
  var exclusive = 0.0;
  if (lid > 0u) {
    exclusive = red_f[lid - 1u];
  }
  let goal = params.u * workgroupUniformLoad(&red_f[WORKGROUP_SIZE - 1u]);
  if (exclusive <= goal && goal < inclusive) {
    var running = exclusive;
    var pick = last;  // if rounding leaves the walk short of the goal: the range's last kept id
    for (var slot = run.x; slot < run.y; slot++) {
      let it = item(slot);
      if (it.valid && order_key(it.l) >= keep_key) {
        running += weight(it.l, top, inv_temperature);
        if (running > goal) {
          pick = it.id + 1u;
          break;
        }
      }
    }
    atomicMax(&claimed, pick);
  }
  workgroupBarrier();
  let claim = atomicLoad(&claimed);
  // Nobody claims only when u · total rounds up to the total: the last kept id.
  return select(atomicLoad(&last_kept), claim, claim != 0u) - 1u;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
  let V = params.vocab;

  // The candidates when the first stage kept them (flags bit 2) and no block overflowed its slots
  // (one maximum over the blocks: an overflow counts as the largest u32). The largest block
  // threshold bounds the top-k search from below: each block has k ids at or above its own, so
  // the vocabulary's k-th largest is at least that.
  from_candidates = false;
  var search_floor = 0u;
  if ((params.flags & 4u) != 0u) {
    var most = 0u;
    for (var b = lid; b < cand_blocks(); b += WORKGROUP_SIZE) {
      most = max(most, select(cand[cand_blocks() + b], 0xffffffffu, cand[b] == CAND_OVERFLOW));
    }
    most = reduce_u(lid, most, true);
    let none_overflowed = most != 0xffffffffu;  // uniform, where from_candidates (a private variable) is not to the analysis
    from_candidates = none_overflowed;
    search_floor = select(0u, most, none_overflowed);
  }

  // Max and argmax of l' (ties → lowest id: each thread meets its ids in increasing order).
  var best = 0.0;
  var best_id = 0xffffffffu;  // none yet
  for (var slot = lid; slot < item_count(); slot += WORKGROUP_SIZE) {
    let it = item(slot);
    if (it.valid && (it.l > best || best_id == 0xffffffffu)) {
      best = it.l;
      best_id = it.id;
    }
  }
  red_f[lid] = best;
  red_u[lid] = best_id;
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) {
      let other = red_f[lid + stride];
      let other_id = red_u[lid + stride];
      let mine = red_f[lid];
      let mine_id = red_u[lid];
      if (other_id != 0xffffffffu && (mine_id == 0xffffffffu || other > mine || (other == mine && other_id < mine_id))) {
        red_f[lid] = other;
        red_u[lid] = other_id;
      }
    }
  }
  let top = workgroupUniformLoad(&red_f[0]);
  let argmax = workgroupUniformLoad(&red_u[0]);

  var chosen = argmax;
  if (params.temperature > 0.0 && params.top_k != 1u && V > 1u) {
    let inv_temperature = 1.0 / params.temperature;
    let top_key = order_key(top);

    // top-k: the largest key with at least k ids at or above it (the k-th largest l').
    var keep_key = 0u;
    if (params.top_k > 0u && params.top_k < V) {
      keep_key = threshold_search(lid, search_floor, top_key, params.top_k, false, top, inv_temperature);
    }

    // Few ids kept (top-k ≤ SMALL, ties included, or a small vocabulary): top-p and the pick over
    // them in workgroup memory, instead of a threshold search's eight passes and the pick's two.
    var kept = SMALL + 1u;  // not counted: more than SMALL
    if ((params.top_k > 0u && params.top_k <= SMALL) || V <= SMALL) {
      kept = compact_kept(lid, keep_key);
    }
    if (kept <= SMALL) {
      chosen = finish_small(lid, kept, top, inv_temperature);
    } else {
      // top-p: the largest key whose mass at or above it reaches p of the top-k survivors' mass.
      if (params.top_p < 1.0) {
        let goal = params.top_p * mass_at_least(lid, keep_key, top, inv_temperature);
        keep_key = threshold_search(lid, keep_key, top_key, bitcast<u32>(goal), true, top, inv_temperature);
      }
      chosen = cdf_pick(lid, keep_key, top, inv_temperature);
    }
  }

  if (lid == 0u) {
    token[0] = chosen;
    if ((params.flags & 2u) != 0u) {
      seen[chosen >> 5u] |= 1u << (chosen & 31u);
    }
  }
}
