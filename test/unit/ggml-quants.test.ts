/**
 * The CPU reference dequantization of ggml's block formats (app/formats/ggml-quants.ts), checked
 * (a) on hand-built blocks whose values are worked out from ggml-common.h's layouts in the comments,
 * (b) on edge values, (c) by quantize → dequantize round trips (test/support/ggml-quantize.ts) with
 * error bounds derived from each format, (d) on bad input.
 */
import { describe, expect, it } from 'vitest';
import { f16ToF32 } from '../../app/formats/float16';
import { dequantize, GGML_TYPES } from '../../app/formats/ggml';
import { dequantizeBlocks, QUANT_LAYOUT, QUANT_TYPES, scaleMin, type QuantType } from '../../app/formats/ggml-quants';
import { seededRandom } from '../../app/random';
import { f16Rounded, quantize } from '../support/ggml-quantize';
import { modelError } from '../support/model-error';

const FILE = 'models/test.gguf';
const seed = Number(process.env.GGUF_TEST_SEED ?? Date.now() % 1_000_000);

/** f16 bit patterns used below. */
const H = { one: 0x3c00, two: 0x4000, half: 0x3800, quarter: 0x3400, minusOne: 0xbc00, minusHalf: 0xb800, minusTwo: 0xc000, inf: 0x7c00, nan: 0x7e00, tiny: 0x0001 } as const;
/** Little-endian bytes of an f16 pattern. */
const h16 = (bits: number) => [bits & 0xff, bits >> 8];
/** Bytes from numbers and arrays of numbers (each a byte; negative ones as int8). */
const bytesOf = (...parts: (number | number[])[]) => Uint8Array.from(parts.flat(), (b) => b & 0xff);
const range = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
const decode = (dtype: QuantType, bytes: Uint8Array) => Array.from(dequantizeBlocks(FILE, { name: 'w', dtype }, bytes));

/** The scale bytes of a Q4_K/Q5_K super-block with sc = [1, 2, 4, 8, 16, 32, 63, 5], m = [0, 3, 63, 1, 33, 2, 17, 48]. */
// (The top 2 bits of sc[4..7] and of m[4..7] differ, so reading one's for the other shows.)
// Bytes 0–3: sc[0..3] in the low 6 bits, top 2 bits of sc[4..7] (16, 32, 63, 5 → 1, 2, 3, 0) above:
//   1 | 1<<6 = 65, 2 | 2<<6 = 130, 4 | 3<<6 = 196, 8 | 0 = 8.
// Bytes 4–7: m[0..3] in the low 6 bits, top 2 bits of m[4..7] (33, 2, 17, 48 → 2, 0, 1, 3) above:
//   0 | 2<<6 = 128, 3 | 0 = 3, 63 | 1<<6 = 127, 1 | 3<<6 = 193.
// Bytes 8–11: low 4 bits of sc[4..7] (0, 0, 15, 5) | low 4 bits of m[4..7] (1, 2, 1, 0) << 4:
//   16, 32, 31, 5.
const K_SCALES = [65, 130, 196, 8, 128, 3, 127, 193, 16, 32, 31, 5];
const K_SC = [1, 2, 4, 8, 16, 32, 63, 5];
const K_M = [0, 3, 63, 1, 33, 2, 17, 48];

describe('ggml block layouts', () => {
  it('bytes and elements per block agree with ggml.c type_traits (GGML_TYPES)', () => {
    const byName = new Map<string, { blockSize: number; typeSize: number }>(Object.values(GGML_TYPES).map((t) => [t.name, t] as const));
    for (const t of QUANT_TYPES) expect(QUANT_LAYOUT[t], t).toEqual({ blockSize: byName.get(t)?.blockSize, typeSize: byName.get(t)?.typeSize });
  });

  it('scaleMin unpacks the 6-bit scales and mins of a K-quant super-block', () => {
    const scales = Uint8Array.from(K_SCALES);
    expect(range(8, (j) => scaleMin(scales, 0, j))).toEqual(range(8, (j) => ({ scale: K_SC[j], min: K_M[j] })));
  });
});

