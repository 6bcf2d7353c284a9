/**
 * CPU reference dequantization of ggml's block formats (issue 17): the eight formats GGUF files
 * of Mamba models use, written from the block layouts of ggml's `ggml-common.h` and the order of
 * elements in `ggml-quants.c`'s `dequantize_row_*`. This is the reference the GPU shaders are
 * checked against; the loader does not call it (`ggml.ts` `LOADABLE_GGML_TYPES` still decides what
 * loads).
 *
 * All multi-byte fields are little-endian; `h` below is an IEEE half (f16). Blocks of 32 elements:
 *
 *   Q8_0 (34 B)  h d, i8 qs[32]                     x[j] = d·qs[j]
 *   Q4_0 (18 B)  h d, u8 qs[16]                     x[j] = d·(lo(qs[j]) − 8), x[j+16] = d·(hi(qs[j]) − 8)
 *   Q4_1 (20 B)  h d, h m, u8 qs[16]                x[j] = d·lo(qs[j]) + m, x[j+16] = d·hi(qs[j]) + m
 *   Q5_0 (22 B)  h d, u32 qh, u8 qs[16]             5-bit q: bit 4 of element i is bit i of qh;
 *                                                   x = d·(q − 16)
 *   Q5_1 (24 B)  h d, h m, u32 qh, u8 qs[16]        as Q5_0, x = d·q + m
 *
 * Super-blocks of 256 elements (lo/hi = low/high nibble):
 *
 *   Q4_K (144 B) h d, h dmin, u8 scales[12], u8 qs[128]
 *     8 sub-blocks of 32, each with a 6-bit scale sc and 6-bit min m (`scaleMin` below);
 *     qs[32g + l] holds element l of sub-block 2g (lo) and of sub-block 2g+1 (hi), g = 0..3;
 *     x = d·sc·q − dmin·m.
 *   Q5_K (176 B) h d, h dmin, u8 scales[12], u8 qh[32], u8 qs[128]
 *     as Q4_K with a fifth bit: element l of sub-block s has bit s of qh[l] as its bit 4.
 *   Q6_K (210 B) u8 ql[128], u8 qh[64], i8 scales[16], h d
 *     16 sub-blocks of 16 (element e uses scales[e >> 4]); in each half n of 128 elements, element
 *     128n + 32k + l (k = 0..3, l = 0..31) has its low 4 bits in ql[64n + l] (k = 0: lo, k = 2: hi)
 *     or ql[64n + 32 + l] (k = 1: lo, k = 3: hi), and its high 2 bits in bits 2k..2k+1 of
 *     qh[32n + l]; x = d·scale·(q − 32).
 *
 * The arithmetic is done in float64 and each element rounded once to float32, so a value can
 * differ from ggml's own float32 arithmetic (d·sc rounded, then ·q − m rounded) in its last bit.
 */
import { ModelFileError } from './errors.js';
import { f16Table } from './float16.js';

/** The block formats this module decodes. */
export const QUANT_TYPES = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'] as const;
export type QuantType = (typeof QUANT_TYPES)[number];
export const isQuantType = (t: string): t is QuantType => (QUANT_TYPES as readonly string[]).includes(t);

/**
 * Elements and bytes per block, the bytes summed from the fields of ggml-common.h's block structs
 * (a test checks them against GGML_TYPES, which has them from ggml.c's type_traits).
 */
