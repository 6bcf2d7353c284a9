/**
 * The GGUF (llama.cpp) container: its header — metadata and tensor infos — read and validated.
 * What a model's metadata and tensors mean is app/arch/gguf.ts's business (with each architecture's spec); the encodings of
 * the tensor data are ggml.ts's.
 *
 * Layout (little-endian): magic "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata
 * count; then the metadata (key: string, u32 value type, value), then per tensor: name
 * (string), u32 n_dims, n_dims × u64 ne (ne[0] varies fastest), u32 ggml type, u64 offset
 * (relative to the data section); then padding to `general.alignment` (default 32), then the
 * data. A string is a u64 byte length and UTF-8 bytes; an array is a u32 item type, a u64 count
 * and the items.
 *
 * Why our own parser rather than `@huggingface/gguf` (0.4.6): its `gguf()` takes a URL and reads
 * it with `fetch` (or, in Node, a local path through its own file reader), in fixed 2 MB chunks
 * into a buffer capped at 50 MB; it cannot read from a ByteSource without faking `fetch`, its
 * types need the DOM's `fetch` (app/ has neither DOM nor Node types), its errors are plain
 * `Error`s that do not name the file, and it accepts version 1. The format is small enough that
 * a careful reader is shorter than the adapter would be. Like safetensors.ts, the header is
 * validated fully before use: magic, version, counts and lengths capped, value types known,
 * tensor types known, dimensions sane, alignment a power of two, every tensor's bytes aligned,
 * inside the file and not overlapping another's. Every failure is a ModelFileError naming the
 * file (and the key or tensor).
 *
 * The header is read through a buffered forward reader that asks the source for chunks (64 KiB,
 * doubling to 8 MiB) as it goes, so only the header (plus at most one chunk) is ever read.
 */
import { ModelFileError, preview } from './errors.js';
import { GGML_TYPES, type GgmlTypeName } from './ggml.js';
import { checkRange, type ByteSource } from './source.js';

// ---------------------------------------------------------------------------------------------
// Types and limits

/** GGUF metadata value types (gguf.h `enum gguf_type`). */
export const GGUF_VALUE_TYPES = ['UINT8', 'INT8', 'UINT16', 'INT16', 'UINT32', 'INT32', 'FLOAT32', 'BOOL', 'STRING', 'ARRAY', 'UINT64', 'INT64', 'FLOAT64'] as const;
export type GgufValueTypeName = (typeof GGUF_VALUE_TYPES)[number];
const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;

/** A metadata value. 64-bit integers are numbers when they are safe integers, else bigints. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** Caps that keep a corrupt or hostile header from allocating or reading without bound. */
export const GGUF_LIMITS = {
  /** Bytes of header (metadata + tensor infos) read at most; real ones are a few MB (vocabularies). */
  maxHeaderBytes: 256 * 1024 * 1024,
  maxTensors: 1_000_000,
  maxKeys: 100_000,
  /** Items in one metadata array (the largest real vocabularies have ~260k tokens). */
  maxArrayLength: 8_000_000,
  maxArrayDepth: 4,
  maxStringBytes: 16 * 1024 * 1024,
  maxKeyBytes: 64 * 1024,
  maxTensorNameBytes: 4096,
  /** ggml's GGML_MAX_DIMS. */
  maxDims: 4,
} as const;

export const GGUF_DEFAULT_ALIGNMENT = 32;

