/**
 * How a weight matrix is stored on the GPU (issue 17). Arithmetic is fp32 whatever the storage;
 * the kernels that read weights (matmul, norm-matvec, embedding; the scan's dt_proj for the float
 * formats) decode them as they load them, through shaders/weights.wgsl.
 *
 *   f32         fp32 bits, one value per u32
 *   f16, bf16   two 16-bit values per u32 (element 2k in the low half): app/kernels/f16.ts
 *   q8_0 … q6_k ggml's block formats, the file's bytes (little-endian; app/formats/ggml-quants.ts
 *               has the layouts) in GROUPS of BLOCK_GROUP = 8 blocks: within a group each field of
 *               the block (BLOCK_FIELDS: Q8_0's d, then its 32 codes) is a plane holding the 8
 *               blocks' copies of it back to back. A group takes exactly the bytes of its 8 blocks
 *               (8 · type size, a multiple of 16), and every field that a kernel reads 16 bytes at a
 *               time starts 16-byte aligned, so the matrix-vector kernels load codes with vec4<u32>
 *               loads; in ggml's own order most blocks start at an odd word or half-word (Q8_0's
 *               34-byte blocks). A tensor's last group is padded with zero blocks.
 *               Q4_K and Q5_K keep ggml's order (one field: their 144- and 176-byte blocks are
 *               already 16-byte units with aligned fields).
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

/** Blocks per group of the GPU layout of the block formats (see the header). */
export const BLOCK_GROUP = 8;

/**
 * The fields of each block format, in ggml's block (byte offset, bytes), in the order of their
 * planes in a group. Each plane is BLOCK_GROUP · bytes long.
 */
export const BLOCK_FIELDS: Record<BlockFormat, readonly (readonly [number, number])[]> = {
  q8_0: [[0, 2], [2, 32]], // d | qs
  q4_0: [[0, 2], [2, 16]], // d | qs
  q4_1: [[0, 4], [4, 16]], // d m | qs
  q5_0: [[0, 2], [2, 4], [6, 16]], // d | qh | qs
  q5_1: [[0, 4], [4, 4], [8, 16]], // d m | qh | qs
  q4_k: [[0, 144]], // ggml's order
  q5_k: [[0, 176]],
  q6_k: [[0, 128], [128, 64], [192, 16], [208, 2]], // ql | qh | scales | d
};

/** Bytes of a GPU buffer holding `elements` weights in `format` (padded to 16 bytes but for f32; whole groups for the block formats). */
export function weightBytes(elements: number, format: WeightFormat): number {
  if (format === 'f32') return Math.max(4, elements * 4);
  if (isBlockFormat(format)) {
    const { blockSize, typeSize } = formatLayout(format);
    weightDataBytes(elements, format); // throws for a partial block
    return Math.max(16, Math.ceil(elements / blockSize / BLOCK_GROUP) * BLOCK_GROUP * typeSize);
  }
  return Math.max(16, Math.ceil(weightDataBytes(elements, format) / 16) * 16);
}

/** Words (u32) a weight of `elements` values occupies in `format` on the GPU: what a kernel binds. */
export function weightWords(elements: number, format: WeightFormat): number {
  if (isBlockFormat(format)) return weightBytes(elements, format) / 4;
  return Math.ceil(weightDataBytes(elements, format) / 4);
}

/**
 * Blocks in ggml's order (`bytes`: whole blocks of `format`, the first one a multiple of
 * BLOCK_GROUP into the tensor) → the GPU layout: whole groups, the last padded with zero blocks.
 */
export function groupBlocks(format: BlockFormat, bytes: Uint8Array): Uint8Array {
  const { typeSize } = formatLayout(format);
  if (bytes.byteLength % typeSize !== 0) throw new RangeError(`${bytes.byteLength} bytes are not a whole number of ${format} blocks (${typeSize} bytes)`);
  const blocks = bytes.byteLength / typeSize;
  const groupBytes = BLOCK_GROUP * typeSize;
  const out = new Uint8Array(Math.ceil(blocks / BLOCK_GROUP) * groupBytes);
  const fields = BLOCK_FIELDS[format];
  if (fields.length === 1) {
    out.set(bytes);
    return out;
  }
  for (let b = 0; b < blocks; b++) {
    const group = Math.floor(b / BLOCK_GROUP) * groupBytes;
    const i = b % BLOCK_GROUP;
    let plane = 0;
    for (const [at, size] of fields) {
      const from = b * typeSize + at;
      const to = group + plane + i * size;
      // A byte loop for the small fields (a subarray per 2-byte scale costs more than the copy).
      if (size >= 32) out.set(bytes.subarray(from, from + size), to);
      else for (let k = 0; k < size; k++) out[to + k] = bytes[from + k] as number;
      plane += BLOCK_GROUP * size;
    }
  }
  return out;
}

/** The inverse of groupBlocks: the first `blocks` blocks of a GPU-layout buffer, in ggml's order. */
export function ungroupBlocks(format: BlockFormat, grouped: Uint8Array, blocks: number): Uint8Array {
  const { typeSize } = formatLayout(format);
  const groupBytes = BLOCK_GROUP * typeSize;
  if (grouped.byteLength < Math.ceil(blocks / BLOCK_GROUP) * groupBytes) throw new RangeError(`${grouped.byteLength} bytes hold fewer than ${blocks} ${format} blocks`);
  const out = new Uint8Array(blocks * typeSize);
  for (let b = 0; b < blocks; b++) {
    const group = Math.floor(b / BLOCK_GROUP) * groupBytes;
    const i = b % BLOCK_GROUP;
    let plane = 0;
    for (const [at, size] of BLOCK_FIELDS[format]) {
      out.set(grouped.subarray(group + plane + i * size, group + plane + (i + 1) * size), b * typeSize + at);
      plane += BLOCK_GROUP * size;
    }
  }
  return out;
}

/** Elements a matrix row must be a multiple of for `format` (its block size; 1 for the float formats). */
export const rowQuantum = (format: WeightFormat): number => formatLayout(format).blockSize;

/** 16-bit formats: two values per word. */
export const isHalfFormat = (f: WeightFormat): f is 'f16' | 'bf16' => f === 'f16' || f === 'bf16';

/**
 * A GPU buffer (STORAGE | COPY_DST | COPY_SRC) holding `bytes`, whole blocks of `format` in ggml's
 * order, in the GPU layout (groupBlocks).
 */
export function uploadBlocks(device: GPUDevice, label: string, format: BlockFormat, bytes: Uint8Array): GPUBuffer {
  const grouped = groupBlocks(format, bytes);
  const size = Math.max(16, grouped.byteLength);
  const buffer = device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  if (grouped.byteLength > 0) device.queue.writeBuffer(buffer, 0, grouped);
  return buffer;
}
