// weights: reading a weight matrix in its storage format (app/kernels/weight-format.ts). Prepended
// to matmul.wgsl, norm_matvec.wgsl and embedding.wgsl, each of which defines
//
//   fn w_word(i: u32) -> u32     word i (little-endian u32) of its weight buffer
//
// W_FORMAT (pipeline constant): 0 f32, 1 f16, 2 bf16 (two 16-bit values per word, element 2k in
// the low half), 3 q8_0, 4 q4_0, 5 q4_1, 6 q5_0, 7 q5_1, 8 q4_k, 9 q5_k, 10 q6_k: ggml's block
// formats, the file's bytes as they are (app/formats/ggml-quants.ts has the layouts and the CPU
// reference these functions are tested against). Blocks are back to back, so a block starts at
// any even byte offset; every 2-byte field lies at an even offset, 4-byte ones (Q5_0's qh) may not
// be word-aligned. Values are decoded to f32 and all arithmetic stays f32.
//
//   w_at(e)        element e of the matrix (e = o·I + i), any format
//   w_chunk(e0)    the 32 elements e0 .. e0 + 31 (e0 % 32 = 0) of a block format, as 8 vec4s, with
//                  as few word loads as the layout allows
//   chunk_runs(c), w_chunk_of(row, c)
//                  the matrix-vector kernels' inner loop: chunk c of a row is two runs of 16
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

/** The 32 bits at even byte b. */
fn w_u32(b: u32) -> u32 {
  if ((b & 3u) == 0u) {
    return w_word(b >> 2u);
  }
  return w_u16(b) | (w_u16(b + 2u) << 16u);
}

/** The 16 bytes at even byte b, as 4 words. */
fn w_words4(b: u32) -> array<u32, 4> {
  var out: array<u32, 4>;
  let w0 = b >> 2u;
  if ((b & 3u) == 0u) {
    for (var k = 0u; k < 4u; k++) {
      out[k] = w_word(w0 + k);
    }
  } else {
    var prev = w_word(w0);
    for (var k = 0u; k < 4u; k++) {
      let next = w_word(w0 + k + 1u);
      out[k] = (prev >> 16u) | (next << 16u);
      prev = next;
    }
  }
  return out;
}

/** The 32 bytes at even byte b, as 8 words. */
fn w_words8(b: u32) -> array<u32, 8> {
  var out: array<u32, 8>;
  let w0 = b >> 2u;
  if ((b & 3u) == 0u) {
    for (var k = 0u; k < 8u; k++) {
      out[k] = w_word(w0 + k);
    }
  } else {
    var prev = w_word(w0);
    for (var k = 0u; k < 8u; k++) {
      let next = w_word(w0 + k + 1u);
      out[k] = (prev >> 16u) | (next << 16u);
      prev = next;
    }
  }
  return out;
}

