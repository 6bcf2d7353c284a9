/** Where one tensor's bytes are and how to decode them: the loader needs nothing else. */
import type { GgmlTypeName, GgufTransform } from './ggml.js';
import type { SafetensorsDtype } from './safetensors.js';

export type TensorLocation = {
  /** Canonical (transformers) name. */
  name: string;
  /** Canonical row-major shape. */
  shape: number[];
  /** The file (shard) holding it, and the absolute byte range. */
  file: string;
  offset: number;
  byteLength: number;
} & (
  /** Plain little-endian values: a safetensors tensor, or a PyTorch .bin tensor (a range of its storage's zip entry). */
  | { encoding: 'safetensors' | 'pytorch'; dtype: SafetensorsDtype }
  | { encoding: 'gguf'; dtype: GgmlTypeName; ggufName: string; transform: GgufTransform }
);
