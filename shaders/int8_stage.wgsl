// int8_stage: the staging of int8_gemm_tc.wgsl's kernels, appended to it by the op, and apart so
// that a test can run it on any adapter (the tensor-core kernels need subgroup matrices): a stage
// is BK bytes of K of BT rows of each operand, held in workgroup memory as rows of SROWW i32 words
// (BK bytes and 16 of padding), two buffers an operand (main_db and main_wide take turns, main
// uses the first).

override SG: u32 = 32u;     // the subgroup size (the adapter's, fixed)
override BT: u32 = 64u;     // the tile's rows and columns: 64 (main, main_db) or 128 (main_wide)
override NSG: u32 = 4u;     // subgroups: 4 (BT = 64) or 8 (BT = 128); each stages 2 · BT · KV / (NSG · SG) = 2 vec4 an operand
const BK = 64u;             // bytes of K per stage
const SROWB = BK + 16u;     // bytes per staged row
const SROWW = SROWB / 4u;   // i32 words per staged row
const KV = BK / 16u;        // vec4<i32> per staged row

// The staging buffers (the result matrices pass through d_a in every kernel, after its last stage).
var<workgroup> d_a: array<i32, 2u * BT * SROWW>;
var<workgroup> d_w: array<i32, 2u * BT * SROWW>;

// Loads per invocation per operand and stage: BT · KV vec4 over NSG · SG invocations, vec4 t of
// an operand being words 4·(t % KV) .. + 3 of row t / KV.
struct Stage {
  a0: vec4<i32>,
  a1: vec4<i32>,
  w0: vec4<i32>,
  w1: vec4<i32>,
}

// vec4 t of an operand into buffer `base`: its four words in order, at a 16-byte aligned offset,
// which the compiler can make one 128-bit store. (Storing them rotated, word (i + t) % 4 at step
// i, to spread a subgroup's scalar stores over 32 banks, cost 43 % of main_wide's and main_db's
// speed on the H200, 2026-12-05: the dynamic index into v put it in local memory and the stores
// were no longer one vector store.)
fn put4(buf_a: bool, base: u32, t: u32, v: vec4<i32>) {
  let o = base + (t / KV) * SROWW + (t % KV) * 4u;
  if (buf_a) {
    d_a[o] = v.x;
    d_a[o + 1u] = v.y;
    d_a[o + 2u] = v.z;
    d_a[o + 3u] = v.w;
  } else {
    d_w[o] = v.x;
    d_w[o + 1u] = v.y;
    d_w[o + 2u] = v.z;
    d_w[o + 3u] = v.w;
  }
}

fn stage_store(s: Stage, buf: u32, lid: u32) {
  put4(true, buf * BT * SROWW, lid, s.a0);
  put4(true, buf * BT * SROWW, lid + NSG * SG, s.a1);
  put4(false, buf * BT * SROWW, lid, s.w0);
  put4(false, buf * BT * SROWW, lid + NSG * SG, s.w1);
}
