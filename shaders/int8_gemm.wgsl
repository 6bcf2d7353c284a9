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
//              inputs have such outliers). ROT is a power of two from 4 to 4·WORKGROUP_SIZE dividing
//              cols; the row goes through in passes of 4·WORKGROUP_SIZE columns (rotate_pass), kept
//              in registers from the max to the codes.
//              (0 for a row of zeros), 4 codes per i32 word (column 4w + j in byte j, two's
//              complement), rows ≥ rows and columns ≥ cols written as 0 (the tiles' padding).
//              One workgroup per row (of rows_pad).
//   gemm       Y[m, n] = sa[m]·sb[n]·Σ_k qa[m, k]·qw[n, k] for m < M, n < N (Y [M, N] row-major),
//              the sum exact in i32, then (flags) + bias[n] and + the Y already there; Y's row m
//              starts at element offset + m·stride. One invocation per output (per split of K: the
//              partial sums of params.split bytes each, added by int8_reduce.wgsl). The portable kernel, and the
//              reference int8_gemm_tc.wgsl (the tensor cores) is held to: the same codes give the
//              same i32 sums, so both agree to the final fp32 scaling.

override WORKGROUP_SIZE: u32 = 256u;  // quantize: a power of two
override ROT: u32 = 4u;               // quantize_rot: the Hadamard block (a power of two, 4 ≤ ROT ≤ 4·WORKGROUP_SIZE)
// quantize, quantize_rot: the subgroup size where subgroups are runs of SG_SIZE consecutive
// invocations (app/gpu/context.ts subgroupLayout; SG_SIZE divides WORKGROUP_SIZE), else 0. Then
// the row's max is a subgroupMax and one exchange through workgroup memory, and the butterflies
// whose partner is in the same subgroup swap through subgroupShuffleXor: no barriers for them.
// sg_max_f32, sg_add_f32 and sg_xor_v4 come from the prefix the op prepends (app/kernels/subgroups.ts).
override SG_SIZE: u32 = 0u;
// quantize_rot: X is Mamba-2's gated RMSNorm of one group, not computed: column c of row r is
// u·g with u = y[r, c]·silu(z[r, c]) (y from src, fp32; z a strided view at binding 4, g at
// binding 5), and the row's scale is multiplied by the norm's rsqrt(Σ_c u² / cols + eps). The
// codes of a row do not change with a factor on the whole row (they are of v / max|v|), so the
// norm's scale needs no pass of its own.
override GATED: bool = false;
// quantize_rot: X is the block's residual add and RMSNorm (residual_rmsnorm.wgsl), not computed:
// with v = s·hidden[r, c] (+ residual[r, c] where has_residual), src the hidden [rows, cols] (fp32,
// offset 0, stride cols), residual[r, c] := v (binding 6, written: the stream the next layer adds
// to), column c of X is v·g[c] (g at binding 5), and the row's scale is multiplied by
// rsqrt(Σ_c v² / cols + eps)·o, as GATED's. Rows past the passes kept in registers read v back
// from the residual they wrote.
override RESIDUAL: bool = false;

