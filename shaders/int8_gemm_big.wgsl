// int8_gemm_big: int8_gemm_tc.wgsl's product (the same sums, and int8_tc_common.wgsl's params,
// bindings, split K and code reads, appended by the op with int8_store.wgsl) with
// larger results a subgroup: each subgroup owns 4 × 4 result matrices (64 × 64 of Y), so a K step
// of 32 loads 8 fragments for 16 multiplies (main_wide: 6 for 8) and half the fragment bytes a
// multiply. Its registers (16 results of 8 words an invocation) leave no room for main_wide's
// 64-byte stages, so K advances 32 bytes (one K step) a stage, double-buffered with the next
// stage's codes in registers while this one computes (one barrier a stage, as main_wide).
//   main_big  BM × 128 tiles of Y: BM / 64 × 2 subgroups (BM = 128: 'quad', 4 subgroups and 28 KB
//             of workgroup memory; BM = 256: 'big', 8 subgroups and 44 KB).
// Rows of qa / qw past their 64-row padding are read clamped to the buffer (qa_at / qw_at) and
// feed only results at m ≥ M or n ≥ N, which are not written. The staging is in blocks of 16 rows
// and every fragment load and result store takes a block at a constant offset with a constant
// stride (int8_stage.wgsl says why). Results go through d_c (one 16 × 16 slot a subgroup) to be
// scaled and written by int8_store.wgsl's int8_out (appended by the op).

enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);

const CM = 16u;
const CN = 16u;
const CK = 32u;
alias LT = subgroup_matrix_left<i8, CK, CM>;
alias RT = subgroup_matrix_right<i8, CN, CK>;
alias AT = subgroup_matrix_result<i32, CN, CM>;

override SG: u32 = 32u;     // the subgroup size (32: the op refuses others)
override BM: u32 = 256u;    // the tile's rows (of Y: M): 128 or 256
const BN = 128u;            // the tile's columns (of Y: N)
const SGN = 2u;             // subgroups along N
override NSG: u32 = BM / 64u * SGN;  // subgroups: BM / 64 along M (derived: not a pipeline constant)
const BK = 32u;             // K bytes a stage: one K step
const SROWW = 12u;          // i32 words a staged row: BK bytes and 16 of padding (rows 48 bytes apart: a fragment's 16-byte rows on distinct banks)
const KV = BK / 16u;        // vec4<i32> a staged row
const RB = 16u;             // rows a block
const BLKW = RB * SROWW;    // i32 words a block
override WPT: u32 = BN * KV / (NSG * SG);  // vec4 of qw a stage an invocation stages: 1 (BM 256) or 2 (BM 128); qa's: always 2

// Two staging buffers an operand, each BM (qa) or BN (qw) rows in blocks of RB: row r of buffer b
// is row r % RB of block b · rows / RB + r / RB. d_c: a subgroup's result on its way out.
var<workgroup> d_a: array<array<i32, BLKW>, 2u * BM / RB>;
var<workgroup> d_w: array<array<i32, BLKW>, 2u * BN / RB>;
var<workgroup> d_c: array<array<i32, CM * CN>, NSG>;

// A stage's codes of one invocation: vec4 t of qa for t = lid, lid + NSG · SG; of qw for t = lid
// (and lid + NSG · SG where WPT = 2). Vec4 t of an operand is words 4·(t % KV) .. + 3 of tile row t / KV.
struct Stage {
  a0: vec4<i32>,
  a1: vec4<i32>,
  w0: vec4<i32>,
  w1: vec4<i32>,
}

fn stage_load(m0: u32, n0: u32, kv4: u32, k0: u32, lid: u32) -> Stage {
  var s: Stage;
  s.a0 = qa_at(code_index(m0, kv4, k0, lid));
  s.a1 = qa_at(code_index(m0, kv4, k0, lid + NSG * SG));
  s.w0 = qw_at(code_index(n0, kv4, k0, lid));
  if (WPT > 1u) {
    s.w1 = qw_at(code_index(n0, kv4, k0, lid + NSG * SG));
  }
  return s;
}

