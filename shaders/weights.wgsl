// weights: reading a weight matrix in its storage format (app/kernels/weight-format.ts). Prepended
// to matmul.wgsl, norm_matvec.wgsl and embedding.wgsl, each of which defines
//
//   fn w_word(i: u32) -> u32        word i (little-endian u32) of its weight buffer
//   fn w_quad(q: u32) -> vec4<u32>  words 4q .. 4q + 3 (one 16-byte load where the binding allows)
//
// W_FORMAT (pipeline constant): 0 f32, 1 f16, 2 bf16 (two 16-bit values per word, element 2k in
// the low half), 3 q8_0, 4 q4_0, 5 q4_1, 6 q5_0, 7 q5_1, 8 q4_k, 9 q5_k, 10 q6_k: ggml's block
// formats (app/formats/ggml-quants.ts has the layouts and the CPU reference these functions are
// tested against) in groups of 8 blocks, each field of a block a plane of the group
// (weight-format.ts BLOCK_FIELDS; q_field gives a field's byte). Every field read 16 bytes at a
// time starts 16-byte aligned, 4-byte fields (Q5_0's qh) 4-byte aligned, 2-byte ones 2-byte
// aligned. Values are decoded to f32 and all arithmetic stays f32.
//
//   w_at(e)        element e of the matrix (e = o·I + i), any format
//   chunk_runs(c), w_chunk_of(row, c)
//                  the matrix kernels' inner loop over a block format, 32 elements at a time with
//                  16-byte loads of the codes: chunk c of a row is two runs of 16
//                  elements (chunk_runs: their offsets in the row); for Q4_K and Q5_K the runs are
//                  where one 16-byte piece of quants goes (elements 16·(c & 1) .. + 15 of sub-blocks
//                  2j and 2j + 1, j = (c & 7) >> 1), so that consecutive threads read consecutive
//                  16-byte pieces; for the other formats chunk c is elements 32c .. 32c + 31

override W_FORMAT: u32 = 0u;

const WF_F32: u32 = 0u;
const WF_F16: u32 = 1u;
const WF_BF16: u32 = 2u;
const WF_Q8_0: u32 = 3u;
const WF_Q4_0: u32 = 4u;
const WF_Q4_1: u32 = 5u;
const WF_Q5_0: u32 = 6u;
const WF_Q5_1: u32 = 7u;
const WF_Q4_K: u32 = 8u;
const WF_Q5_K: u32 = 9u;
const WF_Q6_K: u32 = 10u;

/** Byte b of the buffer. */
fn w_byte(b: u32) -> u32 {
  return (w_word(b >> 2u) >> ((b & 3u) * 8u)) & 0xffu;
}

/** The 16 bits at even byte b. */
fn w_u16(b: u32) -> u32 {
  return (w_word(b >> 2u) >> ((b & 2u) * 8u)) & 0xffffu;
}

/** The IEEE half at even byte b. */
fn w_half(b: u32) -> f32 {
  return unpack2x16float(w_u16(b)).x;
}

/** Bytes per block of the block format W_FORMAT. */
fn q_type_size() -> u32 {
  switch W_FORMAT {
    case WF_Q8_0: { return 34u; }
    case WF_Q4_0: { return 18u; }
    case WF_Q4_1: { return 20u; }
    case WF_Q5_0: { return 22u; }
    case WF_Q5_1: { return 24u; }
    case WF_Q4_K: { return 144u; }
    case WF_Q5_K: { return 176u; }
    default: { return 210u; }
  }
}

/**
 * The byte of block b's copy of a field: its plane starts `plane` bytes into the block's group of
 * 8 and holds `size` bytes per block (weight-format.ts BLOCK_FIELDS). A group is 8 blocks' bytes.
 */
fn q_field(b: u32, plane: u32, size: u32) -> u32 {
  return (b >> 3u) * (8u * q_type_size()) + plane + (b & 7u) * size;
}

/** The 16 bytes at byte b (b % 16 = 0), as 4 words. */
fn w_quad_at(b: u32) -> vec4<u32> {
  return w_quad(b >> 4u);
}

/**
 * Integers below 2^23 as exact f32 without an integer→float conversion, which NVIDIA GPUs issue at
 * an eighth of the FMA rate (a decode matvec over 4-bit codes converts one per weight): the bits
 * 2^23 + v read as a float, minus 2^23.
 */
fn small_f32x4(v: vec4<u32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(v | vec4<u32>(0x4B000000u)) - 8388608.0;
}