export const QUANT_LAYOUT: Record<QuantType, { blockSize: number; typeSize: number }> = {
  Q8_0: { blockSize: 32, typeSize: 2 + 32 },
  Q4_0: { blockSize: 32, typeSize: 2 + 16 },
  Q4_1: { blockSize: 32, typeSize: 2 + 2 + 16 },
  Q5_0: { blockSize: 32, typeSize: 2 + 4 + 16 },
  Q5_1: { blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  Q4_K: { blockSize: 256, typeSize: 2 + 2 + 12 + 128 },
  Q5_K: { blockSize: 256, typeSize: 2 + 2 + 12 + 32 + 128 },
  Q6_K: { blockSize: 256, typeSize: 128 + 64 + 16 + 2 },
};

/**
 * The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block, from its 12 scale bytes
 * at `at`: sub-blocks 0–3 keep theirs in the low 6 bits of bytes j (scale) and j+4 (min); sub-blocks
 * 4–7 keep their low 4 bits in byte j+4 (scale: low nibble, min: high nibble) and their top 2 bits
 * in the top 2 bits of bytes j−4 (scale) and j (min).
 */
export function scaleMin(bytes: Uint8Array, at: number, j: number): { scale: number; min: number } {
  const b = (i: number) => bytes[at + i] as number;
  if (j < 4) return { scale: b(j) & 63, min: b(j + 4) & 63 };
  return { scale: (b(j + 4) & 15) | ((b(j - 4) >> 6) << 4), min: (b(j + 4) >> 4) | ((b(j) >> 6) << 4) };
}

/**
 * Decodes whole blocks of a ggml block format to float32. `bytes` may be any slice (any byte
 * offset); its length must be a whole number of blocks, and, when `count` (the tensor's element
 * count) is given, exactly the blocks of `count` elements. Problems are ModelFileErrors naming
 * `file` and the tensor. `out`, when given, receives the values from index 0 and is returned.
 */
export function dequantizeBlocks(
  file: string,
  tensor: { name: string; dtype: string },
  bytes: Uint8Array,
  count?: number,
  out?: Float32Array,
): Float32Array {
  const { name, dtype } = tensor;
  if (!isQuantType(dtype)) {
    throw new ModelFileError(file, `tensor "${name}": ${dtype} is not a block format this decoder knows (${QUANT_TYPES.join(', ')})`);
  }
  const { blockSize, typeSize } = QUANT_LAYOUT[dtype];
  if (bytes.byteLength % typeSize !== 0) {
    throw new ModelFileError(file, `tensor "${name}": ${bytes.byteLength} bytes are not a whole number of ${dtype} blocks (${typeSize} bytes)`);
  }
  const blocks = bytes.byteLength / typeSize;
  if (count !== undefined) {
    if (!Number.isSafeInteger(count) || count < 0 || count % blockSize !== 0) {
      throw new ModelFileError(file, `tensor "${name}": ${count} elements are not a whole number of ${dtype} blocks (${blockSize} elements)`);
    }
    if (count / blockSize !== blocks) {
      throw new ModelFileError(file, `tensor "${name}": ${count} elements of ${dtype} need ${(count / blockSize) * typeSize} bytes, the file holds ${bytes.byteLength}`);
    }
  }
  const n = blocks * blockSize;
  if (out && out.length < n) throw new RangeError(`${n} values do not fit in an output of ${out.length}`);
  const y = out ?? new Float32Array(n);
  const half = f16Table();
  const h = (i: number) => half[(bytes[i] as number) | ((bytes[i + 1] as number) << 8)] as number;
  const u = (i: number) => bytes[i] as number;
  const i8 = (i: number) => ((bytes[i] as number) << 24) >> 24;
  for (let b = 0; b < blocks; b++) {
    const at = b * typeSize;
    const o = b * blockSize;
    switch (dtype) {
      case 'Q8_0': {
        const d = h(at);
        for (let j = 0; j < 32; j++) y[o + j] = d * i8(at + 2 + j);
        break;
      }
      case 'Q4_0':
      case 'Q4_1': {
        const d = h(at);
        const withMin = dtype === 'Q4_1';
        const m = withMin ? h(at + 2) : 0;
        const offset = withMin ? 0 : -8;
        const qs = at + (withMin ? 4 : 2);
        for (let j = 0; j < 16; j++) {
          const q = u(qs + j);
          y[o + j] = d * ((q & 15) + offset) + m;
          y[o + j + 16] = d * ((q >> 4) + offset) + m;
        }
        break;
      }
      case 'Q5_0':
      case 'Q5_1': {
        const d = h(at);
        const withMin = dtype === 'Q5_1';
        const m = withMin ? h(at + 2) : 0;
        const offset = withMin ? 0 : -16;
        const qhAt = at + (withMin ? 4 : 2);
        const qh = (u(qhAt) | (u(qhAt + 1) << 8) | (u(qhAt + 2) << 16) | (u(qhAt + 3) << 24)) >>> 0;
        const qs = qhAt + 4;
        for (let j = 0; j < 16; j++) {
          const q = u(qs + j);
          const lo = (q & 15) | (((qh >>> j) & 1) << 4);
          const hi = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
          y[o + j] = d * (lo + offset) + m;
          y[o + j + 16] = d * (hi + offset) + m;
        }
        break;
      }
      case 'Q4_K':
      case 'Q5_K': {
        const d = h(at);
        const dmin = h(at + 2);
        const scales = at + 4;
        const five = dtype === 'Q5_K';
        const qh = at + 16;
        const qs = at + (five ? 48 : 16);
        for (let s = 0; s < 8; s++) {
          const { scale, min } = scaleMin(bytes, scales, s);
          const step = d * scale;
          const shift = dmin * min;
          const byteAt = qs + 32 * (s >> 1);
          const nibbleShift = (s & 1) * 4;
          for (let l = 0; l < 32; l++) {
            let q = (u(byteAt + l) >> nibbleShift) & 15;
            if (five) q |= ((u(qh + l) >> s) & 1) << 4;
            y[o + 32 * s + l] = step * q - shift;
          }
        }
        break;
      }
      case 'Q6_K': {
        const ql = at;
        const qh = at + 128;
        const sc = at + 192;
        const d = h(at + 208);
        for (let e = 0; e < 256; e++) {
          const n = e >> 7;
          const k = (e >> 5) & 3;
          const l = e & 31;
          const low = (u(ql + 64 * n + 32 * (k & 1) + l) >> (4 * (k >> 1))) & 15;
          const high = (u(qh + 32 * n + l) >> (2 * k)) & 3;
          y[o + e] = d * i8(sc + (e >> 4)) * ((low | (high << 4)) - 32);
        }
        break;
      }
    }
  }
  return y;
}