describe('hand-built blocks', () => {
  it('Q8_0: d = 0.5, qs[j] = 8j − 128 gives 4j − 64', () => {
    // x[j] = d·qs[j] = 0.5·(8j − 128): −64, −60, …, 60.
    const got = decode('Q8_0', bytesOf(h16(H.half), range(32, (j) => 8 * j - 128)));
    expect(got).toEqual(range(32, (j) => 4 * j - 64));
    expect([got[0], got[16], got[31]]).toEqual([-64, 0, 60]);
  });

  it('Q4_0: d = 0.5, qs[j] = j | (15 − j)<<4 gives (j − 8)/2, then (7 − j)/2', () => {
    // Element j (j < 16) is the low nibble of qs[j]: (j − 8)·0.5; element j + 16 the high one: (15 − j − 8)·0.5.
    const got = decode('Q4_0', bytesOf(h16(H.half), range(16, (j) => j | ((15 - j) << 4))));
    expect(got).toEqual([...range(16, (j) => (j - 8) / 2), ...range(16, (j) => (7 - j) / 2)]);
    expect([got[0], got[15], got[16], got[31]]).toEqual([-4, 3.5, 3.5, -4]);
  });

  it('Q4_1: d = 0.25, m = −1, qs[j] = j | (15 − j)<<4 gives j/4 − 1, then (15 − j)/4 − 1', () => {
    const got = decode('Q4_1', bytesOf(h16(H.quarter), h16(H.minusOne), range(16, (j) => j | ((15 - j) << 4))));
    expect(got).toEqual([...range(16, (j) => j / 4 - 1), ...range(16, (j) => (15 - j) / 4 - 1)]);
    expect([got[0], got[15], got[16], got[31]]).toEqual([-1, 2.75, 2.75, -1]);
  });

  it('Q5_0: bit i of qh is bit 4 of element i', () => {
    // Block 1: d = 1, qh = 0x0000ffff (elements 0–15 get bit 4), qs[j] = j | j<<4:
    //   element j = (16 + j) − 16 = j; element 16 + j = j − 16.
    // Block 2: d = 0.5, qh = 0x80000001 (only elements 0 and 31), qs[j] = 0xff:
    //   elements 0 and 31: (31 − 16)·0.5 = 7.5; the rest: (15 − 16)·0.5 = −0.5.
    const got = decode(
      'Q5_0',
      bytesOf(h16(H.one), [0xff, 0xff, 0, 0], range(16, (j) => j | (j << 4)), h16(H.half), [0x01, 0, 0, 0x80], range(16, () => 0xff)),
    );
    expect(got.slice(0, 32)).toEqual([...range(16, (j) => j), ...range(16, (j) => j - 16)]);
    expect(got.slice(32)).toEqual(range(32, (i) => (i === 0 || i === 31 ? 7.5 : -0.5)));
  });

  it('Q5_1: d = 0.5, m = 2, qh = 0xffff0000, qs[j] = j | (15 − j)<<4', () => {
    // Element j: low nibble j, bit 4 clear → 0.5·j + 2. Element 16 + j: high nibble 15 − j, bit 4 set
    // → 0.5·(31 − j) + 2.
    const got = decode('Q5_1', bytesOf(h16(H.half), h16(H.two), [0, 0, 0xff, 0xff], range(16, (j) => j | ((15 - j) << 4))));
    expect(got).toEqual([...range(16, (j) => j / 2 + 2), ...range(16, (j) => (31 - j) / 2 + 2)]);
    expect([got[0], got[15], got[16], got[31]]).toEqual([2, 9.5, 17.5, 10]);
  });

  // Q4_K and Q5_K: d = 1, dmin = 0.5, scales K_SCALES (sc = K_SC, m = K_M), qs[32g + l] =
  // (l & 15) | (15 − (l & 15))<<4: sub-block 2g (low nibbles) has q = l & 15, sub-block 2g + 1
  // (high nibbles) q = 15 − (l & 15). x = d·sc·q − dmin·m.
  const kQs = range(128, (i) => (i & 15) | ((15 - (i & 15)) << 4));
  const q4k = (s: number, l: number) => (s % 2 === 0 ? l & 15 : 15 - (l & 15));

  it('Q4_K: 6-bit scales and mins, sub-block 2g in the low nibbles of qs[32g…], 2g + 1 in the high ones', () => {
    const got = decode('Q4_K', bytesOf(h16(H.one), h16(H.half), K_SCALES, kQs));
    expect(got).toEqual(range(256, (e) => (K_SC[e >> 5] as number) * q4k(e >> 5, e & 31) - 0.5 * (K_M[e >> 5] as number)));
    // Worked by hand: element 0 (sub 0, q 0) = 1·0 − 0.5·0 = 0; 33 (sub 1, l 1, q 14) = 2·14 − 0.5·3 = 26.5;
    // 64 (sub 2, q 0) = −0.5·63 = −31.5; 195 (sub 6, l 3, q 3) = 63·3 − 0.5·17 = 180.5; 255 (sub 7, q 0) = −0.5·48 = −24.
    expect([got[0], got[33], got[64], got[195], got[255]]).toEqual([0, 26.5, -31.5, 180.5, -24]);
  });

  it('Q5_K: as Q4_K plus bit s of qh[l] as bit 4 of element l of sub-block s', () => {
    // qh[l] = 0x55 for even l (bit 4 set in sub-blocks 0, 2, 4, 6), 0xaa for odd l (sub-blocks 1, 3, 5, 7).
    const qh = range(32, (l) => (l % 2 === 0 ? 0x55 : 0xaa));
    const got = decode('Q5_K', bytesOf(h16(H.one), h16(H.half), K_SCALES, qh, kQs));
    const q5k = (s: number, l: number) => q4k(s, l) + (s % 2 === l % 2 ? 16 : 0);
    expect(got).toEqual(range(256, (e) => (K_SC[e >> 5] as number) * q5k(e >> 5, e & 31) - 0.5 * (K_M[e >> 5] as number)));
    // By hand: element 0 (sub 0, l 0 even → q 0 + 16) = 16; 32 (sub 1, l 0 even → q 15) = 2·15 − 1.5 = 28.5;
    // 33 (sub 1, l 1 odd → q 14 + 16) = 2·30 − 1.5 = 58.5; 255 (sub 7, l 31 odd → q 0 + 16) = 5·16 − 0.5·48 = 56.
    expect([got[0], got[32], got[33], got[255]]).toEqual([16, 28.5, 58.5, 56]);
  });

  it('Q6_K: ql/qh interleaving by halves of 128, int8 scales per 16 elements, q − 32', () => {
    // d = 0.5; scales = [1, −1, 2, −2, 3, −3, 4, −4, 127, −128, 5, −5, 6, −6, 7, −7];
    // ql[i] = ((i >> 3) & 15) | ((i + (i >> 5)) & 15)<<4 (so ql[l], ql[32 + l], ql[64 + l] all differ); qh[l] = 0xe4 (0b11_10_01_00) in the first half,
    // 0x1b (0b00_01_10_11) in the second. Element 128n + 32k + l: low bits from ql[64n + 32(k & 1) + l]
    // (k < 2: low nibble, else high), high bits (qh[32n + l] >> 2k) & 3; x = d·scales[e >> 4]·(q − 32).
    const scales = [1, -1, 2, -2, 3, -3, 4, -4, 127, -128, 5, -5, 6, -6, 7, -7];
    const ql = range(128, (i) => ((i >> 3) & 15) | (((i + (i >> 5)) & 15) << 4));
    const qh = [...range(32, () => 0xe4), ...range(32, () => 0x1b)];
    const got = decode('Q6_K', bytesOf(ql, qh, scales, h16(H.half)));
    const expected = range(256, (e) => {
      const [n, k, l] = [e >> 7, (e >> 5) & 3, e & 31];
      const byte = ql[64 * n + 32 * (k & 1) + l] as number;
      const low = k < 2 ? byte & 15 : byte >> 4;
      const high = n === 0 ? k : 3 - k;
      return 0.5 * (scales[e >> 4] as number) * (low + 16 * high - 32);
    });
    expect(got).toEqual(expected);
    // By hand: element 0 (k 0, low nibble of ql[0] = 0, high 0) = 0.5·1·(−32) = −16;
    // 33 (k 1, l 1: low nibble of ql[33] = 33 >> 3 = 4, high 1 → q 20 − 32 = −12, scale[2] = 2) = −12;
    // 69 (k 2, l 5: high nibble of ql[5] = 5, high 2 → 37 − 32 = 5, scale[4] = 3) = 7.5;
    // 127 (k 3, l 31: high nibble of ql[63] = 64 & 15 = 0, high 3 → 48 − 32 = 16, scale[7] = −4) = −32;
    // 128 (n 1, k 0: low nibble of ql[64] = 8, high 3 → 56 − 32 = 24, scale[8] = 127) = 1524;
    // 144 (n 1, k 0, l 16: low nibble of ql[80] = 10, high 3 → 58 − 32 = 26, scale[9] = −128) = −1664.
    expect([got[0], got[33], got[69], got[127], got[128], got[144]]).toEqual([-16, -12, 7.5, -32, 1524, -1664]);
  });
});

