/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * ({ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { str: str } }),
 * then the tensor data. Offsets are relative to the end of the header.
 *
 * The header is validated fully before use: length within the file, JSON object, every entry's
 * dtype known, shape non-negative integers, byte size = elements × dtype size, offsets in bounds,
 * contiguous and non-overlapping, covering the data section exactly. Any failure is a
 * ModelFileError naming the file (and the tensor).
 */
import { ModelFileError } from './errors.js';
import { decodeFloats, isFloatKind } from './float16.js';
import { checkRange, type ByteSource } from './source.js';

export const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  /** Where tensor data starts (8 + header length). */
  dataOffset: number;
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

/** Headers larger than this are refused before reading them (real ones are well under 10 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const isDtype = (x: unknown): x is SafetensorsDtype => typeof x === 'string' && Object.hasOwn(DTYPE_BYTES, x);

export async function readSafetensorsHeader(source: ByteSource): Promise<SafetensorsHeader> {
  const file = source.name;
  if (source.size < 8) throw new ModelFileError(file, `too short for a safetensors file (${source.size} bytes)`);
  const lengthBytes = await source.read(0, 8);
  const view = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(source.size - 8)) {
    throw new ModelFileError(
      file,
      `header length ${headerLength} runs past the end of the file (${source.size} bytes): the file is truncated or not safetensors`,
    );
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new ModelFileError(file, `header length ${headerLength} is larger than any real safetensors header`);
  }
  const n = Number(headerLength);
  checkRange(source, 8, n, 'header');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await source.read(8, n)));
  } catch (error) {
    throw new ModelFileError(file, `header is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelFileError(file, 'header is not a JSON object');
  }
  const dataOffset = 8 + n;
  const dataSize = source.size - dataOffset;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  const spans: { name: string; begin: number; end: number }[] = [];

  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        throw new ModelFileError(file, '__metadata__ is not an object of strings');
      }
      for (const [k, value] of Object.entries(raw)) {
        if (typeof value !== 'string') throw new ModelFileError(file, `__metadata__.${k} is not a string`);
        metadata[k] = value;
      }
      continue;
    }
    const bad = (problem: string) => new ModelFileError(file, `tensor "${name}": ${problem}`);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('entry is not an object');
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDtype(entry.dtype)) throw bad(`unknown dtype ${JSON.stringify(entry.dtype)}`);
    if (!Array.isArray(entry.shape) || !entry.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw bad(`shape ${JSON.stringify(entry.shape)} is not a list of non-negative integers`);
    }
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) ||
      (offsets[0] as number) > (offsets[1] as number)
    ) {
      throw bad(`data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataSize) {
      throw bad(`data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes): the file is truncated`);
    }
    const shape = entry.shape as number[];
    const elements = shape.reduce((a, b) => a * b, 1);
    const expected = elements * DTYPE_BYTES[entry.dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      throw bad(`holds ${end - begin} bytes, but shape [${shape.join(', ')}] of ${entry.dtype} needs ${expected}`);
    }
    tensors.set(name, { name, dtype: entry.dtype, shape, offset: dataOffset + begin, byteLength: end - begin });
    spans.push({ name, begin, end });
  }

  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const span of spans) {
    if (span.begin < cursor) {
      throw new ModelFileError(file, `tensor "${span.name}" overlaps the tensor before it (bytes ${span.begin}–${span.end})`);
    }
    if (span.begin > cursor) {
      throw new ModelFileError(file, `${span.begin - cursor} unused bytes before tensor "${span.name}": offsets are not contiguous`);
    }
    cursor = span.end;
  }
  if (cursor !== dataSize) {
    throw new ModelFileError(file, `the tensors cover ${cursor} bytes of data but the file holds ${dataSize} after the header`);
  }
  return { file, fileSize: source.size, dataOffset, metadata, tensors };
}

/** Reads one tensor's bytes. */
export async function readTensorBytes(source: ByteSource, tensor: TensorInfo): Promise<Uint8Array> {
  checkRange(source, tensor.offset, tensor.byteLength, `tensor "${tensor.name}"`);
  return source.read(tensor.offset, tensor.byteLength);
}

/** Decodes a tensor to float32 (F32, F16, BF16, F64) — for small tensors and tests. */
export function toFloat32(tensor: TensorInfo, bytes: Uint8Array, file = ''): Float32Array {
  if (!isFloatKind(tensor.dtype)) throw new ModelFileError(file, `tensor "${tensor.name}": dtype ${tensor.dtype} is not a float type`);
  return decodeFloats(bytes.subarray(0, tensor.byteLength), tensor.dtype);
}

/** Decodes an integer tensor (I64, I32, U8, …) to numbers. */
export function toIntegers(tensor: TensorInfo, bytes: Uint8Array, file = ''): number[] {
  const aligned = bytes.slice();
  const count = tensor.byteLength / DTYPE_BYTES[tensor.dtype];
  switch (tensor.dtype) {
    case 'I64':
      return [...new BigInt64Array(aligned.buffer, 0, count)].map(Number);
    case 'I32':
      return [...new Int32Array(aligned.buffer, 0, count)];
    case 'U8':
      return [...aligned];
    default:
      throw new ModelFileError(file, `tensor "${tensor.name}": dtype ${tensor.dtype} is not an integer type this reader knows`);
  }
}
