/**
 * ggml's tensor types (the encodings of a GGUF file's tensor data) and the dequantization of the
 * ones the studio loads to float32, on the CPU. F16 and BF16 are decoded by float16.ts. The CPU
 * reference for the other block formats (Q4_0 … Q6_K) is ggml-quants.ts; loading does not use it.
 */
import { ModelFileError } from './errors.js';
import { decodeF32, decodeHalves } from './float16.js';
import { dequantizeBlocks } from './ggml-quants.js';

/**
 * ggml tensor types gguf-reader.ts knows: id → name, elements per block, bytes per block
 * (ggml.c `type_traits`; ids 4, 5, 31–33 and 36–38 were removed from ggml and are unknown here).
 */
export const GGML_TYPES = {
  0: { name: 'F32', blockSize: 1, typeSize: 4 },
  1: { name: 'F16', blockSize: 1, typeSize: 2 },
  2: { name: 'Q4_0', blockSize: 32, typeSize: 18 },
  3: { name: 'Q4_1', blockSize: 32, typeSize: 20 },
  6: { name: 'Q5_0', blockSize: 32, typeSize: 22 },
  7: { name: 'Q5_1', blockSize: 32, typeSize: 24 },
  8: { name: 'Q8_0', blockSize: 32, typeSize: 34 },
  9: { name: 'Q8_1', blockSize: 32, typeSize: 36 },
  10: { name: 'Q2_K', blockSize: 256, typeSize: 84 },
  11: { name: 'Q3_K', blockSize: 256, typeSize: 110 },
  12: { name: 'Q4_K', blockSize: 256, typeSize: 144 },
  13: { name: 'Q5_K', blockSize: 256, typeSize: 176 },
  14: { name: 'Q6_K', blockSize: 256, typeSize: 210 },
  15: { name: 'Q8_K', blockSize: 256, typeSize: 292 },
  16: { name: 'IQ2_XXS', blockSize: 256, typeSize: 66 },
  17: { name: 'IQ2_XS', blockSize: 256, typeSize: 74 },
  18: { name: 'IQ3_XXS', blockSize: 256, typeSize: 98 },
  19: { name: 'IQ1_S', blockSize: 256, typeSize: 50 },
  20: { name: 'IQ4_NL', blockSize: 32, typeSize: 18 },
  21: { name: 'IQ3_S', blockSize: 256, typeSize: 110 },
  22: { name: 'IQ2_S', blockSize: 256, typeSize: 82 },
  23: { name: 'IQ4_XS', blockSize: 256, typeSize: 136 },
  24: { name: 'I8', blockSize: 1, typeSize: 1 },
  25: { name: 'I16', blockSize: 1, typeSize: 2 },
  26: { name: 'I32', blockSize: 1, typeSize: 4 },
  27: { name: 'I64', blockSize: 1, typeSize: 8 },
  28: { name: 'F64', blockSize: 1, typeSize: 8 },
  29: { name: 'IQ1_M', blockSize: 256, typeSize: 56 },
  30: { name: 'BF16', blockSize: 1, typeSize: 2 },
  34: { name: 'TQ1_0', blockSize: 256, typeSize: 54 },
  35: { name: 'TQ2_0', blockSize: 256, typeSize: 66 },
  39: { name: 'MXFP4', blockSize: 32, typeSize: 17 },
} as const satisfies Record<number, { name: string; blockSize: number; typeSize: number }>;
export type GgmlTypeName = (typeof GGML_TYPES)[keyof typeof GGML_TYPES]['name'];
const GGML_BY_NAME = new Map<string, { id: number; blockSize: number; typeSize: number }>(
  Object.entries(GGML_TYPES).map(([id, t]) => [t.name, { id: Number(id), blockSize: t.blockSize, typeSize: t.typeSize }]),
);

/**
 * The tensor types the studio can load: the float types and the block formats of ggml-quants.ts
 * (kept as they are on the GPU where the kernels read them, else dequantized to float32 on the CPU
 * by `dequantize`).
 */
export const LOADABLE_GGML_TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'] as const;
export type LoadableGgmlType = (typeof LOADABLE_GGML_TYPES)[number];
export const isLoadableType = (t: string): t is LoadableGgmlType => (LOADABLE_GGML_TYPES as readonly string[]).includes(t);

/** Elements per block of a ggml type (1 for plain float and integer types). */
export function blockElements(dtype: GgmlTypeName): number {
  return GGML_BY_NAME.get(dtype)?.blockSize ?? 1;
}

/**
 * Decodes a whole number of blocks of `dtype` to float32: F32, F16, BF16, and the block formats
 * (ggml-quants.ts `dequantizeBlocks`). Works on any block-aligned slice of a tensor, so a loader can
 * stream a tensor in chunks of `blockBytes(dtype)` multiples.
 */
export function dequantize(file: string, tensor: { name: string; dtype: GgmlTypeName }, bytes: Uint8Array): Float32Array {
  const { name, dtype } = tensor;
  const type = GGML_BY_NAME.get(dtype);
  if (!type || !isLoadableType(dtype)) {
    throw new ModelFileError(file, `tensor "${name}": ${dtype} is not supported; use a GGUF in ${LOADABLE_GGML_TYPES.join(', ')}`);
  }
  if (bytes.byteLength % type.typeSize !== 0) {
    throw new ModelFileError(file, `tensor "${name}": ${bytes.byteLength} bytes are not a whole number of ${dtype} blocks (${type.typeSize} bytes)`);
  }
  const count = (bytes.byteLength / type.typeSize) * type.blockSize;
  switch (dtype) {
    case 'F32':
      return decodeF32(bytes);
    case 'F16':
    case 'BF16':
      return decodeHalves(bytes, dtype);
    default:
      return dequantizeBlocks(file, { name, dtype }, bytes, count);
  }
}

/** Bytes per block of a ggml type (a streaming loader reads in multiples of this). */
export function blockBytes(dtype: GgmlTypeName): number {
  return GGML_BY_NAME.get(dtype)?.typeSize ?? 1;
}

/**
 * How a stored tensor becomes the canonical one. A change of shape never moves data (the stored
 * bytes, read row-major, are the canonical tensor's elements in order), so only values change:
 * 'none', or 'log-neg' for `ssm_a`, which holds A = −exp(A_log) and is turned back into
 * A_log = log(−a) by `applyTransform`.
 */
export type GgufTransform = 'none' | 'log-neg';

/**
 * Applies an entry's value transform in place: for 'log-neg' (ssm_a), A_log = log(−a).
 * a = 0 gives A_log = −∞ (so A = −exp(A_log) = 0 again); a > 0 or NaN cannot come from
 * −exp(·) and is an error.
 */
export function applyTransform(file: string, entry: { name: string; ggufName?: string; transform: GgufTransform }, values: Float32Array): Float32Array {
  if (entry.transform === 'none') return values;
  for (let i = 0; i < values.length; i++) {
    const a = values[i] as number;
    if (!(a <= 0)) {
      throw new ModelFileError(file, `tensor "${entry.ggufName ?? entry.name}" holds ${a} at index ${i}; it should hold A = −exp(A_log) ≤ 0`);
    }
    values[i] = Math.log(-a);
  }
  return values;
}
