/**
 * Decoding a tensor's stored bytes to float32, whatever the file format: safetensors F32, F16,
 * BF16 (and F64), GGUF F32/F16/BF16/Q8_0 with its value transforms. Works on any whole number
 * of blocks, so the loader can stream a tensor in chunks.
 */
import { ModelFileError } from './errors.js';
import { applyTransform, blockBytes, dequantize, GGML_TYPES } from './gguf.js';
import type { TensorLocation } from './tensor-location.js';
import { DTYPE_BYTES, f16Table } from './safetensors.js';

export interface TensorDecoder {
  /** Bytes and elements per indivisible block (1 element for plain float types). */
  blockBytes: number;
  blockElements: number;
  /** True when the stored bytes already are little-endian fp32 with no transform (upload as is). */
  isF32: boolean;
  /** Decodes whole blocks to float32. */
  decode(bytes: Uint8Array): Float32Array;
}

export function tensorDecoder(t: TensorLocation): TensorDecoder {
  if (t.encoding === 'gguf') {
    const type = Object.values(GGML_TYPES).find((g) => g.name === t.dtype);
    const { file, ggufName, transform, dtype } = t;
    return {
      blockBytes: blockBytes(dtype),
      blockElements: type?.blockSize ?? 1,
      isF32: dtype === 'F32' && transform === 'none',
      decode: (bytes) => applyTransform(file, { name: t.name, ggufName, transform }, dequantize(file, { name: ggufName, dtype }, bytes)),
    };
  }
  const size = DTYPE_BYTES[t.dtype];
  const decode = (bytes: Uint8Array): Float32Array => {
    const count = bytes.byteLength / size;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(count);
    switch (t.dtype) {
      case 'F32':
        for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
        return out;
      case 'F64':
        for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
        return out;
      case 'F16': {
        const table = f16Table();
        for (let i = 0; i < count; i++) out[i] = table[view.getUint16(i * 2, true)] as number;
        return out;
      }
      case 'BF16': {
        const bits = new Uint32Array(out.buffer);
        for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
        return out;
      }
      default:
        throw new ModelFileError(t.file, `tensor "${t.name}": dtype ${t.dtype} is not a float type`);
    }
  };
  return { blockBytes: size, blockElements: 1, isF32: t.dtype === 'F32', decode };
}
