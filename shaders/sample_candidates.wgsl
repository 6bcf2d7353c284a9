// sample_candidates: the sampler's first stage, a workgroup a block of CAND_BLOCK ids (bindings,
// constants and the layout of `cand` in sample_common.wgsl). With k = kept_count(), a block keeps
// its ids whose penalized logit l' is at or above the block's k-th largest l' (ties kept), in
// increasing order, or marks CAND_OVERFLOW when those are more than CAP. Nothing the whole
// vocabulary's top-k keeps is lost: an id below its block's k-th largest has k ids of its block
// above it, so it is below the vocabulary's k-th largest too. sample.wgsl then searches only the
// candidates (when no block overflowed), which hold every id at or above the k-th largest and, for
// every key at or above it, exactly the ids at or above that key.
//
// The block's k-th largest order key by a radix select: four passes of 8 bits from the top, each a
// histogram of the ids matching the digits found so far, its suffix sums, and the digit at which
// they reach the count still needed.

const_assert CAND_THREADS == 256u;  // an invocation a histogram bin, sixteen runs of sixteen in scan_sum

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> scan: array<u32, CAND_THREADS>;
var<workgroup> group_sums: array<u32, 16>;
var<workgroup> chosen_digits: vec2<u32>;  // (the key's digits so far, ids still needed at or above them)

// Inclusive sums of v over invocations 0..lid (forward) or lid..255 (backward), in two levels:
// sixteen invocations add a run of sixteen each, then every invocation adds the runs before (or
// after) its own and its run's part up to it — three barriers where a tree scan takes seventeen
// (each costs ~0.5 ms on a software adapter).
fn scan_sum(lid: u32, v: u32, forward: bool) -> u32 {
  workgroupBarrier();  // earlier readers of scan and group_sums are done
  scan[lid] = v;
  workgroupBarrier();
  if (lid < 16u) {
    var run = 0u;
    for (var j = 0u; j < 16u; j++) {
      run += scan[16u * lid + j];
    }
    group_sums[lid] = run;
  }
  workgroupBarrier();
  let group = lid / 16u;
  var sum = 0u;
  for (var g = 0u; g < 16u; g++) {
    if ((forward && g < group) || (!forward && g > group)) {
      sum += group_sums[g];
    }
  }
  for (var j = 16u * group; j < 16u * group + 16u; j++) {
    if ((forward && j <= lid) || (!forward && j >= lid)) {
      sum += scan[j];
    }
  }
  return sum;
}

@compute @workgroup_size(CAND_THREADS)
fn candidates(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  if ((params.flags & 4u) == 0u) {
    return;  // the pick searches the whole vocabulary
  }
  let block = wid.y * groups.x + wid.x;
  if (block >= cand_blocks()) {
    return;
  }
  let start = block * CAND_BLOCK;
  let n = min(CAND_BLOCK, params.vocab - start);
  let k = kept_count();

  // This invocation's ids: start + lid · CAND_PER + j, consecutive, so its kept ones come in order.
  var keys: array<u32, CAND_PER>;
  var values: array<f32, CAND_PER>;
  let first = lid * CAND_PER;
  for (var j = 0u; j < CAND_PER; j++) {
    values[j] = 0.0;
    keys[j] = 0u;
    if (first + j < n) {
      values[j] = penalized(start + first + j);
      keys[j] = order_key(values[j]);
    }
  }

  // The k-th largest key of the block (0, the least key, keeps all when the block has ≤ k ids).
  var threshold = 0u;
  if (k < n) {
    var digits = vec2<u32>(0u, k);
    for (var pass_ = 0u; pass_ < 4u; pass_++) {
      let shift = 24u - 8u * pass_;
      // The bits above this digit must equal the digits found (none on the first pass).
      let above_mask = select(0xffffffffu << (shift + 8u), 0u, pass_ == 0u);
      atomicStore(&hist[lid], 0u);
      workgroupBarrier();
      for (var j = 0u; j < CAND_PER; j++) {
        if (first + j < n && (keys[j] & above_mask) == digits.x) {
          atomicAdd(&hist[(keys[j] >> shift) & 255u], 1u);
        }
      }
      workgroupBarrier();
      // suffix[d] (invocation d) = ids with this digit ≥ d; the digit is the largest d with suffix[d] ≥ needed
      // (suffix[0] ≥ needed holds: the ids matching so far are at least those still needed).
      let h = atomicLoad(&hist[lid]);
      let suffix = scan_sum(lid, h, false);
      let above = suffix - h;  // ids with this digit > lid
      if (suffix >= digits.y && above < digits.y) {
        chosen_digits = vec2<u32>(digits.x | (lid << shift), digits.y - above);
      }
      digits = workgroupUniformLoad(&chosen_digits);
    }
    threshold = digits.x;
  }

  // Kept: key ≥ threshold. Each invocation's count, their exclusive sums, and the slots.
  var count = 0u;
  for (var j = 0u; j < CAND_PER; j++) {
    count += select(0u, 1u, first + j < n && keys[j] >= threshold);
  }
  let inclusive = scan_sum(lid, count, true);
  var total = 0u;
  for (var g = 0u; g < 16u; g++) {
    total += group_sums[g];
  }
  // No barrier below: the branch need not be uniform.
  if (lid == 0u) {
    cand[block] = select(total, CAND_OVERFLOW, total > CAP);
    cand[cand_blocks() + block] = threshold;
  }
  if (total > CAP) {
    return;
  }
  var slot = cand_pairs() + 2u * (block * CAP + inclusive - count);
  for (var j = 0u; j < CAND_PER; j++) {
    if (first + j < n && keys[j] >= threshold) {
      cand[slot] = bitcast<u32>(values[j]);
      cand[slot + 1u] = start + first + j;
      slot += 2u;
    }
  }
}