struct Params {
  rows: u32,      // quantize: rows of X; gemm: M
  cols: u32,      // quantize: columns of X; gemm: N
  words: u32,     // quantize, gemm: i32 words per code row (padded columns / 4); int8_gemm_tc: K_pad in bytes
  offset: u32,    // quantize: X's first element; gemm: Y's
  stride: u32,    // quantize: elements between X's rows; gemm: between Y's
  flags: u32,     // gemm: 1 accumulate into Y, 2 add bias
  split: u32,     // gemm: K bytes a split takes (a multiple of 64; workgroup_id.z the split), 0: not split (int8_store.wgsl int8_out)
  _pad1: u32,
  z_offset: u32,  // quantize_rot with GATED: z[r, c] = gate_z[z_offset + r·z_stride + c]
  z_stride: u32,
  eps: f32,       // quantize_rot with GATED or RESIDUAL: the norm's epsilon
  has_residual: u32,  // quantize_rot with RESIDUAL: 0 for the first layer (residual := s·hidden)
  hidden_scale: f32,  // quantize_rot with RESIDUAL: s
  out_scale: f32,     // quantize_rot with GATED or RESIDUAL: o, a factor on the normed row
  _pad2: u32,
  _pad3: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;               // quantize: X in W_FORMAT
@group(0) @binding(2) var<storage, read_write> codes: array<i32>;       // quantize: [rows_pad, words]
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;      // quantize: [rows_pad]
@group(0) @binding(4) var<storage, read> gate_z: array<f32>;            // quantize_rot with GATED: z
@group(0) @binding(5) var<storage, read> gate_g: array<f32>;            // quantize_rot with GATED or RESIDUAL: the norm weight g [cols]
@group(0) @binding(6) var<storage, read_write> residual: array<f32>;    // quantize_rot with RESIDUAL: [rows, cols], updated in place
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

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// The largest of the workgroup's values m (every invocation calls it).
fn workgroup_max(m: f32, lid: u32) -> f32 {
  if (SG_SIZE > 0u) {
    let sg = max(SG_SIZE, 1u);
    let top = sg_max_f32(m);
    if (lid % sg == 0u) {
      partial[lid / sg] = top;
    }
    workgroupBarrier();
    var out = partial[0];
    for (var i = 1u; i < WORKGROUP_SIZE / sg; i++) {
      out = max(out, partial[i]);
    }
    workgroupBarrier();  // partial is written again by the next call
    return out;
  }
  partial[lid] = m;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] = max(partial[lid], partial[lid + stride]);
    }
    workgroupBarrier();
  }
  let out = partial[0];
  workgroupBarrier();  // partial is written again by the next call
  return out;
}

// silu: shaders/sigmoid.wgsl, prepended by the op.

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

// quantize_rot keeps a row in passes of 4 · WORKGROUP_SIZE columns, 4 consecutive columns an
// invocation (a vec4): the butterflies of h = 1, 2 stay in the invocation, those of h ≥ 4 pair it
// with invocation lid ^ (h / 4): in its subgroup by a shuffle (h / 4 < SG_SIZE), else through
// workgroup memory (two buffers taken in turn, so one barrier a stage). The first MAX_PASSES passes stay in registers from the max to the codes; a longer row's
// later passes are rotated again for their codes.
const MAX_PASSES: u32 = 8u;
// The row's passes, ceil(cols / (4·WORKGROUP_SIZE)), when the op knows them at pipeline creation
// (it always does): a constant lets the compiler drop the kept registers of the passes past them
// (at d_model 768 one vec4 instead of MAX_PASSES); 0: from params.cols.
override PASSES: u32 = 0u;
var<workgroup> hv: array<vec4<f32>, 2u * WORKGROUP_SIZE>;

// The sum and difference of a butterfly: own + partner where column q has (q & h) = 0, else
// partner − own (int8-gemm.ref.ts butterflies: lower a + c, upper a − c).
fn butterfly(own: vec4<f32>, partner: vec4<f32>, lower: bool) -> vec4<f32> {
  return select(partner - own, own + partner, lower);
}

