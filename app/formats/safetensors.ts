/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * ({ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { str: str } }),
 * then the tensor data. Offsets are relative to the end of the header.
 *
 * The header is validated fully before use: length within the file and under MAX_HEADER_BYTES;
 * then, in one pass over its text before JSON.parse builds anything, a JSON object starting with
 * `{` (no byte order mark, as the reference implementation demands), no key twice in any object
 * (the reference refuses a duplicate `dtype`; a duplicate tensor name would be ambiguous), nesting
 * at most MAX_HEADER_DEPTH deep and at most MAX_TENSORS entries; then every entry's dtype known,
 * shape non-negative integers, byte size = elements × dtype size, offsets in bounds, contiguous
 * and non-overlapping, covering the data section exactly. Any failure is a ModelFileError naming
 * the file (and the tensor), with the file's values cut short in the message.
 */
import { clip, ModelFileError, preview } from './errors.js';
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

/**
 * Headers larger than this are refused before reading them. A header entry takes ~100–150 bytes,
 * so this holds MAX_TENSORS entries with room for metadata; real headers are well under 10 MB
 * (a Mamba has ~10 tensors a layer; the largest mixture-of-experts files a few thousand per shard).
 */
export const MAX_HEADER_BYTES = 32 * 1024 * 1024;

/** Entries (tensors) in one header, counted before any map is built (real files: under 10,000). */
export const MAX_TENSORS = 100_000;

/** JSON nesting in a header: a valid one nests 3 deep (header → tensor → shape). */
export const MAX_HEADER_DEPTH = 8;

/**
 * One pass over the header text, before JSON.parse: it must start with `{`, nest at most
 * MAX_HEADER_DEPTH deep, repeat no key within an object, and hold at most MAX_TENSORS entries.
 * Syntax errors are left to JSON.parse (the pass only has to stay linear and not throw on them).
 */
function scanHeader(file: string, text: string): void {
  if (text.charCodeAt(0) === 0xfeff) throw new ModelFileError(file, 'header starts with a UTF-8 byte order mark; a safetensors header is plain JSON starting with "{"');
  if (text.length === 0) throw new ModelFileError(file, 'header is not valid JSON (it is empty)');
  if (text[0] !== '{') throw new ModelFileError(file, `header is not a JSON object: it starts with ${preview(text.slice(0, 8))}, not "{"`);
  // Per open object: its keys so far, and whether the next string is a key; arrays hold null.
  const stack: ({ keys: Set<string>; expectKey: boolean } | null)[] = [];
  let entries = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const start = i;
      let escaped = false;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.expectKey) {
        top.expectKey = false;
        let key = text.slice(start + 1, i);
        if (escaped) {
          try {
            key = JSON.parse(text.slice(start, i + 1)) as string;
          } catch {
            continue; // JSON.parse reports it
          }
        }
        if (top.keys.has(key)) {
          const where = stack.length === 1 ? 'the header' : 'an entry of the header';
          throw new ModelFileError(file, `key ${preview(key)} appears twice in ${where} (at character ${start})`);
        }
        top.keys.add(key);
        if (stack.length === 1 && key !== '__metadata__' && ++entries > MAX_TENSORS) {
          throw new ModelFileError(file, `header lists more than ${MAX_TENSORS} tensors, more than any real model file`);
        }
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (stack.length >= MAX_HEADER_DEPTH) throw new ModelFileError(file, `header nests JSON deeper than ${MAX_HEADER_DEPTH} levels (a valid one nests 3)`);
      stack.push(c === 0x7b ? { keys: new Set(), expectKey: true } : null);
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top) top.expectKey = true;
    }
  }
}

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
    throw new ModelFileError(file, `header length ${headerLength} is larger than any real safetensors header (limit ${MAX_HEADER_BYTES} bytes)`);
  }
  const n = Number(headerLength);
  checkRange(source, 8, n, 'header');
  let text: string;
  try {
    // ignoreBOM: keep a byte order mark, so that scanHeader can refuse it.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(await source.read(8, n));
  } catch {
    throw new ModelFileError(file, 'header is not valid UTF-8');
  }
  scanHeader(file, text);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelFileError(file, `header is not valid JSON (${clip(error instanceof Error ? error.message : String(error), 200)})`);
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
        if (typeof value !== 'string') throw new ModelFileError(file, `__metadata__.${clip(k)} is not a string`);
        metadata[k] = value;
      }
      continue;
    }
    const bad = (problem: string) => new ModelFileError(file, `tensor "${clip(name, 200)}": ${problem}`);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('entry is not an object');
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDtype(entry.dtype)) throw bad(`unknown dtype ${preview(entry.dtype)}`);
    if (!Array.isArray(entry.shape) || !entry.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw bad(`shape ${preview(entry.shape)} is not a list of non-negative integers`);
    }
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) ||
      (offsets[0] as number) > (offsets[1] as number)
    ) {
      throw bad(`data_offsets ${preview(offsets)} is not [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataSize) {
      throw bad(`data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes): the file is truncated`);
    }
    const shape = entry.shape as number[];
    const elements = shape.reduce((a, b) => a * b, 1);
    const expected = elements * DTYPE_BYTES[entry.dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      const dims = `${shape.slice(0, 16).join(', ')}${shape.length > 16 ? ', …' : ''}`;
      throw bad(`holds ${end - begin} bytes, but shape [${dims}] of ${entry.dtype} needs ${expected}`);
    }
    tensors.set(name, { name, dtype: entry.dtype, shape, offset: dataOffset + begin, byteLength: end - begin });
    spans.push({ name, begin, end });
  }

  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const span of spans) {
    if (span.begin < cursor) {
      throw new ModelFileError(file, `tensor "${clip(span.name, 200)}" overlaps the tensor before it (bytes ${span.begin}–${span.end})`);
    }
    if (span.begin > cursor) {
      throw new ModelFileError(file, `${span.begin - cursor} unused bytes before tensor "${clip(span.name, 200)}": offsets are not contiguous`);
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