/** The four signed bytes of a word, as f32 (byte 0 first). */
fn i8x4(word: u32) -> vec4<f32> {
  let s = bitcast<i32>(word);
  return vec4<f32>(f32(extractBits(s, 0u, 8u)), f32(extractBits(s, 8u, 8u)), f32(extractBits(s, 16u, 8u)), f32(extractBits(s, 24u, 8u)));
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

/** Element e of a matrix in a block format (W_FORMAT ≥ 3). */
fn q_at(e: u32) -> f32 {
  if (W_FORMAT <= WF_Q5_1) {
    let blk = e >> 5u;
    let j = e & 31u;
    // Q4/Q5 formats: element j < 16 is the low nibble of qs[j], j ≥ 16 the high nibble of qs[j − 16].
    let shift = (j >> 4u) * 4u;
    switch W_FORMAT {
      case WF_Q8_0: {
        let base = blk * 34u;
        return w_half(base) * f32(extractBits(bitcast<i32>(w_byte(base + 2u + j)), 0u, 8u));
      }
      case WF_Q4_0: {
        let base = blk * 18u;
        let q = (w_byte(base + 2u + (j & 15u)) >> shift) & 15u;
        return w_half(base) * (f32(q) - 8.0);
      }
      case WF_Q4_1: {
        let base = blk * 20u;
        let q = (w_byte(base + 4u + (j & 15u)) >> shift) & 15u;
        return w_half(base) * f32(q) + w_half(base + 2u);
      }
      case WF_Q5_0: {
        let base = blk * 22u;
        let qh = w_u32(base + 2u);
        let q = ((w_byte(base + 6u + (j & 15u)) >> shift) & 15u) | (((qh >> j) & 1u) << 4u);
        return w_half(base) * (f32(q) - 16.0);
      }
      default: {  // WF_Q5_1
        let base = blk * 24u;
        let qh = w_u32(base + 4u);
        let q = ((w_byte(base + 8u + (j & 15u)) >> shift) & 15u) | (((qh >> j) & 1u) << 4u);
        return w_half(base) * f32(q) + w_half(base + 2u);
      }
    }
  }
  let blk = e >> 8u;
  let r = e & 255u;
  if (W_FORMAT == WF_Q6_K) {
    let base = blk * 210u;
    let n = r >> 7u;
    let k = (r >> 5u) & 3u;
    let l = r & 31u;
    let low = (w_byte(base + 64u * n + 32u * (k & 1u) + l) >> (4u * (k >> 1u))) & 15u;
    let high = (w_byte(base + 128u + 32u * n + l) >> (2u * k)) & 3u;
    let scale = f32(extractBits(bitcast<i32>(w_byte(base + 192u + (r >> 4u))), 0u, 8u));
    return w_half(base + 208u) * scale * (f32(low | (high << 4u)) - 32.0);
  }
  // Q4_K, Q5_K
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
 * The 32 elements e0 .. e0 + 31 of a matrix in a block format (e0 % 32 = 0; rows are whole
 * blocks, so a chunk never straddles two): out[k][c] = element e0 + 4k + c.
 */
fn w_chunk(e0: u32) -> array<vec4<f32>, 8> {
  var out: array<vec4<f32>, 8>;
  if (W_FORMAT <= WF_Q5_1) {
    let blk = e0 >> 5u;
    if (W_FORMAT == WF_Q8_0) {
      let base = blk * 34u;
      let d = w_half(base);
      let qs = w_words8(base + 2u);
      for (var k = 0u; k < 8u; k++) {
        out[k] = d * i8x4(qs[k]);
      }
      return out;
    }
    // Q4_0, Q4_1, Q5_0, Q5_1: d, optional m, optional qh, 16 bytes of nibbles.
    var base = 0u;
    var qs_at = 0u;
    var m = 0.0;
    var offset = 0.0;
    var qh = 0u;
    switch W_FORMAT {
      case WF_Q4_0: {
        base = blk * 18u;
        qs_at = base + 2u;
        offset = -8.0;
      }
      case WF_Q4_1: {
        base = blk * 20u;
        qs_at = base + 4u;
        m = w_half(base + 2u);
      }
      case WF_Q5_0: {
        base = blk * 22u;
        qh = w_u32(base + 2u);
        qs_at = base + 6u;
        offset = -16.0;
      }
      default: {  // WF_Q5_1
        base = blk * 24u;
        m = w_half(base + 2u);
        qh = w_u32(base + 4u);
        qs_at = base + 8u;
      }
    }
    let d = w_half(base);
    let qs = w_words4(qs_at);
    let five = W_FORMAT == WF_Q5_0 || W_FORMAT == WF_Q5_1;
    for (var h = 0u; h < 2u; h++) {      // h = 0: elements 0..15 (low nibbles), 1: 16..31 (high)
      for (var k = 0u; k < 4u; k++) {    // bytes 4k .. 4k + 3
        var q = nib4(qs[k], h);
        if (five) {
          let first = 16u * h + 4u * k;  // the element of byte 4k's nibble
          q |= vec4<u32>((qh >> first) & 1u, (qh >> (first + 1u)) & 1u, (qh >> (first + 2u)) & 1u, (qh >> (first + 3u)) & 1u) << vec4<u32>(4u);
        }
        out[4u * h + k] = d * (vec4<f32>(q) + offset) + m;
      }
    }
    return out;
  }
  let blk = e0 >> 8u;
  let c = (e0 & 255u) >> 5u;  // the chunk of 32 in the super-block
  if (W_FORMAT == WF_Q6_K) {
    let base = blk * 210u;
    let n = c >> 2u;
    let k = c & 3u;
    let ql = w_words8(base + 64u * n + 32u * (k & 1u));
    let qh = w_words8(base + 128u + 32u * n);
    let sc = w_u16(base + 192u + 2u * c);  // the scales of elements 0..15 (low byte) and 16..31
    let d = w_half(base + 208u);
    let d0 = d * f32(extractBits(bitcast<i32>(sc), 0u, 8u));
    let d1 = d * f32(extractBits(bitcast<i32>(sc), 8u, 8u));
    for (var j = 0u; j < 8u; j++) {
      let low = nib4(ql[j], k >> 1u);
      let w = qh[j] >> (2u * k);
      let high = vec4<u32>(w & 3u, (w >> 8u) & 3u, (w >> 16u) & 3u, (w >> 24u) & 3u);
      out[j] = select(d1, d0, j < 4u) * (vec4<f32>(low | (high << vec4<u32>(4u))) - 32.0);
    }
    return out;
  }
  // Q4_K, Q5_K: sub-block c.
  let five = W_FORMAT == WF_Q5_K;
  let base = blk * select(144u, 176u, five);
  let dd = unpack2x16float(w_word(base >> 2u));  // d, dmin (base is a multiple of 16)
  let sm = k_scale_min(base + 4u, c);
  let step = dd.x * f32(sm.x);
  let shift = dd.y * f32(sm.y);
  let qs = w_words8(base + select(16u, 48u, five) + 32u * (c >> 1u));
  var qh: array<u32, 8>;
  if (five) {
    qh = w_words8(base + 16u);
  }
  for (var j = 0u; j < 8u; j++) {
    var q = nib4(qs[j], c & 1u);
    if (five) {
      q |= bit4(qh[j], c) << vec4<u32>(4u);
    }
    out[j] = step * vec4<f32>(q) - shift;
  }
  return out;
}

/** Byte i (0..11) of the three words holding a K-quant super-block's 12 scale bytes. */
fn k_scale_byte(s: vec3<u32>, i: u32) -> u32 {
  return (s[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

/** k_scale_min from the scale bytes already in registers. */
fn k_scale_min_words(s: vec3<u32>, j: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(k_scale_byte(s, j) & 63u, k_scale_byte(s, j + 4u) & 63u);
  }
  let b = k_scale_byte(s, j + 4u);
  return vec2<u32>((b & 15u) | ((k_scale_byte(s, j - 4u) >> 6u) << 4u), (b >> 4u) | ((k_scale_byte(s, j) >> 6u) << 4u));
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

/**
 * Chunk c of the row starting at element row_e0 (rows are whole blocks), in a block format:
 * out[0..3] the first run of chunk_runs(c), out[4..7] the second.
 */
fn w_chunk_of(row_e0: u32, c: u32) -> array<vec4<f32>, 8> {
  if (W_FORMAT != WF_Q4_K && W_FORMAT != WF_Q5_K) {
    return w_chunk(row_e0 + 32u * c);
  }
  var out: array<vec4<f32>, 8>;
  let five = W_FORMAT == WF_Q5_K;
  let blk = (row_e0 >> 8u) + (c >> 3u);
  let k = c & 7u;
  let j = 2u * (k >> 1u);  // sub-blocks j (low nibbles) and j + 1 (high nibbles)
  let w0 = blk * select(36u, 44u, five);  // the super-block's first word (144 or 176 bytes)
  let dd = unpack2x16float(w_word(w0));   // d, dmin
  let scales = vec3<u32>(w_word(w0 + 1u), w_word(w0 + 2u), w_word(w0 + 3u));
  let sm0 = k_scale_min_words(scales, j);
  let sm1 = k_scale_min_words(scales, j + 1u);
  let step0 = dd.x * f32(sm0.x);
  let step1 = dd.x * f32(sm1.x);
  let shift0 = dd.y * f32(sm0.y);
  let shift1 = dd.y * f32(sm1.y);
  let qs = w0 + select(4u, 12u, five) + 4u * k;  // 16 bytes: elements 16·(k & 1) + 0..15 of both sub-blocks
  let qh = w0 + 4u + 4u * (k & 1u);              // Q5_K: the same 16 elements' fifth bits
  for (var i = 0u; i < 4u; i++) {
    let q = w_word(qs + i);
    var lo = nib4(q, 0u);
    var hi = nib4(q, 1u);
    if (five) {
      let h = w_word(qh + i);
      lo |= bit4(h, j) << vec4<u32>(4u);
      hi |= bit4(h, j + 1u) << vec4<u32>(4u);
    }
    out[i] = step0 * vec4<f32>(lo) - shift0;
    out[4u + i] = step1 * vec4<f32>(hi) - shift1;
  }
  return out;
}