/** The four bytes of a word (byte 0 first). */
fn u8x4(word: u32) -> vec4<u32> {
  return vec4<u32>(word & 255u, (word >> 8u) & 255u, (word >> 16u) & 255u, word >> 24u);
}

/** The four signed bytes of a word, as f32 (byte 0 first): offset binary (b ^ 0x80 = q + 128), as small_f32x4. */
fn i8x4(word: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>(u8x4(word ^ 0x80808080u) | vec4<u32>(0x4B000000u)) - 8388736.0;  // 2^23 + 128
}

/** Nibble `which` (0: low, 1: high) of each of the four bytes of a word. */
fn nib4(word: u32, which: u32) -> vec4<u32> {
  let w = word >> (4u * which);
  return vec4<u32>(w & 15u, (w >> 8u) & 15u, (w >> 16u) & 15u, (w >> 24u) & 15u);
}

/** Bit `bit` of each of the four bytes of a word. */
fn bit4(word: u32, bit: u32) -> vec4<u32> {
  let w = word >> bit;
  return vec4<u32>(w & 1u, (w >> 8u) & 1u, (w >> 16u) & 1u, (w >> 24u) & 1u);
}

/**
 * Q4_K / Q5_K: the 6-bit scale (x) and min (y) of sub-block j (0..7) from the 12 scale bytes at
 * byte `at` (layout: app/formats/ggml-quants.ts scaleMin).
 */
fn k_scale_min(at: u32, j: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(w_byte(at + j) & 63u, w_byte(at + j + 4u) & 63u);
  }
  let b = w_byte(at + j + 4u);
  return vec2<u32>((b & 15u) | ((w_byte(at + j - 4u) >> 6u) << 4u), (b >> 4u) | ((w_byte(at + j) >> 6u) << 4u));
}

/**
 * Q4_0 … Q5_1: block blk's d, its m (0 for Q4_0 / Q5_0), the offset its codes take (−8, −16 or 0),
 * its qh (Q5_0 / Q5_1, else 0) and the byte of its 16 bytes of nibbles.
 */
struct SmallBlock {
  d: f32,
  m: f32,
  offset: f32,
  qh: u32,
  qs: u32,
}

fn small_block(blk: u32) -> SmallBlock {
  var out: SmallBlock;
  switch W_FORMAT {
    case WF_Q4_0: {
      out.d = w_half(q_field(blk, 0u, 2u));
      out.offset = -8.0;
      out.qs = q_field(blk, 16u, 16u);
    }
    case WF_Q4_1: {
      let dm = unpack2x16float(w_word(q_field(blk, 0u, 4u) >> 2u));
      out.d = dm.x;
      out.m = dm.y;
      out.qs = q_field(blk, 32u, 16u);
    }
    case WF_Q5_0: {
      out.d = w_half(q_field(blk, 0u, 2u));
      out.qh = w_word(q_field(blk, 16u, 4u) >> 2u);
      out.offset = -16.0;
      out.qs = q_field(blk, 48u, 16u);
    }
    default: {  // WF_Q5_1
      let dm = unpack2x16float(w_word(q_field(blk, 0u, 4u) >> 2u));
      out.d = dm.x;
      out.m = dm.y;
      out.qh = w_word(q_field(blk, 32u, 4u) >> 2u);
      out.qs = q_field(blk, 64u, 16u);
    }
  }
  return out;
}

/** Element e of a matrix in a block format (W_FORMAT ≥ 3). */
fn q_at(e: u32) -> f32 {
  if (W_FORMAT <= WF_Q5_1) {
    let blk = e >> 5u;
    let j = e & 31u;
    if (W_FORMAT == WF_Q8_0) {
      return w_half(q_field(blk, 0u, 2u)) * f32(extractBits(bitcast<i32>(w_byte(q_field(blk, 16u, 32u) + j)), 0u, 8u));
    }
    // Q4/Q5 formats: element j < 16 is the low nibble of qs[j], j ≥ 16 the high nibble of qs[j − 16].
    let b = small_block(blk);
    let q = ((w_byte(b.qs + (j & 15u)) >> ((j >> 4u) * 4u)) & 15u) | (((b.qh >> j) & 1u) << 4u);
    return b.d * (f32(q) + b.offset) + b.m;
  }
  let blk = e >> 8u;
  let r = e & 255u;
  if (W_FORMAT == WF_Q6_K) {
    let n = r >> 7u;
    let k = (r >> 5u) & 3u;
    let l = r & 31u;
    let low = (w_byte(q_field(blk, 0u, 128u) + 64u * n + 32u * (k & 1u) + l) >> (4u * (k >> 1u))) & 15u;
    let high = (w_byte(q_field(blk, 1024u, 64u) + 32u * n + l) >> (2u * k)) & 3u;
    let scale = f32(extractBits(bitcast<i32>(w_byte(q_field(blk, 1536u, 16u) + (r >> 4u))), 0u, 8u));
    return w_half(q_field(blk, 1664u, 2u)) * scale * (f32(low | (high << 4u)) - 32.0);
  }
  // Q4_K, Q5_K (ggml's order)
  let five = W_FORMAT == WF_Q5_K;
  let base = blk * select(144u, 176u, five);
  let s = r >> 5u;
  let l = r & 31u;
  let sm = k_scale_min(base + 4u, s);
  var q = (w_byte(base + select(16u, 48u, five) + 32u * (s >> 1u) + l) >> (4u * (s & 1u))) & 15u;
  if (five) {
    q |= ((w_byte(base + 16u + l) >> s) & 1u) << 4u;
  }
  return w_half(base) * f32(sm.x) * f32(q) - w_half(base + 2u) * f32(sm.y);
}