describe('edge values', () => {
  const rand = seededRandom(seed);
  const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));

  it('all-zero scales decode to zeros whatever the codes', () => {
    // Q8_0/Q4_0/Q5_0: d = 0. Q4_1/Q5_1: d = m = 0. Q4_K/Q5_K: scales and mins all 0 (d, dmin = 1, so
    // only the 6-bit codes are zero). Q6_K: int8 scales all 0 (d = 1).
    const blocks: Record<QuantType, Uint8Array> = {
      Q8_0: bytesOf(h16(0), Array.from(randomBytes(32))),
      Q4_0: bytesOf(h16(0), Array.from(randomBytes(16))),
      Q4_1: bytesOf(h16(0), h16(0), Array.from(randomBytes(16))),
      Q5_0: bytesOf(h16(0), Array.from(randomBytes(20))),
      Q5_1: bytesOf(h16(0), h16(0), Array.from(randomBytes(20))),
      Q4_K: bytesOf(h16(H.one), h16(H.one), range(12, () => 0), Array.from(randomBytes(128))),
      Q5_K: bytesOf(h16(H.one), h16(H.one), range(12, () => 0), Array.from(randomBytes(160))),
      Q6_K: bytesOf(Array.from(randomBytes(192)), range(16, () => 0), h16(H.one)),
    };
    for (const t of QUANT_TYPES) {
      const got = decode(t, blocks[t]);
      expect(got.length, t).toBe(QUANT_LAYOUT[t].blockSize);
      expect(got.every((v) => v === 0), t).toBe(true);
    }
  });

  it('the lowest and highest codes decode to the ends of each range', () => {
    const lowHigh = (t: QuantType, low: Uint8Array, high: Uint8Array) => [decode(t, low), decode(t, high)];
    // Q8_0, d = 1: −128 and 127.
    expect(lowHigh('Q8_0', bytesOf(h16(H.one), range(32, () => -128)), bytesOf(h16(H.one), range(32, () => 127)))).toEqual([range(32, () => -128), range(32, () => 127)]);
    // Q4_0, d = 1: code 0 → −8, code 15 → 7.
    expect(lowHigh('Q4_0', bytesOf(h16(H.one), range(16, () => 0)), bytesOf(h16(H.one), range(16, () => 0xff)))).toEqual([range(32, () => -8), range(32, () => 7)]);
    // Q4_1, d = 1, m = −1: 0 → −1, 15 → 14.
    expect(lowHigh('Q4_1', bytesOf(h16(H.one), h16(H.minusOne), range(16, () => 0)), bytesOf(h16(H.one), h16(H.minusOne), range(16, () => 0xff)))).toEqual([range(32, () => -1), range(32, () => 14)]);
    // Q5_0, d = 1: 0 → −16, 31 (all qh bits, all nibbles 15) → 15.
    expect(lowHigh('Q5_0', bytesOf(h16(H.one), range(20, () => 0)), bytesOf(h16(H.one), range(20, () => 0xff)))).toEqual([range(32, () => -16), range(32, () => 15)]);
    // Q5_1, d = 1, m = 2: 0 → 2, 31 → 33.
    expect(lowHigh('Q5_1', bytesOf(h16(H.one), h16(H.two), range(20, () => 0)), bytesOf(h16(H.one), h16(H.two), range(20, () => 0xff)))).toEqual([range(32, () => 2), range(32, () => 33)]);
    // Q4_K, d = 1, dmin = 1, all 12 scale bytes 0xff (every scale and min = 63): q 0 → −63, q 15 → 63·15 − 63 = 882.
    const k = (qs: number, qh: number[] = []) => bytesOf(h16(H.one), h16(H.one), range(12, () => 0xff), qh, range(128, () => qs));
    expect(lowHigh('Q4_K', k(0), k(0xff))).toEqual([range(256, () => -63), range(256, () => 882)]);
    // Q5_K, same scales: q 0 → −63, q 31 → 63·31 − 63 = 1890.
    expect(lowHigh('Q5_K', k(0, range(32, () => 0)), k(0xff, range(32, () => 0xff)))).toEqual([range(256, () => -63), range(256, () => 1890)]);
    // Q6_K, d = 1, scales 127: q 0 → 127·(−32) = −4064, q 63 → 127·31 = 3937; scales −128: 4096 and −3968.
    const six = (bits: number, scale: number) => bytesOf(range(192, () => bits), range(16, () => scale), h16(H.one));
    expect(lowHigh('Q6_K', six(0, 127), six(0xff, 127))).toEqual([range(256, () => -4064), range(256, () => 3937)]);
    expect(lowHigh('Q6_K', six(0, -128), six(0xff, -128))).toEqual([range(256, () => 4096), range(256, () => -3968)]);
  });

  it('a negative d flips the signs (and a negative dmin the offset)', () => {
    // Q8_0, d = −2, qs = [1, −1, 127, −128, 0…]: −2, 2, −254, 256, then zeros (−0: d·0 with d < 0).
    const q8 = decode('Q8_0', bytesOf(h16(H.minusTwo), [1, -1, 127, -128], range(28, () => 0)));
    expect(q8.slice(0, 4)).toEqual([-2, 2, -254, 256]);
    expect(q8.slice(4).every((v) => v === 0)).toBe(true);
    // Q4_0, d = −0.5, nibbles 0 and 15: (0 − 8)·−0.5 = 4, (15 − 8)·−0.5 = −3.5.
    expect(decode('Q4_0', bytesOf(h16(H.minusHalf), range(16, () => 0xf0)))).toEqual([...range(16, () => 4), ...range(16, () => -3.5)]);
    // Q4_K, d = −1, dmin = −0.5, scales K_SCALES, all codes 1: x = −sc + 0.5·m.
    expect(decode('Q4_K', bytesOf(h16(H.minusOne), h16(H.minusHalf), K_SCALES, range(128, () => 0x11)))).toEqual(
      range(256, (e) => -(K_SC[e >> 5] as number) + 0.5 * (K_M[e >> 5] as number)),
    );
    // Q6_K, d = −1, scale 3, q 63: −1·3·31 = −93.
    expect(decode('Q6_K', bytesOf(range(192, () => 0xff), range(16, () => 3), h16(H.minusOne)))).toEqual(range(256, () => -93));
  });

  it('a subnormal d scales exactly; an infinite or NaN d gives ±∞ and NaN as IEEE arithmetic does', () => {
    // d = 2⁻²⁴ (the least f16 subnormal): q·2⁻²⁴ is exact in float32.
    expect(decode('Q8_0', bytesOf(h16(H.tiny), [127, -128, 1], range(29, () => 0))).slice(0, 3)).toEqual([127 * 2 ** -24, -128 * 2 ** -24, 2 ** -24]);
    expect(decode('Q6_K', bytesOf(range(192, () => 0xff), range(16, () => 1), h16(H.tiny)))).toEqual(range(256, () => 31 * 2 ** -24));
    // d = +∞: q > 0 → ∞, q < 0 → −∞, q = 0 → ∞·0 = NaN.
    expect(decode('Q8_0', bytesOf(h16(H.inf), [1, -1, 0], range(29, () => 5))).slice(0, 3)).toEqual([Infinity, -Infinity, NaN]);
    // Q4_K with dmin = ∞ and min codes 0 (bytes 4–7 and the high nibbles of 8–11 zero): ∞·0 = NaN everywhere.
    expect(decode('Q4_K', bytesOf(h16(H.one), h16(H.inf), [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1], range(128, () => 0x11))).every(Number.isNaN)).toBe(true);
    // A NaN d makes every element NaN.
    expect(decode('Q4_1', bytesOf(h16(H.nan), h16(H.one), range(16, () => 0x21))).every(Number.isNaN)).toBe(true);
  });
});

