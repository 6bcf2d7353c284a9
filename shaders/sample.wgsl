// sample: picks the next token from one row of logits, in one workgroup; only the id comes back.
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
// Thresholds are found by a binary search over the 32-bit order keys of l' (a float's bits made
// monotonic as a u32), each probe a count or a mass of the whole vocabulary reduced by the
// workgroup: 32 probes at most per threshold, every one of them exact in the keys.

override WORKGROUP_SIZE: u32 = 256u;  // a power of two

struct Params {
  vocab: u32,        // V
  offset: u32,       // the row's first element in `logits`
  top_k: u32,        // 0 = off
  flags: u32,        // bit 0: penalize the ids set in `seen`; bit 1: set the chosen id's bit in `seen`
  temperature: f32,  // 0 = greedy
  top_p: f32,        // 1 = off
  penalty: f32,      // 1 = off
  u: f32,            // uniform random number in [0, 1), drawn by the caller
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;      // [.., V]: the row at `offset`
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;  // [ceil(V / 32)] bitset of ids already in the context
@group(0) @binding(3) var<storage, read_write> token: array<u32>; // [1] the chosen id

var<workgroup> red_f: array<f32, WORKGROUP_SIZE>;
var<workgroup> red_u: array<u32, WORKGROUP_SIZE>;
var<workgroup> claimed: atomic<u32>;    // chosen id + 1 (0: none)
var<workgroup> last_kept: atomic<u32>;  // largest kept id with w > 0, + 1 (0: none)

fn penalized(i: u32) -> f32 {
  let l = logits[params.offset + i];
  if ((params.flags & 1u) != 0u && ((seen[i >> 5u] >> (i & 31u)) & 1u) != 0u) {
    return select(l / params.penalty, l * params.penalty, l < 0.0);
  }
  return l;
}

// The bits of v made monotonic as a u32: a < b ⇔ key(a) < key(b) (−0 and +0 alike).
fn order_key(v: f32) -> u32 {
  let bits = bitcast<u32>(select(v, 0.0, v == 0.0));
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
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

fn sum_u(lid: u32, v: u32) -> u32 {
  workgroupBarrier();
  red_u[lid] = v;
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) {
      red_u[lid] += red_u[lid + stride];
    }
  }
  return workgroupUniformLoad(&red_u[0]);
}

fn count_at_least(lid: u32, key: u32) -> u32 {
  var count = 0u;
  for (var i = lid; i < params.vocab; i += WORKGROUP_SIZE) {
    count += select(0u, 1u, order_key(penalized(i)) >= key);
  }
  return sum_u(lid, count);
}

fn mass_at_least(lid: u32, key: u32, top: f32, inv_temperature: f32) -> f32 {
  var mass = 0.0;
  for (var i = lid; i < params.vocab; i += WORKGROUP_SIZE) {
    let l = penalized(i);
    if (order_key(l) >= key) {
      mass += weight(l, top, inv_temperature);
    }
  }
  return sum_f(lid, mass);
}

// Midpoint of (lo, hi], rounded up, without overflow.
fn upper_mid(lo: u32, hi: u32) -> u32 {
  let gap = hi - lo;
  return lo + (gap >> 1u) + (gap & 1u);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
  let V = params.vocab;

  // Max and argmax of l' (ties → lowest id: each thread meets its ids in increasing order).
  var best = 0.0;
  var best_id = 0xffffffffu;  // none yet
  for (var i = lid; i < V; i += WORKGROUP_SIZE) {
    let l = penalized(i);
    if (l > best || best_id == 0xffffffffu) {
      best = l;
      best_id = i;
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
      var lo = 0u;
      var hi = top_key;
      while (lo < hi) {
        let mid = upper_mid(lo, hi);
        if (count_at_least(lid, mid) >= params.top_k) {
          lo = mid;
        } else {
          hi = mid - 1u;
        }
      }
      keep_key = lo;
    }

    // top-p: the largest key whose mass at or above it reaches p of the top-k survivors' mass.
    if (params.top_p < 1.0) {
      let goal = params.top_p * mass_at_least(lid, keep_key, top, inv_temperature);
      var lo = keep_key;
      var hi = top_key;
      while (lo < hi) {
        let mid = upper_mid(lo, hi);
        if (mass_at_least(lid, mid, top, inv_temperature) >= goal) {
          lo = mid;
        } else {
          hi = mid - 1u;
        }
      }
      keep_key = lo;
    }

    // Inverse CDF in index order: each thread sums a contiguous range of ids, an inclusive
    // prefix sum over threads places u · total in one range, and that thread walks it.
    let per_thread = (V + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
    let begin = min(lid * per_thread, V);
    let end = min(begin + per_thread, V);
    var mass = 0.0;
    var last = 0u;
    for (var i = begin; i < end; i++) {
      let l = penalized(i);
      if (order_key(l) >= keep_key) {
        let w = weight(l, top, inv_temperature);
        mass += w;
        if (w > 0.0) {
          last = i + 1u;
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
      for (var i = begin; i < end; i++) {
        let l = penalized(i);
        if (order_key(l) >= keep_key) {
          running += weight(l, top, inv_temperature);
          if (running > goal) {
            pick = i + 1u;
            break;
          }
        }
      }
      atomicMax(&claimed, pick);
    }
    workgroupBarrier();
    let claim = atomicLoad(&claimed);
    // Nobody claims only when u · total rounds up to the total: the last kept id.
    chosen = select(atomicLoad(&last_kept), claim, claim != 0u) - 1u;
  }

  if (lid == 0u) {
    token[0] = chosen;
    if ((params.flags & 2u) != 0u) {
      seen[chosen >> 5u] |= 1u << (chosen & 31u);
    }
  }
}
