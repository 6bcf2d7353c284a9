/**
 * The NPY writer (app/formats/npy.ts) against the format's facts (numpy/lib/format.py, version
 * 1.0) and a hand-written reader (test/support/npy-reader.ts): magic, version, little-endian
 * header length, the header dict's text, the 64-byte alignment, and the values (float32 rounding,
 * int32) in C order for random shapes.
 */
import { describe, expect, it } from 'vitest';
import { encodeNpy, npyHeaderText } from '../../app/formats/npy';
import { parseNpy } from '../support/npy-reader';

describe('NPY writer', () => {
  it('writes the version 1.0 preamble and a 64-byte aligned header as numpy does', () => {
    const bytes = encodeNpy({ dtype: '<f4', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] });
    // "\x93NUMPY", version 1.0
    expect([...bytes.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = bytes[8]! + 256 * bytes[9]!;
    expect((10 + headerLength) % 64).toBe(0);
    const header = new TextDecoder('latin1').decode(bytes.subarray(10, 10 + headerLength));
    // numpy 1.x/2.x write exactly this dict text, space-padded, newline-terminated.
    expect(header.trimEnd()).toBe("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    expect(header.endsWith('\n')).toBe(true);
    expect(/^[^\n]* *\n$/.test(header)).toBe(true);
    expect(bytes.length).toBe(10 + headerLength + 6 * 4);
    // The data: little-endian float32, C order (1.0f = 0x3F800000).
    expect([...bytes.subarray(10 + headerLength, 10 + headerLength + 4)]).toEqual([0x00, 0x00, 0x80, 0x3f]);
  });

  it('spells 1-D and 0-D shapes like Python tuples', () => {
    expect(npyHeaderText('<i4', [5])).toBe("{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }");
    expect(npyHeaderText('<f4', [])).toBe("{'descr': '<f4', 'fortran_order': False, 'shape': (), }");
    const scalar = parseNpy(encodeNpy({ dtype: '<f4', shape: [], data: [2.5] }));
    expect(scalar.shape).toEqual([]);
    expect([...scalar.data]).toEqual([2.5]);
    const empty = parseNpy(encodeNpy({ dtype: '<f4', shape: [0, 7], data: [] }));
    expect(empty.shape).toEqual([0, 7]);
    expect(empty.data.length).toBe(0);
  });

  it('round-trips random float32 and int32 arrays through an independent reader', () => {
    for (let trial = 0; trial < 20; trial++) {
      const rank = 1 + Math.floor(Math.random() * 3);
      const shape = Array.from({ length: rank }, () => 1 + Math.floor(Math.random() * 9));
      const count = shape.reduce((a, b) => a * b, 1);
      const floats = Array.from({ length: count }, () => (Math.random() - 0.5) * 10 ** (Math.random() * 8 - 4));
      const f = parseNpy(encodeNpy({ dtype: '<f4', shape, data: floats }));
      expect(f.major).toBe(1);
      expect(f.minor).toBe(0);
      expect((10 + f.headerLength) % 64).toBe(0);
      expect(f.descr).toBe('<f4');
      expect(f.fortranOrder).toBe(false);
      expect(f.shape).toEqual(shape);
      expect([...f.data]).toEqual(floats.map((v) => Math.fround(v)));
      const ints = Array.from({ length: count }, () => Math.floor((Math.random() - 0.5) * 2 ** 32));
      const i = parseNpy(encodeNpy({ dtype: '<i4', shape, data: Int32Array.from(ints) }));
      expect(i.descr).toBe('<i4');
      expect(i.shape).toEqual(shape);
      expect([...i.data]).toEqual([...Int32Array.from(ints)]);
    }
  });

  it('keeps NaN and infinities', () => {
    const parsed = parseNpy(encodeNpy({ dtype: '<f4', shape: [3], data: [NaN, Infinity, -Infinity] }));
    expect(Number.isNaN(parsed.data[0])).toBe(true);
    expect(parsed.data[1]).toBe(Infinity);
    expect(parsed.data[2]).toBe(-Infinity);
  });

  it('refuses a shape that does not match the data', () => {
    expect(() => encodeNpy({ dtype: '<f4', shape: [2, 2], data: [1, 2, 3] })).toThrow(RangeError);
    expect(() => encodeNpy({ dtype: '<f4', shape: [-1], data: [] })).toThrow(RangeError);
  });
});
