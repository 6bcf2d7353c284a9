// int8_gemm_tc: Y = X·Wᵀ over int8 codes on the tensor cores, through cooperative matrices
// (Dawn's chromium_experimental_subgroup_matrix: the feature 'chromium-experimental-subgroup-matrix',
// offered with allow_unsafe_apis / --enable-unsafe-webgpu). The same sums as int8_gemm.wgsl's
// `gemm` (exact in i32), for the config i8 × i8 → i32, M = N = 16, K = 32 (NVIDIA's; the op checks
// that the adapter offers it):
//
//   Y[m, n] = sa[m]·sb[n]·Σ_k qa[m, k]·qw[n, k] (+ bias[n]) (+ Y[m, n])   for m < M, n < N
//   (Y's row m at element offset + m·stride; flags as int8_gemm.wgsl's)
//
// qa [M_pad, K_pad] and qw [N_pad, K_pad] are int8 codes, 4 per i32 word, rows padded with zeros to
// 64 and K to 64 bytes (int8_gemm.wgsl `quantize` writes them so). A workgroup computes a BT × BT
// tile of Y with NSG subgroups of SG invocations in a grid of NSG / 2 along M by 2 along N; K
// advances 64 bytes at a time through workgroup memory (rows padded by 16 bytes). Three kernels:
//   main     BT = 64, NSG = 4: each subgroup owns 2 × 2 result matrices (32 × 32); a stage loaded
//            into the first staging buffers, a barrier, computed, a barrier (any subgroup size).
//   main_db  the same tile, double-buffered, two stages of loads in flight (below).
//   main_wide BT = 128, NSG = 8: each subgroup owns 2 × 4 result matrices (32 × 64), double-
//            buffered as main_db: twice the multiplies per staged byte and per fragment loaded.
// A 128 tile reaches past the 64-row padding of qa / qw: those rows are read clamped to the
// buffer (code_at, explicitly, so that this holds with Dawn's robustness off too: bench
// --dawn-features disable_robustness) and feed only results at m ≥ M or n ≥ N, which are not written.
// Every fragment is loaded from one 16-row block of the staging (int8_stage.wgsl) at a constant
// offset with a constant stride, and every result stored to one at offset 0, so that Dawn's
// robustness has nothing to clamp there (the K steps of a stage are written out, not looped, for
// the same reason). The i32 results go through workgroup memory (the staging buffer, after the last stage) to be
// scaled and written, or with a split K (params.split) each split's raw sums to the partials
// (int8_store.wgsl int8_out) for int8_reduce.wgsl. Offsets and strides of the i8 matrices count i32 words (this Dawn's
// subgroupMatrixLoad). Measured on an H200: bench/RESULTS.md (issue 19 item 1).
// The params, bindings, stage_range and the code reads (code_index, qa_at, qw_at) are in
// int8_tc_common.wgsl (shared with int8_gemm_big.wgsl); the tile's sizes (SG, BT, NSG, BK, SROWW,
// KV), the staging buffers d_a / d_w and the staging stores (put4, Stage, stage_store) are in
// int8_stage.wgsl (tested alone on any adapter: test/gpu/int8-gemm.test.ts); both appended by the op.

enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);  // older Dawn builds' analysis (a warning where unknown)

const CM = 16u;
const CN = 16u;
const CK = 32u;
alias LT = subgroup_matrix_left<i8, CK, CM>;
alias RT = subgroup_matrix_right<i8, CN, CK>;
alias AT = subgroup_matrix_result<i32, CN, CM>;

const SGN = 2u;             // subgroups along N

// Scales and writes one 16 × 16 result matrix (at tile rows r0, columns c0) from block b of d_a
// (int8_store.wgsl, appended).
fn write_matrix(b: u32, r0: u32, c0: u32, lane: u32, z: u32) {
  for (var e = lane; e < CM * CN; e += SG) {
    let m = r0 + e / CN;
    let n = c0 + e % CN;
    if (m < params.m && n < params.n) {
      int8_out(m, n, z, params.m, params.n, d_a[b][e]);
    }
  }
}