/** Element e of the matrix, any format. */
fn w_at(e: u32) -> f32 {
  switch W_FORMAT {
    case WF_F32: {
      return bitcast<f32>(w_word(e));
    }
    case WF_F16: {
      let pair = unpack2x16float(w_word(e >> 1u));
      return select(pair.x, pair.y, (e & 1u) == 1u);
    }
    case WF_BF16: {
      return bitcast<f32>(((w_word(e >> 1u) >> ((e & 1u) * 16u)) & 0xffffu) << 16u);
    }
    default: {
      return q_at(e);
    }
  }
}

/** Two bf16 values of a word, as f32 (element 2k = low half). */
fn bf16x2(word: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
}

/** 16 bytes of f16 or bf16 weights (W_FORMAT): their 8 values, elements 0..3 then 4..7. */
fn halves8(q: vec4<u32>) -> array<vec4<f32>, 2> {
  if (W_FORMAT == WF_F16) {
    return array<vec4<f32>, 2>(vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y)), vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w)));
  }
  return array<vec4<f32>, 2>(vec4<f32>(bf16x2(q.x), bf16x2(q.y)), vec4<f32>(bf16x2(q.z), bf16x2(q.w)));
}

/**
 * k_scale_min from the scale bytes already in registers (s.x: bytes 0..3, s.y: 4..7, s.z: 8..11),
 * with shifts and no indexing: sub-block j < 4 has its 6-bit scale and min in the low bits of bytes
 * j and j + 4; j ≥ 4 has their low 4 bits in byte j + 4 and their high 2 bits in the top of bytes
 * j − 4 and j.
 */
fn k_scale_min_words(s: vec3<u32>, j: u32) -> vec2<u32> {
  let sh = 8u * (j & 3u);
  if (j < 4u) {
    return vec2<u32>((s.x >> sh) & 63u, (s.y >> sh) & 63u);
  }
  return vec2<u32>(((s.z >> sh) & 15u) | ((s.x >> (sh + 2u)) & 48u), ((s.z >> (sh + 4u)) & 15u) | ((s.y >> (sh + 2u)) & 48u));
}

/** The offsets in its row of chunk c's two runs of 16 elements (see the header). */
fn chunk_runs(c: u32) -> vec2<u32> {
  if (W_FORMAT == WF_Q4_K || W_FORMAT == WF_Q5_K) {
    let k = c & 7u;
    let first = (c >> 3u) * 256u + 64u * (k >> 1u) + 16u * (k & 1u);
    return vec2<u32>(first, first + 32u);
  }
  return vec2<u32>(32u * c, 32u * c + 16u);
}

/** K-quants (Q4_K, Q5_K): the first 16-byte unit of the super-block holding chunk c of the row starting at element row_e0. */
fn k_unit(row_e0: u32, c: u32) -> u32 {
  return ((row_e0 >> 8u) + (c >> 3u)) * select(9u, 11u, W_FORMAT == WF_Q5_K);  // 144 or 176 bytes a super-block
}

/**
 * Chunk c of the row starting at element row_e0 (rows are whole blocks), in a block format:
 * out[0..3] the first run of chunk_runs(c), out[4..7] the second (out[k][i] = element 4k + i of
 * the runs). Codes are read 16 bytes at a time.
 */
