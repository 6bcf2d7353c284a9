/**
 * How a weight matrix is stored on the GPU (issue 17). Arithmetic is fp32 whatever the storage;
 * the kernels that read weights (matmul, norm-matvec, embedding; the scan's dt_proj for the float
 * formats) decode them as they load them, through shaders/weights.wgsl.
 *
 *   f32         fp32 bits, one value per u32
 *   f16, bf16   two 16-bit values per u32 (element 2k in the low half): app/kernels/f16.ts
 *   q8_0 … q6_k ggml's block formats, the file's bytes as they are (little-endian, blocks back to
 *               back, no padding between them: app/formats/ggml-quants.ts has the layouts), bound
 *               as u32 words; a block may start at any even byte offset.
 *
 * Every buffer is a whole number of 16-byte units (vec4<u32> loads), at least 16 bytes, except
 * fp32 ones (a multiple of 4, as the fp32 kernels have always had them).
 */
import { QUANT_LAYOUT, type QuantType } from '../formats/ggml-quants.js';

export const BLOCK_FORMATS = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'] as const;
export type BlockFormat = (typeof BLOCK_FORMATS)[number];
export type WeightFormat = 'f32' | 'f16' | 'bf16' | BlockFormat;
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['f32', 'f16', 'bf16', ...BLOCK_FORMATS];

/** W_FORMAT in shaders/weights.wgsl. */
export const WEIGHT_FORMAT_CODE: Record<WeightFormat, number> = {
  f32: 0,
  f16: 1,
  bf16: 2,
  q8_0: 3,
  q4_0: 4,
  q4_1: 5,
  q5_0: 6,
  q5_1: 7,
  q4_k: 8,
  q5_k: 9,
  q6_k: 10,
};

export const isBlockFormat = (f: WeightFormat): f is BlockFormat => (BLOCK_FORMATS as readonly string[]).includes(f);

/** The ggml type name of a block format ('q4_k' → 'Q4_K'). */
export const quantTypeOf = (f: BlockFormat): QuantType => f.toUpperCase() as QuantType;

/** Elements per block and bytes per block (1 element for the float formats). */
export function formatLayout(format: WeightFormat): { blockSize: number; typeSize: number } {
  if (format === 'f32') return { blockSize: 1, typeSize: 4 };
  if (format === 'f16' || format === 'bf16') return { blockSize: 1, typeSize: 2 };
  return QUANT_LAYOUT[quantTypeOf(format)];
}

/** The bytes `elements` values take in `format` (a whole number of blocks: `elements` must be one). */
export function weightDataBytes(elements: number, format: WeightFormat): number {
  const { blockSize, typeSize } = formatLayout(format);
  if (elements % blockSize !== 0) throw new RangeError(`${elements} elements are not a whole number of ${format} blocks (${blockSize})`);
  return (elements / blockSize) * typeSize;
}

/** Bytes of a GPU buffer holding `elements` weights in `format` (padded to 16 bytes but for f32). */
export function weightBytes(elements: number, format: WeightFormat): number {
  if (format === 'f32') return Math.max(4, elements * 4);
  return Math.max(16, Math.ceil(weightDataBytes(elements, format) / 16) * 16);
}

/** Words (u32) a weight of `elements` values occupies in `format`: what a kernel binds. */
export function weightWords(elements: number, format: WeightFormat): number {
  return Math.ceil(weightDataBytes(elements, format) / 4);
}

/** Elements a matrix row must be a multiple of for `format` (its block size; 1 for the float formats). */
export const rowQuantum = (format: WeightFormat): number => formatLayout(format).blockSize;

/** 16-bit formats: two values per word. */
export const isHalfFormat = (f: WeightFormat): f is 'f16' | 'bf16' => f === 'f16' || f === 'bf16';
