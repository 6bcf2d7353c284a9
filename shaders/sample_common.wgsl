// sample_common: what the sampler's two kernels share (sample_candidates.wgsl, the first stage over
// the vocabulary in many workgroups; sample.wgsl, the pick in one), prepended to each by
// app/kernels/sample.ts after the constants it writes: CAND_THREADS and CAND_PER (a first-stage
// workgroup's invocations and the ids each takes: a block of CAND_THREADS · CAND_PER ids a
// workgroup), CAP (candidate slots a block) and SMALL (sample.wgsl's short finish).
//
// `cand` holds, for B = ceil(V / CAND_BLOCK) blocks: words [0, B) the candidates each block kept
// (CAND_OVERFLOW: more than CAP, none written), words [B, 2B) each block's threshold (the order key
// of its k-th largest l', 0 where it has ≤ k ids), then from word 2B a pair a slot (the penalized
// logit's bits, the id), CAP slots a block, the block's kept ids first and in increasing order.

const CAND_BLOCK: u32 = CAND_THREADS * CAND_PER;
const CAND_OVERFLOW: u32 = 0xffffffffu;

struct Params {
  vocab: u32,        // V
  offset: u32,       // the row's first element in `logits`
  top_k: u32,        // 0 = off
  flags: u32,        // bit 0: penalize the ids set in `seen`; bit 1: set the chosen id's bit in `seen`; bit 2: the first stage keeps candidates
  temperature: f32,  // 0 = greedy
  top_p: f32,        // 1 = off
  penalty: f32,      // 1 = off
  u: f32,            // uniform random number in [0, 1), drawn by the caller
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;      // [.., V]: the row at `offset`
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;  // [ceil(V / 32)] bitset of ids already in the context
@group(0) @binding(3) var<storage, read_write> token: array<u32>; // [1] the chosen id
@group(0) @binding(4) var<storage, read_write> cand: array<u32>;  // the first stage's candidates (above)

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

fn cand_blocks() -> u32 {
  return (params.vocab + CAND_BLOCK - 1u) / CAND_BLOCK;
}

// The word of `cand` where the slots' pairs begin.
fn cand_pairs() -> u32 {
  return 2u * cand_blocks();
}

// The ids a step keeps: 1 when greedy (temperature 0 or top-k = 1), else top-k.
fn kept_count() -> u32 {
  return select(params.top_k, 1u, params.temperature == 0.0 || params.top_k == 1u);
}