fn w_chunk_of(row_e0: u32, c: u32) -> array<vec4<f32>, 8> {
  var out: array<vec4<f32>, 8>;
  if (W_FORMAT == WF_Q4_K || W_FORMAT == WF_Q5_K) {
    let five = W_FORMAT == WF_Q5_K;
    let k = c & 7u;
    let j = 2u * (k >> 1u);  // sub-blocks j (low nibbles) and j + 1 (high nibbles)
    let q0 = k_unit(row_e0, c);
    let head = w_quad(q0);   // d, dmin, then the 12 scale bytes
    let qs = w_quad(q0 + select(1u, 3u, five) + k);  // elements 16·(k & 1) + 0..15 of both sub-blocks
    var qh = vec4<u32>(0u);
    if (five) {
      qh = w_quad(q0 + 1u + (k & 1u));  // the same 16 elements' fifth bits
    }
    let dd = unpack2x16float(head.x);
    let sm0 = k_scale_min_words(head.yzw, j);
    let sm1 = k_scale_min_words(head.yzw, j + 1u);
    let smf = small_f32x4(vec4<u32>(sm0, sm1));
    let step0 = dd.x * smf.x;
    let step1 = dd.x * smf.z;
    let shift0 = dd.y * smf.y;
    let shift1 = dd.y * smf.w;
    for (var i = 0u; i < 4u; i++) {
      var lo = nib4(qs[i], 0u);
      var hi = nib4(qs[i], 1u);
      if (five) {
        lo |= bit4(qh[i], j) << vec4<u32>(4u);
        hi |= bit4(qh[i], j + 1u) << vec4<u32>(4u);
      }
      out[i] = step0 * small_f32x4(lo) - shift0;
      out[4u + i] = step1 * small_f32x4(hi) - shift1;
    }
    return out;
  }
  if (W_FORMAT == WF_Q6_K) {
    let blk = (row_e0 >> 8u) + (c >> 3u);
    let i = c & 7u;  // the chunk in the super-block
    let n = i >> 2u;
    let k = i & 3u;
    let ql_at = q_field(blk, 0u, 128u) + 64u * n + 32u * (k & 1u);
    let qh_at = q_field(blk, 1024u, 64u) + 32u * n;
    let ql = array<vec4<u32>, 2>(w_quad_at(ql_at), w_quad_at(ql_at + 16u));
    let qh = array<vec4<u32>, 2>(w_quad_at(qh_at), w_quad_at(qh_at + 16u));
    let sc = w_u16(q_field(blk, 1536u, 16u) + 2u * i);  // the scales of elements 0..15 (low byte) and 16..31
    let d = w_half(q_field(blk, 1664u, 2u));
    let d0 = d * f32(extractBits(bitcast<i32>(sc), 0u, 8u));
    let d1 = d * f32(extractBits(bitcast<i32>(sc), 8u, 8u));
    for (var j = 0u; j < 8u; j++) {
      let low = nib4(ql[j >> 2u][j & 3u], k >> 1u);
      let w = qh[j >> 2u][j & 3u] >> (2u * k);
      let high = vec4<u32>(w & 3u, (w >> 8u) & 3u, (w >> 16u) & 3u, (w >> 24u) & 3u);
      out[j] = select(d1, d0, j < 4u) * (small_f32x4(low | (high << vec4<u32>(4u))) - 32.0);
    }
    return out;
  }
  let blk = (row_e0 >> 5u) + c;
  if (W_FORMAT == WF_Q8_0) {
    let d = w_half(q_field(blk, 0u, 2u));
    let at = q_field(blk, 16u, 32u);
    let a = w_quad_at(at);
    let b = w_quad_at(at + 16u);
    for (var k = 0u; k < 4u; k++) {
      out[k] = d * i8x4(a[k]);
      out[4u + k] = d * i8x4(b[k]);
    }
    return out;
  }
  // Q4_0, Q4_1, Q5_0, Q5_1: d, optional m, optional qh, 16 bytes of nibbles.
  let b = small_block(blk);
  let qs = w_quad_at(b.qs);
  for (var h = 0u; h < 2u; h++) {      // h = 0: elements 0..15 (low nibbles), 1: 16..31 (high)
    for (var k = 0u; k < 4u; k++) {    // bytes 4k .. 4k + 3
      var q = nib4(qs[k], h);
      let first = 16u * h + 4u * k;    // the element of byte 4k's nibble; its fifth bits (0 but for Q5_0 / Q5_1)
      q |= vec4<u32>((b.qh >> first) & 1u, (b.qh >> (first + 1u)) & 1u, (b.qh >> (first + 2u)) & 1u, (b.qh >> (first + 3u)) & 1u) << vec4<u32>(4u);
      out[4u * h + k] = b.d * (small_f32x4(q) + b.offset) + b.m;
    }
  }
  return out;
}
