import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../../app/formats/errors';
import { f16ToF32 } from '../../app/formats/float16';
import { readSafetensorsHeader, readTensorBytes, toFloat32, toIntegers } from '../../app/formats/safetensors';
import { blobSource, memorySource } from '../../app/formats/source';
import { openFileSource } from '../../app/node/file-source';
import { withHeader, writeSafetensors } from '../support/safetensors-writer';

const valid = () =>
  writeSafetensors(
    {
      a: { dtype: 'F32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
      ids: { dtype: 'I64', shape: [3], data: [5, 17, 3] },
      h: { dtype: 'F16', shape: [2], data: [0x3c00, 0xc000] }, // 1.0, -2.0
      b: { dtype: 'BF16', shape: [1], data: [0x3fc0] }, // 1.5
    },
    { format: 'pt' },
  );

const parse = (bytes: Uint8Array, name = 'model.safetensors') => readSafetensorsHeader(memorySource(name, bytes));

describe('safetensors header', () => {
  it('parses tensors, offsets and metadata, and decodes values', async () => {
    const bytes = valid();
    const header = await parse(bytes);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect([...header.tensors.keys()]).toEqual(['a', 'ids', 'h', 'b']);
    const source = memorySource('m', bytes);
    const a = header.tensors.get('a')!;
    expect(a.shape).toEqual([2, 3]);
    expect([...toFloat32(a, await readTensorBytes(source, a))]).toEqual([1, 2, 3, 4, 5, 6]);
    const ids = header.tensors.get('ids')!;
    expect(toIntegers(ids, await readTensorBytes(source, ids))).toEqual([5, 17, 3]);
    const h = header.tensors.get('h')!;
    expect([...toFloat32(h, await readTensorBytes(source, h))]).toEqual([1, -2]);
    const b = header.tensors.get('b')!;
    expect([...toFloat32(b, await readTensorBytes(source, b))]).toEqual([1.5]);
  });

  it('reads the same through a Blob and a file on disk', async () => {
    const bytes = valid();
    const blobHeader = await readSafetensorsHeader(blobSource(new Blob([bytes as BlobPart]), 'blob.safetensors'));
    expect(blobHeader.tensors.get('ids')?.offset).toBe((await parse(bytes)).tensors.get('ids')?.offset);
    const dir = mkdtempSync(path.join(tmpdir(), 'st-'));
    const file = path.join(dir, 'model.safetensors');
    writeFileSync(file, bytes);
    const source = await openFileSource(file);
    try {
      expect([...(await readSafetensorsHeader(source)).tensors.keys()]).toEqual(['a', 'ids', 'h', 'b']);
    } finally {
      await source.close();
    }
  });

  it('f16 decoding covers subnormals, infinities and NaN', () => {
    expect(f16ToF32(0x0001)).toBeCloseTo(5.960464477539063e-8, 20);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0x7bff)).toBe(65504);
  });

  const bad: [string, () => Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', () => new Uint8Array(5), /too short for a safetensors file \(5 bytes\)/],
    ['a truncated file', () => valid().subarray(0, valid().byteLength - 3), /tensor "h": data_offsets \[48, 52\] run past the end of the data \(51 bytes\): the file is truncated/],
    [
      'a header length past the end of the file',
      () => {
        const b = valid();
        new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
        return b;
      },
      /header length 1099511627776 runs past the end of the file/,
    ],
    [
      'a header that is not JSON',
      () => {
        const b = valid();
        b[8] = 0x7b;
        b[9] = 0x7b;
        return b;
      },
      /header is not valid JSON/,
    ],
    ['a header that is a JSON array', () => withHeader(valid(), () => []), /header is not a JSON object/],
    ['an unknown dtype', () => withHeader(valid(), (h) => void ((h.a as { dtype: string }).dtype = 'F4')), /tensor "a": unknown dtype "F4"/],
    ['a shape that does not match the bytes', () => withHeader(valid(), (h) => void ((h.a as { shape: number[] }).shape = [3, 3])), /tensor "a": holds 24 bytes, but shape \[3, 3\] of F32 needs 36/],
    ['a negative dimension', () => withHeader(valid(), (h) => void ((h.a as { shape: number[] }).shape = [-2, -3])), /tensor "a": shape \[-2,-3\] is not a list/],
    [
      'overlapping tensors',
      () => withHeader(valid(), (h) => void ((h.ids as { data_offsets: number[] }).data_offsets = [16, 40])),
      /overlaps the tensor before it/,
    ],
    [
      'out-of-bounds offsets',
      () => withHeader(valid(), (h) => void ((h.b as { data_offsets: number[] }).data_offsets = [1000, 1002])),
      /tensor "b": data_offsets \[1000, 1002\] run past the end of the data/,
    ],
    ['reversed offsets', () => withHeader(valid(), (h) => void ((h.b as { data_offsets: number[] }).data_offsets = [52, 50])), /not \[begin, end\]/],
    ['metadata that is not strings', () => withHeader(valid(), (h) => void (h.__metadata__ = { n: 3 })), /__metadata__\.n is not a string/],
  ];
  it.each(bad)('names the file and the problem for %s', async (_what, make, message) => {
    const error = await parse(make(), 'broken.safetensors').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFileError);
    expect((error as ModelFileError).message).toMatch(/^broken\.safetensors: /);
    expect((error as ModelFileError).message).toMatch(message);
  });

  it('reports a missing file by path', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'st-'));
    await expect(openFileSource(path.join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: cannot be opened \(file not found\)/);
  });
});