// Vec4 t of qa (buf_a) or qw into buffer `buf` (its four words in order, 16-byte aligned).
fn put4(buf_a: bool, buf: u32, t: u32, v: vec4<i32>) {
  let row = t / KV;
  let o = (row % RB) * SROWW + (t % KV) * 4u;
  if (buf_a) {
    let b = buf * (BM / RB) + row / RB;
    d_a[b][o] = v.x;
    d_a[b][o + 1u] = v.y;
    d_a[b][o + 2u] = v.z;
    d_a[b][o + 3u] = v.w;
  } else {
    let b = buf * (BN / RB) + row / RB;
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
  if (WPT > 1u) {
    put4(false, buf, lid + NSG * SG, s.w1);
  }
}

// One result matrix of every subgroup, at tile rows r0, columns c0: stored into d_c[sg], scaled and
// written. Uniform control flow (subgroupMatrixStore, barriers).
fn write_one(c: AT, sg: u32, r0: u32, c0: u32, lane: u32, z: u32) {
  subgroupMatrixStore<row_major>(&d_c[sg], 0u, c, CN);
  workgroupBarrier();
  for (var e = lane; e < CM * CN; e += SG) {
    let m = r0 + e / CN;
    let n = c0 + e % CN;
    if (m < params.m && n < params.n) {
      int8_out(m, n, z, params.m, params.n, d_c[sg][e]);
    }
  }
  workgroupBarrier();
}

@compute @workgroup_size(NSG * SG)
fn main_big(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
            @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let wm0 = (sg / SGN) * 64u;
  let wn0 = (sg % SGN) * 64u;
  let kv4 = params.k / 16u;
  let range = stage_range(wg.z);
  var c00: AT; var c01: AT; var c02: AT; var c03: AT;
  var c10: AT; var c11: AT; var c12: AT; var c13: AT;
  var c20: AT; var c21: AT; var c22: AT; var c23: AT;
  var c30: AT; var c31: AT; var c32: AT; var c33: AT;
  stage_store(stage_load(m0, n0, kv4, range.x * BK, lid), 0u, lid);
  workgroupBarrier();
  for (var st = range.x; st < range.y; st++) {
    let buf = (st - range.x) % 2u;
    var next: Stage;
    if (st + 1u < range.y) {
      next = stage_load(m0, n0, kv4, (st + 1u) * BK, lid);
    }
    // This buffer's blocks of the subgroup's rows: wm0 .. + 63 of qa, wn0 .. + 63 of qw.
    let ba = buf * (BM / RB) + wm0 / RB;
    let bw = buf * (BN / RB) + wn0 / RB;
    let l0 = subgroupMatrixLoad<LT, row_major>(&d_a[ba], 0u, SROWW);
    let l1 = subgroupMatrixLoad<LT, row_major>(&d_a[ba + 1u], 0u, SROWW);
    let l2 = subgroupMatrixLoad<LT, row_major>(&d_a[ba + 2u], 0u, SROWW);
    let l3 = subgroupMatrixLoad<LT, row_major>(&d_a[ba + 3u], 0u, SROWW);
    let r0 = subgroupMatrixLoad<RT, col_major>(&d_w[bw], 0u, SROWW);
    let r1 = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 1u], 0u, SROWW);
    let r2 = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 2u], 0u, SROWW);
    let r3 = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 3u], 0u, SROWW);
    c00 = subgroupMatrixMultiplyAccumulate(l0, r0, c00);
    c01 = subgroupMatrixMultiplyAccumulate(l0, r1, c01);
    c02 = subgroupMatrixMultiplyAccumulate(l0, r2, c02);
    c03 = subgroupMatrixMultiplyAccumulate(l0, r3, c03);
    c10 = subgroupMatrixMultiplyAccumulate(l1, r0, c10);
    c11 = subgroupMatrixMultiplyAccumulate(l1, r1, c11);
    c12 = subgroupMatrixMultiplyAccumulate(l1, r2, c12);
    c13 = subgroupMatrixMultiplyAccumulate(l1, r3, c13);
    c20 = subgroupMatrixMultiplyAccumulate(l2, r0, c20);
    c21 = subgroupMatrixMultiplyAccumulate(l2, r1, c21);
    c22 = subgroupMatrixMultiplyAccumulate(l2, r2, c22);
    c23 = subgroupMatrixMultiplyAccumulate(l2, r3, c23);
    c30 = subgroupMatrixMultiplyAccumulate(l3, r0, c30);
    c31 = subgroupMatrixMultiplyAccumulate(l3, r1, c31);
    c32 = subgroupMatrixMultiplyAccumulate(l3, r2, c32);
    c33 = subgroupMatrixMultiplyAccumulate(l3, r3, c33);
    // Buffer 1 − buf was last read before the previous barrier.
    if (st + 1u < range.y) {
      stage_store(next, 1u - buf, lid);
    }
    workgroupBarrier();
  }
  let r = m0 + wm0;
  let c = n0 + wn0;
  write_one(c00, sg, r, c, lane, wg.z);
  write_one(c01, sg, r, c + CN, lane, wg.z);
  write_one(c02, sg, r, c + 2u * CN, lane, wg.z);
  write_one(c03, sg, r, c + 3u * CN, lane, wg.z);
  write_one(c10, sg, r + CM, c, lane, wg.z);
  write_one(c11, sg, r + CM, c + CN, lane, wg.z);
  write_one(c12, sg, r + CM, c + 2u * CN, lane, wg.z);
  write_one(c13, sg, r + CM, c + 3u * CN, lane, wg.z);
  write_one(c20, sg, r + 2u * CM, c, lane, wg.z);
  write_one(c21, sg, r + 2u * CM, c + CN, lane, wg.z);
  write_one(c22, sg, r + 2u * CM, c + 2u * CN, lane, wg.z);
  write_one(c23, sg, r + 2u * CM, c + 3u * CN, lane, wg.z);
  write_one(c30, sg, r + 3u * CM, c, lane, wg.z);
  write_one(c31, sg, r + 3u * CM, c + CN, lane, wg.z);
  write_one(c32, sg, r + 3u * CM, c + 2u * CN, lane, wg.z);
  write_one(c33, sg, r + 3u * CM, c + 3u * CN, lane, wg.z);
}
