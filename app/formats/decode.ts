/**
 * Decoding a tensor's stored bytes to float32, whatever the file format: safetensors F32, F16,
 * BF16 (and F64), GGUF F32/F16/BF16 and ggml block formats with their value transforms. Works on any whole number
 * of blocks, so the loader can stream a tensor in chunks.
 */
import { ModelFileError } from './errors.js';
import { decodeFloats, isFloatKind } from './float16.js';
import { applyTransform, blockBytes, blockElements, dequantize } from './ggml.js';
import { DTYPE_BYTES } from './safetensors.js';
import type { TensorLocation } from './tensor-location.js';

export interface TensorDecoder {
  /** Bytes and elements per indivisible block (1 element for plain float types). */
  blockBytes: number;
  blockElements: number;
  /** True when the stored bytes already are little-endian fp32 with no transform (upload as is). */
  isF32: boolean;
  /** Decodes whole blocks to float32. */
  decode(bytes: Uint8Array): Float32Array;
  /** Whether the stored bytes, as they are, are a GPU weight in `format` (a name of app/kernels/weight-format.ts: 'f16', 'q4_k', …). */
  isRaw(format: string): boolean;
}

export function tensorDecoder(t: TensorLocation): TensorDecoder {
  if (t.encoding === 'gguf') {
    const { file, ggufName, transform, dtype } = t;
    return {
      blockBytes: blockBytes(dtype),
      blockElements: blockElements(dtype),
      isF32: dtype === 'F32' && transform === 'none',
      isRaw: (format) => transform === 'none' && format.toUpperCase() === dtype,
      decode: (bytes) => applyTransform(file, { name: t.name, ggufName, transform }, dequantize(file, { name: ggufName, dtype }, bytes)),
    };
  }
  const size = DTYPE_BYTES[t.dtype];
  const { dtype } = t;
  const decode = (bytes: Uint8Array): Float32Array => {
    if (!isFloatKind(dtype)) throw new ModelFileError(t.file, `tensor "${t.name}": dtype ${dtype} is not a float type`);
    return decodeFloats(bytes, dtype);
  };
  return { blockBytes: size, blockElements: 1, isF32: t.dtype === 'F32', isRaw: (format) => format.toUpperCase() === dtype, decode };
}
