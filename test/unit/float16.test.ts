/**
 * app/formats/float16.ts against decoders written here from the IEEE 754 definitions:
 * binary16 is 1 sign bit, 5 exponent bits (bias 15) and 10 fraction bits; bfloat16 is 1 sign bit,
 * 8 exponent bits (bias 127) and 7 fraction bits. Exponent all zeros: subnormal (0.f × 2^(1−bias));
 * all ones: ±∞ (f = 0) or NaN; otherwise 1.f × 2^(e−bias).
 */
import { describe, expect, it } from 'vitest';
import { bf16ToF32, decodeF32, decodeF64, decodeFloats, decodeHalves, f16Table, f16ToF32 } from '../../app/formats/float16';

/** The value of a float with `exponentBits` and `fractionBits` (and a sign bit) from its bits. */
function ieee(bits: number, exponentBits: number, fractionBits: number): number {
  const sign = Math.floor(bits / 2 ** (exponentBits + fractionBits)) % 2 === 1 ? -1 : 1;
  const exponent = Math.floor(bits / 2 ** fractionBits) % 2 ** exponentBits;
  const fraction = bits % 2 ** fractionBits;
  const bias = 2 ** (exponentBits - 1) - 1;
  if (exponent === 2 ** exponentBits - 1) return fraction === 0 ? sign * Infinity : NaN;
  // Sign applied last so that a zero fraction gives −0 for the negative patterns.
  if (exponent === 0) return sign * ((fraction / 2 ** fractionBits) * 2 ** (1 - bias));
  return sign * ((1 + fraction / 2 ** fractionBits) * 2 ** (exponent - bias));
}
const halfValue = (bits: number) => ieee(bits, 5, 10);
const bfloatValue = (bits: number) => ieee(bits, 8, 7);

/** Same value, telling −0 from +0; any NaN matches any NaN. */
function same(got: number, want: number): boolean {
  return Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want);
}

const show = (x: number) => (Object.is(x, -0) ? '-0' : String(x));

/** 16-bit patterns as little-endian bytes, starting `shift` bytes into a fresh buffer. */
function bytesOf(patterns: ArrayLike<number>, shift = 0): Uint8Array {
  const buffer = new Uint8Array(shift + 2 * patterns.length);
  for (let i = 0; i < patterns.length; i++) {
    buffer[shift + 2 * i] = (patterns[i] as number) & 0xff;
    buffer[shift + 2 * i + 1] = (patterns[i] as number) >> 8;
  }
  return buffer.subarray(shift);
}

const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i);