export interface GgufTensorInfo {
  name: string;
  type: GgmlTypeName;
  typeId: number;
  /** Dimensions as GGUF lists them: ne[0] varies fastest. */
  ne: number[];
  /** Row-major shape (ne reversed), as PyTorch and safetensors write it. */
  shape: number[];
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufHeader {
  file: string;
  fileSize: number;
  version: 2 | 3;
  alignment: number;
  /** Where the data section starts (absolute). */
  dataOffset: number;
  metadata: Map<string, GgufValue>;
  /** Tensor infos in file order. */
  tensors: Map<string, GgufTensorInfo>;
}

// ---------------------------------------------------------------------------------------------
// The header

const MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"
const INITIAL_CHUNK = 64 * 1024;
const MAX_CHUNK = 8 * 1024 * 1024;

/** A forward reader over a ByteSource that reads in growing chunks and keeps only what is unread. */
class HeaderReader {
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  /** File offset of buf[0]. */
  private bufStart = 0;
  private chunk = INITIAL_CHUNK;
  /** Absolute file offset of the next unread byte. */
  pos = 0;
  private readonly utf8 = new TextDecoder('utf-8');
  private readonly utf8Fatal = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly source: ByteSource,
    private readonly limit: number,
  ) {}

  /** True when n bytes from pos are buffered (then the sync getters below may be used). */
  has(n: number): boolean {
    return this.pos + n <= this.bufStart + this.buf.byteLength;
  }

  /** Makes n bytes from pos available, or throws naming what was being read. */
  async need(n: number, what: string): Promise<void> {
    if (this.has(n)) return;
    const file = this.source.name;
    const end = this.pos + n;
    if (!Number.isSafeInteger(end) || end > this.source.size) {
      throw new ModelFileError(file, `header is truncated: ${what} needs bytes ${this.pos}–${this.pos + n} but the file has ${this.source.size}`);
    }
    if (end > this.limit) {
      throw new ModelFileError(file, `header is larger than ${this.limit} bytes (at ${what}), more than any real GGUF header`);
    }
    const readFrom = this.bufStart + this.buf.byteLength;
    // Never past the header limit (itself at most the file size), so the cap holds for small files too.
    const want = Math.min(Math.max(end - readFrom, this.chunk), this.limit - readFrom);
    this.chunk = Math.min(this.chunk * 2, MAX_CHUNK);
    checkRange(this.source, readFrom, want, 'header');
    const fresh = await this.source.read(readFrom, want);
    if (fresh.byteLength !== want) throw new ModelFileError(file, `reading the header returned ${fresh.byteLength} of ${want} bytes`);
    const tail = this.buf.subarray(this.pos - this.bufStart);
    const next = new Uint8Array(tail.byteLength + want);
    next.set(tail, 0);
    next.set(fresh, tail.byteLength);
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.bufStart = this.pos;
  }

  private at(n: number): number {
    const i = this.pos - this.bufStart;
    this.pos += n;
    return i;
  }
  u8(): number { return this.view.getUint8(this.at(1)); }
  i8(): number { return this.view.getInt8(this.at(1)); }
  u16(): number { return this.view.getUint16(this.at(2), true); }
  i16(): number { return this.view.getInt16(this.at(2), true); }
  u32(): number { return this.view.getUint32(this.at(4), true); }
  i32(): number { return this.view.getInt32(this.at(4), true); }
  f32(): number { return this.view.getFloat32(this.at(4), true); }
  f64(): number { return this.view.getFloat64(this.at(8), true); }
  u64(): bigint { return this.view.getBigUint64(this.at(8), true); }
  i64(): bigint { return this.view.getBigInt64(this.at(8), true); }
  bytes(n: number): Uint8Array {
    const i = this.at(n);
    return this.buf.subarray(i, i + n);
  }
  text(n: number, fatal: boolean): string {
    return (fatal ? this.utf8Fatal : this.utf8).decode(this.bytes(n));
  }
}

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');

