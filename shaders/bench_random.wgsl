// Seeded pseudo-random weights made on the GPU (the bench's random models): fills a buffer with
// values in one of the storage formats of app/kernels/weight-format.ts, so that no tensor ever
// passes through the JS heap. Op: app/kernels/random-fill.ts (which documents the formats' scales).
//
// A "unit" is what one invocation writes, never shared with another invocation:
//   f32, constant, a_log  one word (one value)
//   f16, bf16             one word (two values, element 2k in the low half)
//   block formats         a group of 8 blocks in the GPU layout (app/kernels/weight-format.ts:
//                         each field of the block a plane of the group): 8 · TYPE_SIZE bytes
// Every value is a function of (seed, its global element or block index, its byte offset), so the
// result does not depend on how the tensor is split into bindings and dispatches.
//
// Block bytes (layouts: app/formats/ggml-quants.ts): the f16 scale fields hold the halves given in
// params (finite, positive; Q4_1/Q5_1's m is negative), the codes are random. Q4_K/Q5_K: each
// sub-block's 6-bit scale sc is random in 32..63 and its min m = sc; Q6_K: each 16-element
// sub-block's i8 scale is random in 32..127. Bytes of blocks past `items` (the padding of the last
// group) are 0, and nothing is written past `binding_words`.