describe('F16', () => {
  it('the definition itself, on known values', () => {
    expect(halfValue(0x3c00)).toBe(1);
    expect(halfValue(0xc000)).toBe(-2);
    expect(halfValue(0x7bff)).toBe(65504);
    expect(halfValue(0x0400)).toBe(2 ** -14);
    expect(halfValue(0x0001)).toBe(2 ** -24);
    expect(halfValue(0x3555)).toBe(0.333251953125);
    expect(Object.is(halfValue(0x8000), -0)).toBe(true);
    expect(halfValue(0xfc00)).toBe(-Infinity);
    expect(halfValue(0x7c01)).toBeNaN();
  });

  it('f16ToF32, f16Table and decodeHalves agree with the definition on all 65,536 patterns', () => {
    const table = f16Table();
    expect(f16Table()).toBe(table); // built once
    const aligned = decodeHalves(bytesOf(ALL), 'F16');
    const unaligned = decodeHalves(bytesOf(ALL, 1), 'F16');
    expect(aligned.length).toBe(65536);
    expect(unaligned.length).toBe(65536);
    const wrong: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const want = halfValue(h);
      // Every half is exactly a float32, so the float32 arrays hold it unrounded.
      if (!Number.isNaN(want) && Math.fround(want) !== want) wrong.push(`0x${h.toString(16)} = ${want} is not a float32`);
      for (const [what, got] of [['f16ToF32', f16ToF32(h)], ['f16Table', table[h]], ['decodeHalves', aligned[h]], ['decodeHalves (unaligned)', unaligned[h]]] as const) {
        if (!same(got as number, want) && wrong.length < 10) wrong.push(`${what}(0x${h.toString(16)}) = ${show(got as number)}, expected ${show(want)}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('BF16', () => {
  const patterns = [
    0x0000, 0x8000, // ±0
    0x3f80, 0xbf80, 0x4000, 0x4049, 0xc2f7, 0x3eaa, // 1, −1, 2, 3.140625, −123.5, 0.33203125
    0x0080, 0x8080, 0x7f7f, 0xff7f, // smallest normal, largest finite (±)
    0x0001, 0x8001, 0x007f, // subnormals: smallest (±), largest
    0x7f80, 0xff80, // ±∞
    0x7fc0, 0xffc0, 0x7f81, 0x7fff, // NaNs (quiet, negative, signalling, all ones)
  ];

  it('the definition itself, on known values', () => {
    expect(bfloatValue(0x3f80)).toBe(1);
    expect(bfloatValue(0x4049)).toBe(3.140625);
    expect(bfloatValue(0xc2f7)).toBe(-123.5);
    expect(bfloatValue(0x0080)).toBe(2 ** -126);
    expect(bfloatValue(0x0001)).toBe(2 ** -133);
    expect(bfloatValue(0x7f7f)).toBe((2 - 2 ** -7) * 2 ** 127);
  });

  it('bf16ToF32 and decodeHalves agree with the definition, aligned or not', () => {
    const aligned = decodeHalves(bytesOf(patterns), 'BF16');
    const unaligned = decodeHalves(bytesOf(patterns, 3), 'BF16');
    patterns.forEach((b, i) => {
      const want = bfloatValue(b);
      expect(same(bf16ToF32(b), want), `bf16ToF32(0x${b.toString(16)})`).toBe(true);
      expect(same(aligned[i] as number, want), `decodeHalves 0x${b.toString(16)}`).toBe(true);
      expect(same(unaligned[i] as number, want), `decodeHalves unaligned 0x${b.toString(16)}`).toBe(true);
    });
  });

  it('decodeHalves keeps a BF16 pattern as the high half of the float32 bits (NaN payloads too)', () => {
    for (const shift of [0, 1]) {
      const bits = new Uint32Array(decodeHalves(bytesOf(patterns, shift), 'BF16').buffer);
      expect(Array.from(bits)).toEqual(patterns.map((b) => (b << 16) >>> 0));
    }
  });
});

describe('bulk decoding', () => {
  it('an unaligned slice of a larger buffer decodes like an aligned copy, in every encoding', () => {
    const values = [0, -0, 1, -2.5, 1e-3, 65504, 3.140625, -1e-7, 123456.789];
    const f32 = new Uint8Array(Float32Array.from(values).buffer);
    const f64 = new Uint8Array(Float64Array.from(values).buffer);
    const halves = bytesOf([0x3c00, 0xc100, 0x0001, 0x7bff, 0x8000, 0x4049, 0x7c00]);
    for (const [kind, bytes] of [['F32', f32], ['F64', f64], ['F16', halves], ['BF16', halves]] as const) {
      const expected = Array.from(decodeFloats(bytes, kind));
      for (const shift of [1, 2, 3, 5]) {
        const buffer = new Uint8Array(shift + bytes.byteLength + 3).fill(0xab);
        buffer.set(bytes, shift);
        const slice = buffer.subarray(shift, shift + bytes.byteLength);
        expect(Array.from(decodeFloats(slice, kind)), `${kind} at +${shift}`).toEqual(expected);
      }
    }
    expect(Array.from(decodeF32(f32))).toEqual(values.map(Math.fround));
    expect(Array.from(decodeF64(f64))).toEqual(values.map(Math.fround));
  });

  it('writes into a given output from its start and returns it', () => {
    const out = new Float32Array(5).fill(7);
    expect(decodeHalves(bytesOf([0x3c00, 0xc000]), 'F16', out)).toBe(out);
    expect(Array.from(out)).toEqual([1, -2, 7, 7, 7]);
    const window = new Float32Array(6).subarray(2, 4);
    decodeHalves(bytesOf([0x3f80, 0x4000], 1), 'BF16', window);
    expect(Array.from(window)).toEqual([1, 2]);
    expect(() => decodeHalves(bytesOf([1, 2, 3]), 'F16', new Float32Array(2))).toThrow(RangeError);
  });

  it('refuses a partial value', () => {
    expect(() => decodeHalves(new Uint8Array(3), 'F16')).toThrow(RangeError);
    expect(() => decodeF32(new Uint8Array(6))).toThrow(RangeError);
    expect(() => decodeF64(new Uint8Array(12))).toThrow(RangeError);
  });
});