/** A float32 as the shortest decimal that rounds back to it (1e-5 rather than 9.999999747e-6). */
function shortestF32(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

const int64 = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

/** Reads the header (metadata and tensor infos) of a GGUF file, validating all of it. */
export async function readGgufHeader(source: ByteSource, limits: Partial<typeof GGUF_LIMITS> = {}): Promise<GgufHeader> {
  const L = { ...GGUF_LIMITS, ...limits };
  const file = source.name;
  const r = new HeaderReader(source, Math.min(L.maxHeaderBytes, source.size));
  const fail = (problem: string) => new ModelFileError(file, problem);

  if (source.size < 4) throw fail(`not a GGUF file (only ${source.size} bytes)`);
  await r.need(4, 'magic');
  const magic = r.bytes(4);
  if (!MAGIC.every((b, i) => magic[i] === b)) {
    const printable = [...magic].every((b) => b >= 0x20 && b < 0x7f);
    throw fail(`not a GGUF file (magic ${printable ? `"${String.fromCharCode(...magic)}"` : hex(magic)}, expected "GGUF")`);
  }
  await r.need(4, 'version');
  const version = r.u32();
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24);
    if (swapped === 2 || swapped === 3) throw fail(`is a big-endian GGUF file (version ${swapped}); only little-endian GGUF files are supported`);
    if (version === 1) throw fail('GGUF version 1 is not supported (it predates llama.cpp\'s current format; convert the model again)');
    throw fail(`unsupported GGUF version ${version} (this reader knows versions 2 and 3)`);
  }
  await r.need(16, 'tensor and metadata counts');
  const tensorCount = r.u64();
  const kvCount = r.u64();
  if (tensorCount > BigInt(L.maxTensors)) throw fail(`tensor count ${tensorCount} is larger than any real model's (limit ${L.maxTensors}): the header is corrupt`);
  if (kvCount > BigInt(L.maxKeys)) throw fail(`metadata count ${kvCount} is larger than any real file's (limit ${L.maxKeys}): the header is corrupt`);

  const readString = async (what: string, max: number, fatal: boolean): Promise<string> => {
    if (!r.has(8)) await r.need(8, what);
    const n = r.u64();
    if (n > BigInt(max)) throw fail(`${what}: string length ${n} is larger than the limit of ${max} bytes: the header is corrupt`);
    const len = Number(n);
    if (!r.has(len)) await r.need(len, what);
    try {
      return r.text(len, fatal);
    } catch {
      throw fail(`${what} is not valid UTF-8`);
    }
  };

  const SIZES: Record<number, number> = { [T.U8]: 1, [T.I8]: 1, [T.U16]: 2, [T.I16]: 2, [T.U32]: 4, [T.I32]: 4, [T.F32]: 4, [T.BOOL]: 1, [T.U64]: 8, [T.I64]: 8, [T.F64]: 8 };
  const readScalar = (type: number): GgufValue => {
    switch (type) {
      case T.U8: return r.u8();
      case T.I8: return r.i8();
      case T.U16: return r.u16();
      case T.I16: return r.i16();
      case T.U32: return r.u32();
      case T.I32: return r.i32();
      case T.F32: return shortestF32(r.f32());
      case T.BOOL: return r.u8() !== 0;
      case T.U64: return int64(r.u64());
      case T.I64: return int64(r.i64());
      default: return r.f64();
    }
  };
  const readValue = async (type: number, what: string, depth: number): Promise<GgufValue> => {
    const size = SIZES[type];
    if (size !== undefined) {
      if (!r.has(size)) await r.need(size, what);
      return readScalar(type);
    }
    if (type === T.STRING) return readString(what, L.maxStringBytes, false);
    if (type !== T.ARRAY) throw fail(`${what}: unknown value type ${type} (GGUF knows 0–12)`);
    if (depth >= L.maxArrayDepth) throw fail(`${what}: arrays nested deeper than ${L.maxArrayDepth}`);
    await r.need(12, what);
    const itemType = r.u32();
    const count = r.u64();
    if (itemType > T.F64) throw fail(`${what}: unknown array item type ${itemType} (GGUF knows 0–12)`);
    if (count > BigInt(L.maxArrayLength)) throw fail(`${what}: array length ${count} is larger than the limit of ${L.maxArrayLength}: the header is corrupt`);
    const n = Number(count);
    const itemSize = SIZES[itemType];
    const items: GgufValue[] = [];
    if (itemSize !== undefined) {
      await r.need(n * itemSize, what); // all at once: bounded by the file and the header limit
      for (let i = 0; i < n; i++) items.push(readScalar(itemType));
    } else if (itemType === T.STRING) {
      // Vocabularies: hundreds of thousands of strings, so no promise per item unless a read is due.
      for (let i = 0; i < n; i++) {
        if (!r.has(8)) await r.need(8, what);
        const len = r.u64();
        if (len > BigInt(L.maxStringBytes)) throw fail(`${what}: string length ${len} is larger than the limit of ${L.maxStringBytes} bytes: the header is corrupt`);
        if (!r.has(Number(len))) await r.need(Number(len), what);
        items.push(r.text(Number(len), false));
      }
    } else {
      for (let i = 0; i < n; i++) items.push(await readValue(itemType, what, depth + 1));
    }
    return items;
  };

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < Number(kvCount); i++) {
    const key = await readString(`metadata key ${i}`, L.maxKeyBytes, true);
    if (metadata.has(key)) throw fail(`metadata key "${key}" appears twice`);
    await r.need(4, `metadata "${key}"`);
    const type = r.u32();
    metadata.set(key, await readValue(type, `metadata "${key}"`, 0));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const align = metadata.get('general.alignment');
  if (align !== undefined) {
    if (typeof align !== 'number' || !Number.isSafeInteger(align) || align < 1 || (align & (align - 1)) !== 0 || align > 2 ** 30) {
      throw fail(`general.alignment ${preview(align)} is not a power of two`);
    }
    alignment = align;
  }

  const tensors = new Map<string, GgufTensorInfo>();
  const relative: { name: string; begin: number; end: number }[] = [];
  for (let i = 0; i < Number(tensorCount); i++) {
    const name = await readString(`tensor info ${i} name`, L.maxTensorNameBytes, true);
    const bad = (problem: string) => fail(`tensor "${name}": ${problem}`);
    if (tensors.has(name)) throw bad('appears twice');
    await r.need(4, `tensor "${name}"`);
    const nDims = r.u32();
    if (nDims > L.maxDims) throw bad(`${nDims} dimensions (ggml allows at most ${L.maxDims})`);
    await r.need(8 * nDims + 12, `tensor "${name}"`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = r.u64();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`dimension ${v} is absurd: the header is corrupt`);
      ne.push(Number(v));
    }
    const typeId = r.u32();
    const offset = r.u64();
    const type = (GGML_TYPES as Record<number, { name: GgmlTypeName; blockSize: number; typeSize: number } | undefined>)[typeId];
    if (!type) throw bad(`unknown ggml tensor type ${typeId}`);
    const elements = ne.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(elements)) throw bad(`shape [${ne.join(', ')}] has an absurd number of elements: the header is corrupt`);
    if ((ne[0] ?? 1) % type.blockSize !== 0) throw bad(`first dimension ${ne[0]} is not a multiple of ${type.name}'s block size ${type.blockSize}`);
    const byteLength = (elements / type.blockSize) * type.typeSize;
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`offset ${offset} is absurd: the header is corrupt`);
    const rel = Number(offset);
    if (rel % alignment !== 0) throw bad(`offset ${rel} is not a multiple of the alignment ${alignment}`);
    tensors.set(name, { name, type: type.name, typeId, ne, shape: [...ne].reverse(), offset: rel, byteLength });
    relative.push({ name, begin: rel, end: rel + byteLength });
  }

  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  const dataSize = source.size - dataOffset;
  relative.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  for (const span of relative) {
    if (span.end > dataSize) {
      throw fail(`tensor "${span.name}": bytes ${dataOffset + span.begin}–${dataOffset + span.end} lie past the end of the file (${source.size} bytes): the file is truncated`);
    }
    if (span.begin < cursor) throw fail(`tensor "${span.name}" overlaps tensor "${previous}"`);
    if (span.end > span.begin) {
      cursor = span.end;
      previous = span.name;
    }
  }
  for (const t of tensors.values()) t.offset += dataOffset;
  return { file, fileSize: source.size, version, alignment, dataOffset, metadata, tensors };
}