// One result matrix of every subgroup: each stores its own into block sg of d_a (BLKW = 320 ≥
// 256 words; 2 · BT / RB blocks ≥ NSG), then scales and writes it. Uniform control flow
// (subgroupMatrixStore, barriers); the caller has passed a barrier after its last stage.
fn write_one(c: AT, sg: u32, r0: u32, c0: u32, lane: u32, z: u32) {
  subgroupMatrixStore<row_major>(&d_a[sg], 0u, c, CN);
  workgroupBarrier();
  write_matrix(sg, r0, c0, lane, z);
  workgroupBarrier();
}

// A subgroup's four 16 × 16 results of main / main_db (rows r0 and r0 + CM, columns c0 and c0 + CN).
fn write_tiles(c00: AT, c01: AT, c10: AT, c11: AT, sg: u32, r0: u32, c0: u32, lane: u32, z: u32) {
  write_one(c00, sg, r0, c0, lane, z);
  write_one(c01, sg, r0, c0 + CN, lane, z);
  write_one(c10, sg, r0 + CM, c0, lane, z);
  write_one(c11, sg, r0 + CM, c0 + CN, lane, z);
}

@compute @workgroup_size(NSG * SG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let m0 = wg.y * BT;
  let n0 = wg.x * BT;
  let wm0 = (sg / SGN) * (2u * CM);
  let wn0 = (sg % SGN) * (2u * CN);
  let kv4 = params.k / 16u;  // vec4 words per code row
  var c00: AT;
  var c01: AT;
  var c10: AT;
  var c11: AT;
  // The subgroup's blocks in the first staging buffers: rows wm0 .. + 31 of a, wn0 .. + 31 of w.
  let ba = wm0 / RB;
  let bw = wn0 / RB;
  let range = stage_range(wg.z);
  for (var k0 = range.x * BK; k0 < range.y * BK; k0 += BK) {
    // The stage into the first staging buffers (int8_stage.wgsl put4), for any subgroup size.
    for (var t = lid; t < BT * KV; t += NSG * SG) {
      put4(true, 0u, t, qa_at(code_index(m0, kv4, k0, t)));
      put4(false, 0u, t, qw_at(code_index(n0, kv4, k0, t)));
    }
    workgroupBarrier();
    // The stage's two K steps of CK bytes: words 0 .. 7 and 8 .. 15 of each row.
    let l0 = subgroupMatrixLoad<LT, row_major>(&d_a[ba], 0u, SROWW);
    let l1 = subgroupMatrixLoad<LT, row_major>(&d_a[ba + 1u], 0u, SROWW);
    let r0 = subgroupMatrixLoad<RT, col_major>(&d_w[bw], 0u, SROWW);
    let r1 = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 1u], 0u, SROWW);
    c00 = subgroupMatrixMultiplyAccumulate(l0, r0, c00);
    c01 = subgroupMatrixMultiplyAccumulate(l0, r1, c01);
    c10 = subgroupMatrixMultiplyAccumulate(l1, r0, c10);
    c11 = subgroupMatrixMultiplyAccumulate(l1, r1, c11);
    let m0b = subgroupMatrixLoad<LT, row_major>(&d_a[ba], CK / 4u, SROWW);
    let m1b = subgroupMatrixLoad<LT, row_major>(&d_a[ba + 1u], CK / 4u, SROWW);
    let s0b = subgroupMatrixLoad<RT, col_major>(&d_w[bw], CK / 4u, SROWW);
    let s1b = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 1u], CK / 4u, SROWW);
    c00 = subgroupMatrixMultiplyAccumulate(m0b, s0b, c00);
    c01 = subgroupMatrixMultiplyAccumulate(m0b, s1b, c01);
    c10 = subgroupMatrixMultiplyAccumulate(m1b, s0b, c10);
    c11 = subgroupMatrixMultiplyAccumulate(m1b, s1b, c11);
    workgroupBarrier();
  }
  write_tiles(c00, c01, c10, c11, sg, m0 + wm0, n0 + wn0, lane, wg.z);
}

