// int8_gemm_direct: int8_gemm_tc.wgsl's product (the same sums, exact in i32, and
// int8_tc_common.wgsl's params, bindings and split K, appended by the op with int8_store.wgsl)
// with the matrix fragments loaded straight from the storage buffers: no staging of the codes
// through workgroup memory.
//
//   Y[m, n] = sa[m]·sw[n]·Σ_k qa[m, k]·qw[n, k] (+ bias[n]) (+ Y[m, n])   for m < M, n < N
//
// Why: every other kernel copies each stage of K global → registers → workgroup memory and then
// loads the fragments from there, with a barrier a stage (int8_gemm_tc.wgsl main_wide, and
// int8_gemm_big.wgsl); they measure ~10 % of the tensor cores' int8 peak on the H100 / H200. Here
// each subgroup loads its fragments itself with subgroupMatrixLoad from qa and qw (storage
// pointers to runtime arrays of i32 are among the builtin's overloads): no workgroup memory and no
// barrier in the K loop, so the subgroups of a workgroup never wait for each other, and the
// copies into workgroup memory are gone. What it gives up: a row of qa is loaded by the SGN
// subgroups that share it and a row of qw by the BM / 32 that share it (the staging kernels load
// each once a workgroup), so it leans on the L1 / L2 caches to serve the repeats.
//   main_direct  BM × BN tiles of Y (pipeline constants; the op's 'direct': 128 × 128) on NSG =
//                BM / 32 × BN / 64 subgroups (8), each owning 2 × 4 result matrices (32 × 64)
//                as main_wide: per K step of 32 bytes it loads 2 left and 4 right fragments for
//                8 multiplies.
// The loads are pipelined in registers: the fragments of step s + 1 are loaded before step s's
// multiplies are issued, so their latency hides behind those multiplies (the last step loads its
// own fragments again: a valid place, and no branch around the loads).
// Layout: qa [M_pad, K_pad] and qw [N_pad, K_pad] are int8 codes, 4 an i32 word, rows padded with
// zeros to 64 and K to 64 bytes (int8_gemm.wgsl `quantize`); a left fragment is 16 rows of qa
// (row-major, rows K_pad / 4 words apart), a right one 16 rows of qw (column n of the K × N
// operand is row n of W: col_major, the same stride). Offsets and strides count i32 words (the
// elements of the array the pointer is to, as this Dawn's subgroupMatrixLoad takes them for i8
// matrices; int8_gemm_tc.wgsl likewise). A 128 tile reaches past the 64-row padding: a fragment
// whose 16 rows start at or past the padded rows (then all 16 are: both are multiples of 16) loads
// from row 0 instead, explicitly, so that this holds with Dawn's robustness off too (bench
// --dawn-features disable_robustness); its results are at m ≥ M or n ≥ N, never written.
// Robustness: Dawn clamps a fragment load whose offset it cannot bound with selects on its offset
// and stride (int8_stage.wgsl says what that cost the staging kernels); every load here is one (an
// offset into a runtime-sized array, and a stride, K_pad / 4 words, that is a uniform), so bench it
// with and without disable_robustness.
// Results: after the K loop each subgroup stores each of its 16 × 16 i32 results into its block
// of d_c and scales and writes it through int8_store.wgsl's int8_out (split K: the raw sums to
// the partials for int8_reduce.wgsl), as int8_gemm_big.wgsl does.

enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);  // older Dawn builds' analysis (a warning where unknown)

const CM = 16u;
const CN = 16u;
const CK = 32u;
alias LT = subgroup_matrix_left<i8, CK, CM>;
alias RT = subgroup_matrix_right<i8, CN, CK>;
alias AT = subgroup_matrix_result<i32, CN, CM>;

override SG: u32 = 32u;     // the subgroup size (32: the op refuses others)
override BM: u32 = 128u;    // the tile's rows (of Y: M), a multiple of 32
override BN: u32 = 128u;    // the tile's columns (of Y: N), a multiple of 64
override SGN: u32 = BN / (4u * CN);        // subgroups along N (derived: not a pipeline constant)
override NSG: u32 = BM / (2u * CM) * SGN;  // subgroups (derived likewise)
const BK = 64u;             // K bytes of a split's unit (stage_range; a split takes whole units)
const KW = CK / 4u;         // i32 words of a code row a K step takes

// The codes, 4 an i32 word: the array type subgroupMatrixLoad reads i8 fragments from.
@group(0) @binding(1) var<storage, read> qa: array<i32>;
@group(0) @binding(2) var<storage, read> qw: array<i32>;

// A subgroup's result on its way out: one 16 × 16 block a subgroup.
var<workgroup> d_c: array<array<i32, CM * CN>, NSG>;

