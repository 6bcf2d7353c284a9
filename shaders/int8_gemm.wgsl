// int8_gemm: the int8 path of a matrix product Y = X·Wᵀ (issue 19 item 1: the tensor cores take
// only int8 on the GPUs that offer them through WebGPU). Two entry points here, without extensions:
//
//   quantize   X [rows, cols] → codes [rows_pad, words] and scales [rows_pad]:
//                s[r] = max_c |X[r, c]| / 127,   q[r, c] = clamp(round(X[r, c]·127 / max), −127, 127)
//              X is read through weights.wgsl's w_at (prepended by the op), so it may be fp32
//              activations (W_FORMAT 0; row r at element offset + r·stride) or a weight matrix in
//              any storage format (f16, bf16, ggml blocks; offset 0, stride cols): weights are
//              quantized from what the fp32 path would read.
//   quantize_rot  the same after rotating each row by the block-diagonal Hadamard matrix with
//              blocks of ROT columns (Sylvester's order, entries ±1: fp32 butterflies, the codes of
//              the unscaled sums), the scale then times 1/√ROT (H/√ROT is orthonormal), so that
//              X·Wᵀ = (X·H/√ROT)·(W·H/√ROT)ᵀ when the weights' rows are rotated alike. The rotation spreads a
//              row's outliers over its block, so one scale per row loses less (Mamba's out_proj
//              inputs have such outliers). A block at a time in workgroup memory (ROT ≤ WORKGROUP_SIZE,
//              a power of two ≥ 4, cols a multiple of it), computed twice: for the row's max, then
//              for its codes.
//              (0 for a row of zeros), 4 codes per i32 word (column 4w + j in byte j, two's
//              complement), rows ≥ rows and columns ≥ cols written as 0 (the tiles' padding).
//              One workgroup per row (of rows_pad).
//   gemm       Y[m, n] = sa[m]·sb[n]·Σ_k qa[m, k]·qw[n, k] for m < M, n < N (Y [M, N] row-major),
//              the sum exact in i32, then (flags) + bias[n] and + the Y already there; Y's row m
//              starts at element offset + m·stride. One invocation per output. The portable kernel, and the
//              reference int8_gemm_tc.wgsl (the tensor cores) is held to: the same codes give the
//              same i32 sums, so both agree to the final fp32 scaling.

override WORKGROUP_SIZE: u32 = 256u;  // quantize: a power of two
override ROT: u32 = 4u;               // quantize_rot: the Hadamard block (a power of two, 4 ≤ ROT ≤ WORKGROUP_SIZE)

struct Params {
  rows: u32,      // quantize: rows of X; gemm: M
  cols: u32,      // quantize: columns of X; gemm: N
  words: u32,     // quantize, gemm: i32 words per code row (padded columns / 4); int8_gemm_tc: K_pad in bytes
  offset: u32,    // quantize: X's first element; gemm: Y's
  stride: u32,    // quantize: elements between X's rows; gemm: between Y's
  flags: u32,     // gemm: 1 accumulate into Y, 2 add bias
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;               // quantize: X in W_FORMAT
@group(0) @binding(2) var<storage, read_write> codes: array<i32>;       // quantize: [rows_pad, words]
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;      // quantize: [rows_pad]
// gemm: the same bindings as int8_gemm_tc.wgsl (one bind group layout serves both kernels).
@group(0) @binding(1) var<storage, read> qa: array<i32>;                // gemm: [≥ M, words]
@group(0) @binding(2) var<storage, read> qw: array<i32>;                // gemm: [≥ N, words]
@group(0) @binding(3) var<storage, read> sa: array<f32>;                // gemm: [≥ M]
@group(0) @binding(4) var<storage, read> sw: array<f32>;                // gemm: [≥ N]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;           // gemm: Y
@group(0) @binding(6) var<storage, read> bias: array<f32>;              // gemm: [N] (read with flags & 2)

fn w_word(i: u32) -> u32 {
  return src[i];
}

fn w_quad(q: u32) -> vec4<u32> {
  return vec4<u32>(src[4u * q], src[4u * q + 1u], src[4u * q + 2u], src[4u * q + 3u]);
}

var<workgroup> red: array<f32, WORKGROUP_SIZE>;

// The largest of the workgroup's values m (every invocation calls it).
fn workgroup_max(m: f32, lid: u32) -> f32 {
  red[lid] = m;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      red[lid] = max(red[lid], red[lid + stride]);
    }
    workgroupBarrier();
  }
  let out = red[0];
  workgroupBarrier();  // red is written again by the next call
  return out;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn quantize(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wg.x;
  let live = r < params.rows;
  let e0 = params.offset + r * params.stride;
  var m = 0.0;
  if (live) {
    for (var c = lid; c < params.cols; c += WORKGROUP_SIZE) {
      m = max(m, abs(w_at(e0 + c)));
    }
  }
  let amax = workgroup_max(m, lid);
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  for (var w = lid; w < params.words; w += WORKGROUP_SIZE) {
    var word = 0u;
    for (var j = 0u; j < 4u; j++) {
      let c = 4u * w + j;
      if (live && c < params.cols) {
        let q = i32(clamp(round(w_at(e0 + c) * inv), -127.0, 127.0));
        word |= (bitcast<u32>(q) & 0xffu) << (8u * j);
      }
    }
    codes[r * params.words + w] = bitcast<i32>(word);
  }
  if (lid == 0u) {
    scales[r] = amax / 127.0;
  }
}