// main_db: the same product with the codes of the next two stages loaded into registers while
// this stage computes (each load issued two stages before its codes are used), and two staging
// buffers (ping-pong), so one barrier per stage instead of two and the global loads' latency
// hidden behind the tensor-core work. The same tile, subgroups and result.
// A stage's codes of this invocation (Stage, int8_stage.wgsl: BT · KV vec4 an operand over NSG · SG invocations).
fn stage_load(m0: u32, n0: u32, kv4: u32, k0: u32, lid: u32) -> Stage {
  var s: Stage;
  let t0 = lid;
  let t1 = lid + NSG * SG;
  s.a0 = qa_at(code_index(m0, kv4, k0, t0));
  s.a1 = qa_at(code_index(m0, kv4, k0, t1));
  s.w0 = qw_at(code_index(n0, kv4, k0, t0));
  s.w1 = qw_at(code_index(n0, kv4, k0, t1));
  return s;
}

@compute @workgroup_size(NSG * SG)
fn main_db(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
           @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let m0 = wg.y * BT;
  let n0 = wg.x * BT;
  let wm0 = (sg / SGN) * (2u * CM);
  let wn0 = (sg % SGN) * (2u * CN);
  let kv4 = params.k / 16u;
  let range = stage_range(wg.z);
  var c00: AT;
  var c01: AT;
  var c10: AT;
  var c11: AT;
  stage_store(stage_load(m0, n0, kv4, range.x * BK, lid), 0u, lid);
  // Two stages in flight: `ahead` (the next stage's codes) was issued an iteration before it is
  // stored, and each iteration issues the loads of the stage after it, so a load has two stages
  // of tensor-core work to arrive in, not one.
  var ahead: Stage;
  if (range.x + 1u < range.y) {
    ahead = stage_load(m0, n0, kv4, (range.x + 1u) * BK, lid);
  }
  workgroupBarrier();
  for (var st = range.x; st < range.y; st++) {
    let buf = (st - range.x) % 2u;
    var after: Stage;
    if (st + 2u < range.y) {
      after = stage_load(m0, n0, kv4, (st + 2u) * BK, lid);
    }
    // This buffer's blocks of the subgroup's rows (wm0 .. + 31 of a, wn0 .. + 31 of w).
    let ba = buf * (BT / RB) + wm0 / RB;
    let bw = buf * (BT / RB) + wn0 / RB;
    let l0 = subgroupMatrixLoad<LT, row_major>(&d_a[ba], 0u, SROWW);
    let l1 = subgroupMatrixLoad<LT, row_major>(&d_a[ba + 1u], 0u, SROWW);
    let r0 = subgroupMatrixLoad<RT, col_major>(&d_w[bw], 0u, SROWW);
    let r1 = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 1u], 0u, SROWW);
    c00 = subgroupMatrixMultiplyAccumulate(l0, r0, c00);
    c01 = subgroupMatrixMultiplyAccumulate(l0, r1, c01);
    c10 = subgroupMatrixMultiplyAccumulate(l1, r0, c10);
    c11 = subgroupMatrixMultiplyAccumulate(l1, r1, c11);
    let m0b = subgroupMatrixLoad<LT, row_major>(&d_a[ba], CK / 4u, SROWW);
    let m1b = subgroupMatrixLoad<LT, row_major>(&d_a[ba + 1u], CK / 4u, SROWW);
    let s0b = subgroupMatrixLoad<RT, col_major>(&d_w[bw], CK / 4u, SROWW);
    let s1b = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 1u], CK / 4u, SROWW);
    c00 = subgroupMatrixMultiplyAccumulate(m0b, s0b, c00);
    c01 = subgroupMatrixMultiplyAccumulate(m0b, s1b, c01);
    c10 = subgroupMatrixMultiplyAccumulate(m1b, s0b, c10);
    c11 = subgroupMatrixMultiplyAccumulate(m1b, s1b, c11);
    if (st + 1u < range.y) {
      stage_store(ahead, 1u - buf, lid);  // buffer 1 − buf was last read before the previous barrier
    }
    ahead = after;
    workgroupBarrier();
  }
  write_tiles(c00, c01, c10, c11, sg, m0 + wm0, n0 + wn0, lane, wg.z);
}