describe('slices and callers', () => {
  it('Q8_0 decodes as ggml.ts dequantize does (the loader’s decoder), on random bytes', () => {
    const rand = seededRandom(seed + 1);
    const blocks = 13;
    const bytes = Uint8Array.from({ length: blocks * 34 }, (_, i) => (i % 34 === 1 ? Math.floor(rand() * 0x7c) : Math.floor(rand() * 256))); // finite d
    expect(decode('Q8_0', bytes)).toEqual(Array.from(dequantize(FILE, { name: 'w', dtype: 'Q8_0' }, bytes)));
  });

  it('an unaligned slice, block-by-block slices and an `out` array give the same values', () => {
    const rand = seededRandom(seed + 2);
    for (const t of QUANT_TYPES) {
      const { typeSize, blockSize } = QUANT_LAYOUT[t];
      const values = range(3 * blockSize, () => rand() * 2 - 1);
      const bytes = quantize(t, values);
      const whole = decode(t, bytes);
      const shifted = new Uint8Array(bytes.byteLength + 3);
      shifted.set(bytes, 3);
      expect(decode(t, shifted.subarray(3)), t).toEqual(whole);
      const pieces = range(3, (b) => decode(t, bytes.subarray(b * typeSize, (b + 1) * typeSize))).flat();
      expect(pieces, t).toEqual(whole);
      const out = new Float32Array(3 * blockSize + 5).fill(7);
      expect(dequantizeBlocks(FILE, { name: 'w', dtype: t }, bytes, 3 * blockSize, out)).toBe(out);
      expect(Array.from(out.subarray(0, 3 * blockSize)), t).toEqual(whole);
      expect(Array.from(out.subarray(3 * blockSize)), t).toEqual([7, 7, 7, 7, 7]);
    }
  });
});

