// int8_stage: the staging of int8_gemm_tc.wgsl's kernels, appended to it by the op, and apart so
// that a test can run it on any adapter (the tensor-core kernels need subgroup matrices): a stage
// is BK bytes of K of BT rows of each operand, held in workgroup memory as rows of SROWW i32 words
// (BK bytes and 16 of padding), two buffers an operand (main_db and main_wide take turns, main
// uses the first), in blocks of RB = 16 rows (a fragment's rows): row r of buffer b is row r % RB
// of block b · BT / RB + r / RB. The words lie as one array of rows would (block after block); the
// blocks are there so that every subgroupMatrixLoad / Store takes a block and a constant offset:
// with Dawn's robustness on, a load whose offset the compiler cannot bound is clamped with a
// select on its offset and stride (seen in the SPIR-V Dawn made on the H100, 2026-12-05), so the
// driver gets a stride it does not know; a block, a constant offset and a constant stride are in
// bounds as written and reach the driver as constants.

override SG: u32 = 32u;     // the subgroup size (the adapter's, fixed)
override BT: u32 = 64u;     // the tile's rows and columns: 64 (main, main_db) or 128 (main_wide)
override NSG: u32 = 4u;     // subgroups: 4 (BT = 64) or 8 (BT = 128); each stages 2 · BT · KV / (NSG · SG) = 2 vec4 an operand
const BK = 64u;             // bytes of K per stage
const SROWB = BK + 16u;     // bytes per staged row
const SROWW = SROWB / 4u;   // i32 words per staged row
const KV = BK / 16u;        // vec4<i32> per staged row
const RB = 16u;             // rows per block (the rows of a fragment: M = N = 16)
const BLKW = RB * SROWW;    // i32 words per block (320: also holds a 16 × 16 i32 result)

// The staging buffers, 2 · BT / RB blocks each (the result matrices pass through d_a in every
// kernel after its last stage, subgroup s's in block s: 2 · BT / RB ≥ NSG).
var<workgroup> d_a: array<array<i32, BLKW>, 2u * BT / RB>;
var<workgroup> d_w: array<array<i32, BLKW>, 2u * BT / RB>;

// Loads per invocation per operand and stage: BT · KV vec4 over NSG · SG invocations, vec4 t of
// an operand being words 4·(t % KV) .. + 3 of row t / KV.
struct Stage {
  a0: vec4<i32>,
  a1: vec4<i32>,
  w0: vec4<i32>,
  w1: vec4<i32>,
}

// vec4 t of an operand into buffer `buf`: its four words in order, at a 16-byte aligned offset,
// which the compiler can make one 128-bit store. (Storing them rotated, word (i + t) % 4 at step
// i, to spread a subgroup's scalar stores over 32 banks, cost 43 % of main_wide's and main_db's
// speed on the H200, 2026-12-05: the dynamic index into v put it in local memory and the stores
// were no longer one vector store.)
fn put4(buf_a: bool, buf: u32, t: u32, v: vec4<i32>) {
  let row = t / KV;
  let b = buf * (BT / RB) + row / RB;
  let o = (row % RB) * SROWW + (t % KV) * 4u;
  if (buf_a) {
    d_a[b][o] = v.x;
    d_a[b][o + 1u] = v.y;
    d_a[b][o + 2u] = v.z;
    d_a[b][o + 3u] = v.w;
  } else {
    d_w[b][o] = v.x;
    d_w[b][o + 1u] = v.y;
    d_w[b][o + 2u] = v.z;
    d_w[b][o + 3u] = v.w;
  }
}

fn stage_store(s: Stage, buf: u32, lid: u32) {
  put4(true, buf, lid, s.a0);
  put4(true, buf, lid + NSG * SG, s.a1);
  put4(false, buf, lid, s.w0);
  put4(false, buf, lid + NSG * SG, s.w1);
}