// The first word of code row `row` (rows of kw words), or of row 0 where the row is at or past
// the `rows` rows' padding to 64 (quantize's M_pad / N_pad): in the buffer either way.
fn code_row(row: u32, rows: u32, kw: u32) -> u32 {
  let padded = (rows + 63u) / 64u * 64u;
  return select(0u, row * kw, row < padded);
}

// One result matrix of every subgroup, at rows r0, columns c0 of Y: stored into d_c[sg], scaled
// and written. Uniform control flow (subgroupMatrixStore, barriers).
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

// (lid is not read here: test/support/subgroup-matrix-mock.ts derives sg and lane from it.)
@compute @workgroup_size(NSG * SG)
fn main_direct(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
               @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let m0 = wg.y * BM + (sg / SGN) * (2u * CM);
  let n0 = wg.x * BN + (sg % SGN) * (4u * CN);
  let kw = params.k / 4u;
  // The first word of each fragment's rows: qa rows m0, m0 + 16; qw rows n0 + 16j.
  let a0 = code_row(m0, params.m, kw);
  let a1 = code_row(m0 + CM, params.m, kw);
  let b0 = code_row(n0, params.n, kw);
  let b1 = code_row(n0 + CN, params.n, kw);
  let b2 = code_row(n0 + 2u * CN, params.n, kw);
  let b3 = code_row(n0 + 3u * CN, params.n, kw);
  // The K steps [first, end) of this workgroup (its split's stages, two steps each); the first
  // loads clamped to the last step of K, so that an empty range reads inside the rows too.
  let range = stage_range(wg.z);
  let first = range.x * (BK / CK);
  let end = range.y * (BK / CK);
  let k0 = min(first, params.k / CK - 1u) * KW;
  var c00: AT;
  var c01: AT;
  var c02: AT;
  var c03: AT;
  var c10: AT;
  var c11: AT;
  var c12: AT;
  var c13: AT;
  var l0 = subgroupMatrixLoad<LT, row_major>(&qa, a0 + k0, kw);
  var l1 = subgroupMatrixLoad<LT, row_major>(&qa, a1 + k0, kw);
  var r0 = subgroupMatrixLoad<RT, col_major>(&qw, b0 + k0, kw);
  var r1 = subgroupMatrixLoad<RT, col_major>(&qw, b1 + k0, kw);
  var r2 = subgroupMatrixLoad<RT, col_major>(&qw, b2 + k0, kw);
  var r3 = subgroupMatrixLoad<RT, col_major>(&qw, b3 + k0, kw);
  for (var s = first; s < end; s++) {
    // Step s + 1's fragments first (the last step: its own again), then step s's multiplies.
    let k = min(s + 1u, end - 1u) * KW;
    let nl0 = subgroupMatrixLoad<LT, row_major>(&qa, a0 + k, kw);
    let nl1 = subgroupMatrixLoad<LT, row_major>(&qa, a1 + k, kw);
    let nr0 = subgroupMatrixLoad<RT, col_major>(&qw, b0 + k, kw);
    let nr1 = subgroupMatrixLoad<RT, col_major>(&qw, b1 + k, kw);
    let nr2 = subgroupMatrixLoad<RT, col_major>(&qw, b2 + k, kw);
    let nr3 = subgroupMatrixLoad<RT, col_major>(&qw, b3 + k, kw);
    c00 = subgroupMatrixMultiplyAccumulate(l0, r0, c00);
    c01 = subgroupMatrixMultiplyAccumulate(l0, r1, c01);
    c02 = subgroupMatrixMultiplyAccumulate(l0, r2, c02);
    c03 = subgroupMatrixMultiplyAccumulate(l0, r3, c03);
    c10 = subgroupMatrixMultiplyAccumulate(l1, r0, c10);
    c11 = subgroupMatrixMultiplyAccumulate(l1, r1, c11);
    c12 = subgroupMatrixMultiplyAccumulate(l1, r2, c12);
    c13 = subgroupMatrixMultiplyAccumulate(l1, r3, c13);
    l0 = nl0;
    l1 = nl1;
    r0 = nr0;
    r1 = nr1;
    r2 = nr2;
    r3 = nr3;
  }
  write_one(c00, sg, m0, n0, lane, wg.z);
  write_one(c01, sg, m0, n0 + CN, lane, wg.z);
  write_one(c02, sg, m0, n0 + 2u * CN, lane, wg.z);
  write_one(c03, sg, m0, n0 + 3u * CN, lane, wg.z);
  write_one(c10, sg, m0 + CM, n0, lane, wg.z);
  write_one(c11, sg, m0 + CM, n0 + CN, lane, wg.z);
  write_one(c12, sg, m0 + CM, n0 + 2u * CN, lane, wg.z);
  write_one(c13, sg, m0 + CM, n0 + 3u * CN, lane, wg.z);
}