var<workgroup> hb: array<f32, WORKGROUP_SIZE>;
var<workgroup> hq: array<u32, WORKGROUP_SIZE>;

// Invocation lid's element of the rotated block of ROT elements from e (0 for lid ≥ ROT or a dead
// row): the fast Walsh–Hadamard transform in hb, unscaled (sums and differences only, in the
// order int8-gemm.ref.ts hadamardRowsF32 repeats). Every invocation calls it.
fn rotated_block(e: u32, lid: u32, live: bool) -> f32 {
  if (lid < ROT) {
    hb[lid] = select(0.0, w_at(e + lid), live);
  }
  workgroupBarrier();
  for (var h = 1u; h < ROT; h *= 2u) {
    var v = 0.0;
    if (lid < ROT) {
      let a = hb[lid];
      let b = hb[lid ^ h];
      v = select(b - a, a + b, (lid & h) == 0u);
    }
    workgroupBarrier();
    if (lid < ROT) {
      hb[lid] = v;
    }
    workgroupBarrier();
  }
  let out = select(0.0, hb[lid % ROT], lid < ROT);
  workgroupBarrier();  // hb is written again by the next block
  return out;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn quantize_rot(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wg.x;
  let live = r < params.rows;
  let e0 = params.offset + r * params.stride;
  let blocks = params.cols / ROT;
  var m = 0.0;
  for (var b = 0u; b < blocks; b++) {
    m = max(m, abs(rotated_block(e0 + b * ROT, lid, live)));
  }
  let amax = workgroup_max(m, lid);
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  for (var b = 0u; b < blocks; b++) {
    let v = rotated_block(e0 + b * ROT, lid, live);
    if (lid < ROT) {
      hq[lid] = bitcast<u32>(i32(clamp(round(v * inv), -127.0, 127.0))) & 0xffu;
    }
    workgroupBarrier();
    if (lid < ROT / 4u) {
      let c = 4u * lid;
      codes[r * params.words + b * (ROT / 4u) + lid] = bitcast<i32>(hq[c] | (hq[c + 1u] << 8u) | (hq[c + 2u] << 16u) | (hq[c + 3u] << 24u));
    }
    workgroupBarrier();
  }
  for (var w = params.cols / 4u + lid; w < params.words; w += WORKGROUP_SIZE) {
    codes[r * params.words + w] = 0;
  }
  if (lid == 0u) {
    scales[r] = amax / 127.0 * inverseSqrt(f32(ROT));
  }
}

// The four signed bytes of a code word.
fn bytes4(v: i32) -> vec4<i32> {
  return vec4<i32>(extractBits(v, 0u, 8u), extractBits(v, 8u, 8u), extractBits(v, 16u, 8u), extractBits(v, 24u, 8u));
}

@compute @workgroup_size(16, 16)
fn gemm(@builtin(global_invocation_id) g: vec3<u32>) {
  let n = g.x;
  let m = g.y;
  if (m >= params.rows || n >= params.cols) {
    return;
  }
  var acc = 0i;
  for (var w = 0u; w < params.words; w++) {
    acc += dot(bytes4(qa[m * params.words + w]), bytes4(qw[n * params.words + w]));
  }
  int8_store(m, n, acc);  // int8_store.wgsl, appended
}