// Columns p·4·WG + 4·lid .. + 3 of the row from e0 rotated (zeros past cols or for a dead row).
// Every invocation calls it (barriers); *flip alternates the workgroup buffers across calls. again:
// the pass was read before (RESIDUAL: its residual is written; v is read back from it).
fn rotate_pass(e0: u32, r: u32, p: u32, lid: u32, live: bool, again: bool, flip: ptr<function, u32>, sq: ptr<function, f32>) -> vec4<f32> {
  let i0 = p * 4u * WORKGROUP_SIZE + 4u * lid;
  var v = vec4<f32>(0.0);
  if (live && i0 < params.cols) {
    if (RESIDUAL) {
      let rb = r * params.cols + i0;
      if (again) {
        v = vec4<f32>(residual[rb], residual[rb + 1u], residual[rb + 2u], residual[rb + 3u]);
      } else {
        v = vec4<f32>(w_at(e0 + i0), w_at(e0 + i0 + 1u), w_at(e0 + i0 + 2u), w_at(e0 + i0 + 3u)) * params.hidden_scale;
        if (params.has_residual != 0u) {
          v += vec4<f32>(residual[rb], residual[rb + 1u], residual[rb + 2u], residual[rb + 3u]);
        }
        residual[rb] = v.x;
        residual[rb + 1u] = v.y;
        residual[rb + 2u] = v.z;
        residual[rb + 3u] = v.w;
      }
      *sq += dot(v, v);
      v *= vec4<f32>(gate_g[i0], gate_g[i0 + 1u], gate_g[i0 + 2u], gate_g[i0 + 3u]);
    } else {
      v = vec4<f32>(w_at(e0 + i0), w_at(e0 + i0 + 1u), w_at(e0 + i0 + 2u), w_at(e0 + i0 + 3u));
    }
    if (GATED) {
      let zb = params.z_offset + r * params.z_stride + i0;
      let u = v * vec4<f32>(silu(gate_z[zb]), silu(gate_z[zb + 1u]), silu(gate_z[zb + 2u]), silu(gate_z[zb + 3u]));
      *sq += dot(u, u);
      v = u * vec4<f32>(gate_g[i0], gate_g[i0 + 1u], gate_g[i0 + 2u], gate_g[i0 + 3u]);
    }
  }
  // h = 1: columns (0, 1) and (2, 3); h = 2: (0, 2) and (1, 3).
  v = vec4<f32>(v.x + v.y, v.x - v.y, v.z + v.w, v.z - v.w);
  v = vec4<f32>(v.x + v.z, v.y + v.w, v.x - v.z, v.y - v.w);
  for (var h = 4u; h < ROT; h *= 2u) {
    let q = h / 4u;
    if (q < SG_SIZE) {
      // The partner lid ^ q is in this invocation's subgroup, at subgroup_invocation_id ^ q.
      v = butterfly(v, sg_xor_v4(v, q), (lid & q) == 0u);
    } else {
      let base = *flip * WORKGROUP_SIZE;
      hv[base + lid] = v;
      workgroupBarrier();
      v = butterfly(v, hv[base + (lid ^ q)], (lid & q) == 0u);
      *flip = 1u - *flip;
    }
  }
  return v;
}

// Four codes of v at 127 / max, packed (column 4w + j in byte j).
fn pack_codes(v: vec4<f32>, inv: f32) -> i32 {
  let q = vec4<i32>(clamp(round(v * inv), vec4<f32>(-127.0), vec4<f32>(127.0)));
  return bitcast<i32>((bitcast<u32>(q.x) & 0xffu) | ((bitcast<u32>(q.y) & 0xffu) << 8u) | ((bitcast<u32>(q.z) & 0xffu) << 16u) | ((bitcast<u32>(q.w) & 0xffu) << 24u));
}

// Pass p of the row kept (zeros past the row's passes: a uniform condition, so the barriers in
// rotate_pass are reached by every invocation or none), its largest |value| folded into *m.
fn keep_pass(e0: u32, r: u32, p: u32, passes: u32, lid: u32, live: bool, flip: ptr<function, u32>, sq: ptr<function, f32>, m: ptr<function, f32>) -> vec4<f32> {
  if (p >= passes) {
    return vec4<f32>(0.0);
  }
  let v = rotate_pass(e0, r, p, lid, live, false, flip, sq);
  let a = abs(v);
  *m = max(*m, max(max(a.x, a.y), max(a.z, a.w)));
  return v;
}

// The codes of kept pass p: word p·WG + lid of the row.
fn store_kept(v: vec4<f32>, r: u32, p: u32, passes: u32, lid: u32, inv: f32) {
  let w = p * WORKGROUP_SIZE + lid;
  if (p < passes && 4u * w < params.cols) {
    codes[r * params.words + w] = pack_codes(v, inv);
  }
}

