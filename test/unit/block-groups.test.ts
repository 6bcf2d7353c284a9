/**
 * The GPU layout of the ggml block formats (app/kernels/weight-format.ts): groups of 8 blocks,
 * each field of the block a plane. Checked against ggml's block layouts as
 * app/formats/ggml-quants.ts documents them (QUANT_LAYOUT, the field offsets below), on random
 * bytes of odd block counts.
 */
import { describe, expect, it } from 'vitest';
import { QUANT_LAYOUT } from '../../app/formats/ggml-quants';
import { BLOCK_FIELDS, BLOCK_FORMATS, BLOCK_GROUP, groupBlocks, quantTypeOf, ungroupBlocks, weightBytes } from '../../app/kernels/weight-format';
import { seededRandom } from '../../app/random';

const random = (n: number, seed: number) => {
  const next = seededRandom(seed);
  return new Uint8Array(n).map(() => Math.floor(next() * 256));
};

describe('block formats in groups of 8 on the GPU', () => {
  for (const format of BLOCK_FORMATS) {
    const { typeSize, blockSize } = QUANT_LAYOUT[quantTypeOf(format)];
    it(`${format}: the fields cover the ${typeSize}-byte block once, 16-byte fields start 16-byte aligned in a group`, () => {
      const covered = new Array<number>(typeSize).fill(0);
      let plane = 0;
      for (const [at, size] of BLOCK_FIELDS[format]) {
        for (let k = at; k < at + size; k++) covered[k] = (covered[k] as number) + 1;
        // The kernels' loads: 16-byte ones of fields of ≥ 16 bytes, 4-byte ones of 4-byte fields, 2-byte of 2-byte.
        const align = Math.min(16, size);
        for (let i = 0; i < BLOCK_GROUP; i++) expect((plane + i * size) % align, `${format} field at ${at}, block ${i}`).toBe(0);
        plane += BLOCK_GROUP * size;
      }
      expect(covered.every((c) => c === 1)).toBe(true);
      expect(plane).toBe(BLOCK_GROUP * typeSize);
      expect(plane % 16).toBe(0);
    });

    it(`${format}: grouping puts field bytes where the planes say, pads the last group with zeros, and ungrouping restores the blocks`, () => {
      const blocks = 19; // two whole groups and a partial one
      const bytes = random(blocks * typeSize, 7 + typeSize);
      const grouped = groupBlocks(format, bytes);
      expect(grouped.byteLength).toBe(3 * BLOCK_GROUP * typeSize);
      expect(grouped.byteLength).toBe(weightBytes(blocks * blockSize, format));
      // Block 13 = group 1, slot 5: each of its fields, byte by byte.
      let plane = 0;
      for (const [at, size] of BLOCK_FIELDS[format]) {
        for (let k = 0; k < size; k++) expect(grouped[BLOCK_GROUP * typeSize + plane + 5 * size + k]).toBe(bytes[13 * typeSize + at + k]);
        plane += BLOCK_GROUP * size;
      }
      // The padding blocks 19..23 are zeros in every plane.
      expect(Array.from(ungroupBlocks(format, grouped, 24).subarray(blocks * typeSize)).every((b) => b === 0)).toBe(true);
      expect(ungroupBlocks(format, grouped, blocks)).toEqual(bytes);
      expect(() => groupBlocks(format, bytes.subarray(1))).toThrow(/whole number/);
    });
  }
});