describe('quantize → dequantize round trips', () => {
  // A half rounded up (away from 0) from x ≥ 0 is less than one f16 unit above it: 2⁻¹⁰·x for a normal
  // half, 2⁻²⁴ for a subnormal one.
  const up = (x: number) => x * (1 + 2 ** -10) + 2 ** -24;
  // The decoded values are float32: each within 2⁻²⁴ relative of its exact value; allow 2⁻²² of (|x| + bound).
  const slack = (x: number, bound: number) => 2 ** -22 * (Math.abs(x) + bound);

  /**
   * Random blocks of mixed sign, all positive, all negative, or all zero, at magnitudes 2⁻³…2³
   * (some Q6_K super-block scales fall among the f16 subnormals, which `up` allows for), `blocks` of `size`.
   */
  function randomValues(rand: () => number, blocks: number, size: number): Float32Array {
    const out = new Float32Array(blocks * size);
    for (let b = 0; b < blocks; b++) {
      const kind = b === 1 ? 'zero' : (['mixed', 'mixed', 'positive', 'negative'] as const)[Math.floor(rand() * 4)];
      const scale = 2 ** (rand() * 6 - 3);
      for (let i = 0; i < size; i++) {
        const u = rand();
        out[b * size + i] = kind === 'zero' ? 0 : kind === 'mixed' ? (2 * u - 1) * scale : (kind === 'positive' ? 1 : -1) * (0.05 + u) * scale;
      }
    }
    return out;
  }

  /**
   * The largest error each element may have, from the input alone (derivations in
   * test/support/ggml-quantize.ts, where each format's method is described).
   */
  function bounds(t: QuantType, x: Float32Array): number[] {
    const block = QUANT_LAYOUT[t].blockSize;
    const out: number[] = [];
    for (let b = 0; b < x.length / block; b++) {
      const v = Array.from(x.subarray(b * block, (b + 1) * block));
      const absmax = Math.max(...v.map(Math.abs));
      switch (t) {
        case 'Q8_0': // d ≤ absmax/127 rounded up; |err| ≤ d/2.
          v.forEach(() => out.push(up(absmax / 127) / 2));
          break;
        case 'Q4_0':
        case 'Q5_0': {
          // |d| ≤ |v|/8 (16) rounded away from 0: |err| ≤ |d|/2 on v's side of 0, ≤ |d| on the other.
          const half = t === 'Q4_0' ? 8 : 16;
          const big = v.find((xi) => Math.abs(xi) === absmax) as number;
          const d = up(absmax / half);
          v.forEach((xi) => out.push(xi * big >= 0 ? d / 2 : d));
          break;
        }
        case 'Q4_1':
        case 'Q5_1': {
          // m = min rounded down (≤ 2⁻¹⁰·|min| + 2⁻²⁴ below it), d = (max − m)/15 (31) rounded up; |err| ≤ d/2.
          const top = t === 'Q4_1' ? 15 : 31;
          const min = Math.min(...v);
          const d = up((Math.max(...v) - min + 2 ** -10 * Math.abs(min) + 2 ** -24) / top);
          v.forEach(() => out.push(d / 2));
          break;
        }
        case 'Q4_K':
        case 'Q5_K': {
          // Sub-block j spans R_j = max_j + o_j, o_j = −min(0, min_j). The stored offset exceeds o_j by
          // less than one min step dmin ≤ Dm = max o/63 rounded up, so the 4-bit (5-bit) step wanted
          // is ≤ (R_j + Dm)/15; the stored step d·ls_j exceeds it by less than one scale step
          // d ≤ D = max_j ((R_j + Dm)/15)/63 rounded up. |err| ≤ half the stored step:
          //   |err| ≤ ½·((R_j + Dm)/15 + D)  — the 4-bit step, widened by 1/63 of the largest one.
          const top = t === 'Q4_K' ? 15 : 31;
          const subs = range(8, (j) => v.slice(32 * j, 32 * j + 32));
          const o = subs.map((s) => -Math.min(0, ...s));
          const R = subs.map((s, j) => Math.max(...s) + (o[j] as number));
          const Dm = up(Math.max(...o) / 63);
          const D = up(Math.max(...R.map((r) => (r + Dm) / top)) / 63);
          for (let j = 0; j < 8; j++) for (let l = 0; l < 32; l++) out.push((((R[j] as number) + Dm) / top + D) / 2);
          break;
        }
        case 'Q6_K': {
          // Sub-block j of 16: wanted step A_j/31; stored step d·sc_j < A_j/31 + d, d ≤ max (A/31)/127 rounded up.
          const A = range(16, (j) => Math.max(...v.slice(16 * j, 16 * j + 16).map(Math.abs)));
          const D = up(Math.max(...A) / 31 / 127);
          for (let e = 0; e < 256; e++) out.push(((A[e >> 4] as number) / 31 + D) / 2);
          break;
        }
      }
    }
    return out;
  }

  for (const t of QUANT_TYPES) {
    it(`${t}: every element within its format's bound, on odd block counts`, () => {
      const rand = seededRandom(seed + 10 + QUANT_TYPES.indexOf(t));
      const blockSize = QUANT_LAYOUT[t].blockSize;
      for (const blocks of blockSize === 32 ? [1, 7, 33] : [1, 3, 5]) {
        const x = randomValues(rand, blocks, blockSize);
        const bytes = quantize(t, x);
        expect(bytes.byteLength).toBe(blocks * QUANT_LAYOUT[t].typeSize);
        const y = dequantizeBlocks(FILE, { name: 'w', dtype: t }, bytes, x.length);
        const bound = bounds(t, x);
        let worst = 0;
        for (let i = 0; i < x.length; i++) {
          const err = Math.abs((y[i] as number) - (x[i] as number));
          const limit = (bound[i] as number) + slack(x[i] as number, bound[i] as number);
          if (!(err <= limit)) throw new Error(`${t} element ${i} of ${x.length}: |${y[i]} − ${x[i]}| = ${err} > ${limit} (seed ${seed})`);
          worst = Math.max(worst, err / (bound[i] as number || 1));
        }
        // Not vacuous: the codes are coarse enough that some element uses a good part of its bound.
        if (blocks > 1) expect(worst, `${t}, ${blocks} blocks (seed ${seed})`).toBeGreaterThan(0.25);
      }
    });
  }

  it('f16Rounded rounds to the nearest half on the asked side', () => {
    for (const x of [0.1, -0.1, 1 / 3, -1 / 3, 1, 2 ** -20, -(2 ** -20), 1000.3, 0]) {
      const up = f16ToF32(f16Rounded(x, 'up'));
      const down = f16ToF32(f16Rounded(x, 'down'));
      expect(up >= x && down <= x, String(x)).toBe(true);
      // Adjacent (or equal when x is a half): no half lies strictly between them.
      expect(up - down, String(x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -10 + 2 ** -24);
    }
  });
});

describe('bad input', () => {
  const NAME = 'blk.3.ssm_out.weight';

  it('a byte length that is not a whole number of blocks is refused, naming the file, tensor and format', async () => {
    for (const t of QUANT_TYPES) {
      const size = QUANT_LAYOUT[t].typeSize;
      for (const n of [1, size - 1, size + 1, 3 * size + 2]) {
        const error = await modelError(() => dequantizeBlocks(FILE, { name: NAME, dtype: t }, new Uint8Array(n)));
        expect(error.file).toBe(FILE);
        expect(error.message).toBe(`${FILE}: tensor "${NAME}": ${n} bytes are not a whole number of ${t} blocks (${size} bytes)`);
      }
    }
  });

  it('an element count that does not match the bytes, or is not whole blocks, is refused', async () => {
    const bytes = new Uint8Array(144);
    expect((await modelError(() => dequantizeBlocks(FILE, { name: NAME, dtype: 'Q4_K' }, bytes, 512))).message).toBe(
      `${FILE}: tensor "${NAME}": 512 elements of Q4_K need 288 bytes, the file holds 144`,
    );
    expect((await modelError(() => dequantizeBlocks(FILE, { name: NAME, dtype: 'Q4_K' }, bytes, 100))).message).toBe(
      `${FILE}: tensor "${NAME}": 100 elements are not a whole number of Q4_K blocks (256 elements)`,
    );
    expect(dequantizeBlocks(FILE, { name: NAME, dtype: 'Q4_K' }, bytes, 256)).toHaveLength(256);
  });

  it('a format this decoder does not know is refused by name', async () => {
    const error = await modelError(() => dequantizeBlocks(FILE, { name: NAME, dtype: 'Q2_K' }, new Uint8Array(84)));
    expect(error.message).toBe(`${FILE}: tensor "${NAME}": Q2_K is not a block format this decoder knows (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)`);
  });

  it('the loader decodes every block format through dequantizeBlocks, and still refuses the others (Q2_K)', async () => {
    for (const type of QUANT_TYPES) {
      const { typeSize } = QUANT_LAYOUT[type];
      const bytes = new Uint8Array(3 * typeSize).map((_, i) => (i * 37 + 11) & 255);
      // Arbitrary bytes (some scales inf or NaN): the loader's decoder is dequantizeBlocks itself, so every value agrees.
      expect(Array.from(dequantize(FILE, { name: NAME, dtype: type }, bytes)), type).toEqual(Array.from(dequantizeBlocks(FILE, { name: NAME, dtype: type }, bytes)));
    }
    const error = await modelError(() => dequantize(FILE, { name: NAME, dtype: 'Q2_K' }, new Uint8Array(84)));
    expect(error.message).toBe(`${FILE}: tensor "${NAME}": Q2_K is not supported; use a GGUF in F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K`);
  });
});