// main_wide: BT = 128, NSG = 8 (the op sets both): each subgroup owns 2 × 4 result matrices (rows
// wm0, wm0 + 16; columns wn0 + 16j), so a K step of 32 loads 6 fragments for 8 multiplies (main_db:
// 4 for 4) and each staged byte feeds twice the multiplies. Double-buffered as main_db, with one
// stage of loads in flight, or two with WIDE_DEEP (the 'wide-deep' kernel: 16 more registers an
// invocation where the registers may already limit how many workgroups run at once).
override WIDE_DEEP: bool = false;
@compute @workgroup_size(NSG * SG)
fn main_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
             @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let m0 = wg.y * BT;
  let n0 = wg.x * BT;
  let wm0 = (sg / SGN) * (2u * CM);
  let wn0 = (sg % SGN) * (4u * CN);
  let kv4 = params.k / 16u;
  let range = stage_range(wg.z);
  var c00: AT;
  var c01: AT;
  var c02: AT;
  var c03: AT;
  var c10: AT;
  var c11: AT;
  var c12: AT;
  var c13: AT;
  stage_store(stage_load(m0, n0, kv4, range.x * BK, lid), 0u, lid);
  // WIDE_DEEP: two stages in flight as in main_db (`ahead` issued an iteration before it is
  // stored); else each iteration loads the next stage and stores it.
  var ahead: Stage;
  if (WIDE_DEEP && range.x + 1u < range.y) {
    ahead = stage_load(m0, n0, kv4, (range.x + 1u) * BK, lid);
  }
  workgroupBarrier();
  let lead = select(1u, 2u, WIDE_DEEP);
  for (var st = range.x; st < range.y; st++) {
    let buf = (st - range.x) % 2u;
    var next: Stage;
    if (st + lead < range.y) {
      next = stage_load(m0, n0, kv4, (st + lead) * BK, lid);
    }
    // This buffer's blocks of the subgroup's rows (wm0 .. + 31 of a, wn0 .. + 63 of w); the two
    // K steps of the stage written out (constant offsets 0 and CK / 4 words).
    let ba = buf * (BT / RB) + wm0 / RB;
    let bw = buf * (BT / RB) + wn0 / RB;
    let l0 = subgroupMatrixLoad<LT, row_major>(&d_a[ba], 0u, SROWW);
    let l1 = subgroupMatrixLoad<LT, row_major>(&d_a[ba + 1u], 0u, SROWW);
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
    let u0 = subgroupMatrixLoad<LT, row_major>(&d_a[ba], CK / 4u, SROWW);
    let u1 = subgroupMatrixLoad<LT, row_major>(&d_a[ba + 1u], CK / 4u, SROWW);
    let v0 = subgroupMatrixLoad<RT, col_major>(&d_w[bw], CK / 4u, SROWW);
    let v1 = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 1u], CK / 4u, SROWW);
    let v2 = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 2u], CK / 4u, SROWW);
    let v3 = subgroupMatrixLoad<RT, col_major>(&d_w[bw + 3u], CK / 4u, SROWW);
    c00 = subgroupMatrixMultiplyAccumulate(u0, v0, c00);
    c01 = subgroupMatrixMultiplyAccumulate(u0, v1, c01);
    c02 = subgroupMatrixMultiplyAccumulate(u0, v2, c02);
    c03 = subgroupMatrixMultiplyAccumulate(u0, v3, c03);
    c10 = subgroupMatrixMultiplyAccumulate(u1, v0, c10);
    c11 = subgroupMatrixMultiplyAccumulate(u1, v1, c11);
    c12 = subgroupMatrixMultiplyAccumulate(u1, v2, c12);
    c13 = subgroupMatrixMultiplyAccumulate(u1, v3, c13);
    if (st + 1u < range.y) {
      if (WIDE_DEEP) {
        stage_store(ahead, 1u - buf, lid);
      } else {
        stage_store(next, 1u - buf, lid);
      }
    }
    if (WIDE_DEEP) {
      ahead = next;
    }
    workgroupBarrier();
  }
  let r0 = m0 + wm0;
  let c0 = n0 + wn0;
  write_tiles(c00, c01, c10, c11, sg, r0, c0, lane, wg.z);
  write_tiles(c02, c03, c12, c13, sg, r0, c0 + 2u * CN, lane, wg.z);
}