// The kept passes are eight named values, not an array indexed in a loop: a function-scope array
// stays in registers only where the compiler unrolls every loop over it, and the causal conv's
// arrays cost it 3.7× on the H200 (bench/RESULTS.md tenth session).
@compute @workgroup_size(WORKGROUP_SIZE)
fn quantize_rot(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wg.x;
  let live = r < params.rows;
  let e0 = params.offset + r * params.stride;
  let passes = select((params.cols + 4u * WORKGROUP_SIZE - 1u) / (4u * WORKGROUP_SIZE), PASSES, PASSES > 0u);
  var flip = 0u;
  var m = 0.0;
  var sq = 0.0;      // GATED, RESIDUAL: this invocation's part of the norm's Σ u² (Σ v²)
  var ignored = 0.0; // the passes rotated again for their codes add nothing more
  let k0 = keep_pass(e0, r, 0u, passes, lid, live, &flip, &sq, &m);
  let k1 = keep_pass(e0, r, 1u, passes, lid, live, &flip, &sq, &m);
  let k2 = keep_pass(e0, r, 2u, passes, lid, live, &flip, &sq, &m);
  let k3 = keep_pass(e0, r, 3u, passes, lid, live, &flip, &sq, &m);
  let k4 = keep_pass(e0, r, 4u, passes, lid, live, &flip, &sq, &m);
  let k5 = keep_pass(e0, r, 5u, passes, lid, live, &flip, &sq, &m);
  let k6 = keep_pass(e0, r, 6u, passes, lid, live, &flip, &sq, &m);
  let k7 = keep_pass(e0, r, 7u, passes, lid, live, &flip, &sq, &m);
  for (var p = MAX_PASSES; p < passes; p++) {
    let a = abs(rotate_pass(e0, r, p, lid, live, false, &flip, &sq));
    m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
  }
  let amax = workgroup_max(m, lid);
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  // Word p·WG + lid of the row holds the invocation's 4 codes of pass p.
  store_kept(k0, r, 0u, passes, lid, inv);
  store_kept(k1, r, 1u, passes, lid, inv);
  store_kept(k2, r, 2u, passes, lid, inv);
  store_kept(k3, r, 3u, passes, lid, inv);
  store_kept(k4, r, 4u, passes, lid, inv);
  store_kept(k5, r, 5u, passes, lid, inv);
  store_kept(k6, r, 6u, passes, lid, inv);
  store_kept(k7, r, 7u, passes, lid, inv);
  for (var p = MAX_PASSES; p < passes; p++) {
    let v = rotate_pass(e0, r, p, lid, live, true, &flip, &ignored);
    let w = p * WORKGROUP_SIZE + lid;
    if (4u * w < params.cols) {
      codes[r * params.words + w] = pack_codes(v, inv);
    }
  }
  for (var w = params.cols / 4u + lid; w < params.words; w += WORKGROUP_SIZE) {
    codes[r * params.words + w] = 0;
  }
  var norm = 1.0;
  if (GATED || RESIDUAL) {
    norm = inverseSqrt(workgroup_sum(sq, lid) / f32(params.cols) + params.eps) * params.out_scale;  // workgroup_sum.wgsl, prepended
  }
  if (lid == 0u) {
    scales[r] = amax / 127.0 * inverseSqrt(f32(ROT)) * norm;
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
  var w0 = 0u;
  var w1 = params.words;
  if (params.split != 0u) {
    w0 = min(g.z * (params.split / 4u), params.words);
    w1 = min(w0 + params.split / 4u, params.words);
  }
  var acc = 0i;
  for (var w = w0; w < w1; w++) {
    acc += dot(bytes4(qa[m * params.words + w]), bytes4(qw[n * params.words + w]));
  }
  int8_out(m, n, g.z, params.rows, params.cols, acc);  // int8_store.wgsl, appended
}