struct Params {
  format: u32, // 0 f32, 1 f16, 2 bf16, 3..10 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k, 100 constant, 101 a_log
  first_unit: u32, // the global index of binding word 0's unit
  units: u32, // units to write in this dispatch
  items: u32, // the tensor's values (float formats) or blocks (block formats)
  seed: u32,
  scale: f32, // float formats: values are uniform in [-scale, scale); constant: the value
  h0: u32, // block formats: the 16 bits of the first f16 field (d)
  h1: u32, // the second f16 field (Q4_1/Q5_1 m, Q4_K/Q5_K dmin)
  grid_x: u32, // invocations per row of the 2-D dispatch grid
  binding_words: u32, // u32 words bound in `out`
  type_size: u32, // bytes per block (block formats)
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>; // [binding_words]

// A 32-bit integer hash (a PCG output permutation of an LCG step).
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

fn rnd(a: u32, b: u32) -> u32 {
  return pcg(pcg(a ^ pcg(p.seed)) + b);
}

// Uniform in [0, 1), 24 bits.
fn unit_interval(r: u32) -> f32 {
  return f32(r >> 8u) / 16777216.0;
}

fn value(i: u32) -> f32 {
  if (i >= p.items) {
    return 0.0;
  }
  if (p.format == 100u) {
    return p.scale;
  }
  let u = unit_interval(rnd(i, 0u));
  if (p.format == 101u) {
    return log(1.0 + 15.0 * u); // A_log: A = −exp(A_log) in [−16, −1)
  }
  return (u * 2.0 - 1.0) * p.scale;
}

// bf16 bits of x, rounded to nearest even (x is finite here).
fn bf16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

fn half_byte(h: u32, k: u32) -> u32 {
  return (h >> (8u * k)) & 0xffu;
}

// Q4_K/Q5_K: the 6-bit scale (= min) of sub-block j of a block.
fn k_scale(block: u32, j: u32) -> u32 {
  return 32u + (rnd(block, 1024u + j) & 31u);
}

// Byte `off` of block `block`.
fn block_byte(block: u32, off: u32) -> u32 {
  if (block >= p.items) {
    return 0u;
  }
  let r = rnd(block, off) & 0xffu;
  switch p.format {
    case 3u: { // Q8_0: h d, i8 qs[32]; codes in −127..127
      if (off < 2u) {
        return half_byte(p.h0, off);
      }
      return (rnd(block, off) % 255u + 129u) & 0xffu;
    }
    case 4u, 6u: { // Q4_0: h d, qs[16]; Q5_0: h d, qh, qs[16]
      if (off < 2u) {
        return half_byte(p.h0, off);
      }
      return r;
    }
    case 5u, 7u: { // Q4_1: h d, h m, qs[16]; Q5_1: h d, h m, qh, qs[16]
      if (off < 2u) {
        return half_byte(p.h0, off);
      }
      if (off < 4u) {
        return half_byte(p.h1, off - 2u);
      }
      return r;
    }
    case 8u, 9u: { // Q4_K, Q5_K: h d, h dmin, scales[12], (qh[32]), qs[128]
      if (off < 2u) {
        return half_byte(p.h0, off);
      }
      if (off < 4u) {
        return half_byte(p.h1, off - 2u);
      }
      if (off < 16u) {
        let i = off - 4u;
        if (i < 4u) { // scale of sub-block i, top 2 bits of sub-block i+4's scale
          return (k_scale(block, i) & 63u) | ((k_scale(block, i + 4u) >> 4u) << 6u);
        }
        if (i < 8u) { // min of sub-block i−4 (= its scale), top 2 bits of sub-block i's min
          return (k_scale(block, i - 4u) & 63u) | ((k_scale(block, i) >> 4u) << 6u);
        }
        // low 4 bits of sub-block i−4's scale and of its min
        let s = k_scale(block, i - 4u);
        return (s & 15u) | ((s & 15u) << 4u);
      }
      return r;
    }
    default: { // 10u, Q6_K: ql[128], qh[64], i8 scales[16], h d
      if (off < 192u) {
        return r;
      }
      if (off < 208u) {
        return 32u + rnd(block, off) % 96u;
      }
      return half_byte(p.h0, off - 208u);
    }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let u = gid.x + gid.y * p.grid_x;
  if (u >= p.units) {
    return;
  }
  let g = p.first_unit + u;
  if (p.format == 0u || p.format >= 100u) {
    if (u < p.binding_words) {
      out[u] = bitcast<u32>(value(g));
    }
    return;
  }
  if (p.format == 1u) {
    if (u < p.binding_words) {
      out[u] = pack2x16float(vec2<f32>(value(2u * g), value(2u * g + 1u)));
    }
    return;
  }
  if (p.format == 2u) {
    if (u < p.binding_words) {
      out[u] = bf16_bits(value(2u * g)) | (bf16_bits(value(2u * g + 1u)) << 16u);
    }
    return;
  }
  let words = 2u * p.type_size;
  for (var w = 0u; w < words; w++) {
    let lw = u * words + w;
    if (lw >= p.binding_words) {
      break;
    }
    var word = 0u;
    for (var k = 0u; k < 4u; k++) {
      word |= grouped_byte(g, 4u * w + k) << (8u * k);
    }
    out[lw] = word;
  }
}

// The fields of a block (weight-format.ts BLOCK_FIELDS): x = offset in ggml's block, y = bytes; n used.
struct Fields {
  f: array<vec2<u32>, 4>,
  n: u32,
}

fn fields() -> Fields {
  switch p.format {
    case 3u: { return Fields(array<vec2<u32>, 4>(vec2<u32>(0u, 2u), vec2<u32>(2u, 32u), vec2<u32>(), vec2<u32>()), 2u); }
    case 4u: { return Fields(array<vec2<u32>, 4>(vec2<u32>(0u, 2u), vec2<u32>(2u, 16u), vec2<u32>(), vec2<u32>()), 2u); }
    case 5u: { return Fields(array<vec2<u32>, 4>(vec2<u32>(0u, 4u), vec2<u32>(4u, 16u), vec2<u32>(), vec2<u32>()), 2u); }
    case 6u: { return Fields(array<vec2<u32>, 4>(vec2<u32>(0u, 2u), vec2<u32>(2u, 4u), vec2<u32>(6u, 16u), vec2<u32>()), 3u); }
    case 7u: { return Fields(array<vec2<u32>, 4>(vec2<u32>(0u, 4u), vec2<u32>(4u, 4u), vec2<u32>(8u, 16u), vec2<u32>()), 3u); }
    case 10u: { return Fields(array<vec2<u32>, 4>(vec2<u32>(0u, 128u), vec2<u32>(128u, 64u), vec2<u32>(192u, 16u), vec2<u32>(208u, 2u)), 4u); }
    default: { return Fields(array<vec2<u32>, 4>(vec2<u32>(0u, p.type_size), vec2<u32>(), vec2<u32>(), vec2<u32>()), 1u); }
  }
}

// Byte `pos` of group `group`: the byte of one block's field, in its plane.
fn grouped_byte(group: u32, pos: u32) -> u32 {
  let t = fields();
  var start = 0u;
  for (var f = 0u; f < t.n; f++) {
    let size = t.f[f].y;
    if (pos < start + 8u * size) {
      let at = pos - start;
      return block_byte(8u * group + at / size, t.f[f].x + at % size);
    }
    start += 8u * size;
  }
  return 0u;
}
