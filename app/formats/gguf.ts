/**
 * GGUF (llama.cpp) files of Mamba ("mamba") and Mamba-2 ("mamba2") models.
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
 *
 * Tensors map to transformers names so that `checkWeights` (weights.ts) checks them like any
 * other checkpoint. The conventions of llama.cpp's converter are undone here (see
 * `ggufTensorTable`); the one that changes values is `ssm_a`, which holds A = −exp(A_log):
 * its entry carries `transform: 'log-neg'`, and `applyTransform` (which decode.ts's
 * `tensorDecoder` applies after `dequantize`) returns A_log = log(−a), so the engine sees A_log
 * from every format alike and computes A = −exp(A_log) itself.
 */
import type { MambaConfig } from './config.js';
import { ModelFileError } from './errors.js';
import { decodeF32, decodeHalves, f16Table } from './float16.js';
import { checkRange, type ByteSource } from './source.js';
import { checkWeights, type WeightCheck } from './weights.js';

// ---------------------------------------------------------------------------------------------
// Types and limits

/** GGUF metadata value types (gguf.h `enum gguf_type`). */
export const GGUF_VALUE_TYPES = ['UINT8', 'INT8', 'UINT16', 'INT16', 'UINT32', 'INT32', 'FLOAT32', 'BOOL', 'STRING', 'ARRAY', 'UINT64', 'INT64', 'FLOAT64'] as const;
export type GgufValueTypeName = (typeof GGUF_VALUE_TYPES)[number];
const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;

/** A metadata value. 64-bit integers are numbers when they are safe integers, else bigints. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/**
 * ggml tensor types this reader knows: id → name, elements per block, bytes per block
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

/** The tensor types the studio can load (dequantized to float32 on the CPU by `dequantize`). */
export const LOADABLE_GGML_TYPES = ['F32', 'F16', 'BF16', 'Q8_0'] as const;
export type LoadableGgmlType = (typeof LOADABLE_GGML_TYPES)[number];
export const isLoadableType = (t: string): t is LoadableGgmlType => (LOADABLE_GGML_TYPES as readonly string[]).includes(t);

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
      throw fail(`general.alignment ${String(align)} is not a power of two`);
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

// ---------------------------------------------------------------------------------------------
// Metadata → canonical config

const OTHER_ARCHITECTURES: [RegExp, string][] = [
  [/^jamba$/, 'Jamba (a hybrid, not supported)'],
  [/^(granitehybrid|falcon-h1|nemotron_h|plamo2|lfm2)/, 'hybrid attention/SSM model (not supported)'],
  [/^rwkv/, 'RWKV'],
  [/^llama|^llama4/, 'Llama'],
  [/^(gpt2|gptj|gptneox|gpt-neox)$/, 'GPT'],
  [/^(mistral|mixtral)/, 'Mistral'],
  [/^(qwen|gemma|phi|falcon|bert|t5|starcoder|bloom|mpt|olmo|command-r|deepseek)/, ''],
];

/**
 * The canonical MambaConfig from GGUF metadata (and, for the vocabulary and the optional tensors,
 * the tensor infos).
 *
 * llama.cpp's converter (conversion/mamba.py, class MambaModel / Mamba2Model, and formerly
 * convert_hf_to_gguf.py) writes `{arch}.embedding_length`, `.block_count`, `.ssm.conv_kernel`,
 * `.ssm.inner_size`, `.ssm.state_size`, `.ssm.time_step_rank`, `.attention.layer_norm_rms_epsilon`
 * and, for mamba2, `.ssm.group_count`. For Mamba-2 it writes `ssm.time_step_rank = d_inner //
 * head_dim`, i.e. the number of heads, and llama.cpp's loader (src/models/mamba2.cpp,
 * `load_arch_tensors`) sizes `ssm_dt.bias` as {dt_rank}, `ssm_a`/`ssm_d` as {1, dt_rank} and
 * `ssm_in` as {n_embd, d_inner + conv_dim + dt_rank}: so nHeads = time_step_rank and
 * headDim = inner_size / nHeads. Mamba-1 files with `mamba.ssm.dt_b_c_rms = true` are
 * Falcon-Mamba (RMS norms on Δ, B, C), which the studio does not run.
 *
 * GGUF stores no chunk size and no Δ limit: chunkSize takes transformers' default 256 and
 * timeStepLimit [0, ∞) (llama.cpp's Mamba-2 graph does not clamp Δ either).
 */
export function ggufToCanonical(file: string, header: GgufHeader): MambaConfig {
  const meta = header.metadata;
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') {
    throw new ModelFileError(file, arch === undefined ? 'GGUF metadata has no general.architecture' : 'general.architecture is not a string');
  }
  if (arch !== 'mamba' && arch !== 'mamba2') {
    const known = OTHER_ARCHITECTURES.find(([re]) => re.test(arch));
    const what = known && known[1] ? `a ${known[1]} model` : 'another kind of model';
    throw new ModelFileError(file, `general.architecture is "${arch}": ${what}, not Mamba or Mamba-2 (the studio opens GGUF architectures "mamba" and "mamba2")`);
  }
  const int = (key: string, min: number, fallback?: number): number => {
    const full = `${arch}.${key}`;
    const v = meta.get(full);
    if (v === undefined) {
      if (fallback === undefined) throw new ModelFileError(file, `missing required metadata key "${full}"`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new ModelFileError(file, `metadata "${full}" must be an integer ≥ ${min}, got ${typeof v === 'bigint' ? v.toString() : JSON.stringify(v)}`);
    }
    return v;
  };
  const dModel = int('embedding_length', 1);
  const nLayer = int('block_count', 1);
  const dConv = int('ssm.conv_kernel', 1);
  const dInner = int('ssm.inner_size', 1);
  const dState = int('ssm.state_size', 1);
  const rank = int('ssm.time_step_rank', 1);
  const epsKey = `${arch}.attention.layer_norm_rms_epsilon`;
  const eps = meta.get(epsKey);
  if (eps === undefined) throw new ModelFileError(file, `missing required metadata key "${epsKey}"`);
  if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) throw new ModelFileError(file, `metadata "${epsKey}" must be a non-negative number, got ${String(eps)}`);

  // Vocabulary: the embedding's rows (what the weights hold), else the tokenizer's size.
  const embd = header.tensors.get('token_embd.weight');
  let vocabSize: number;
  if (embd) {
    if (embd.shape.length !== 2) throw new ModelFileError(file, `tensor "token_embd.weight" has shape [${embd.shape.join(', ')}], expected [vocab, ${dModel}]`);
    vocabSize = embd.shape[0] as number;
  } else {
    const tokens = meta.get('tokenizer.ggml.tokens');
    if (!Array.isArray(tokens)) throw new ModelFileError(file, 'no token_embd.weight tensor and no tokenizer.ggml.tokens: the vocabulary size is unknown');
    vocabSize = tokens.length;
  }
  const has = (suffix: string) => header.tensors.has(`blk.0.${suffix}`);
  const common = {
    source: 'gguf' as const, dModel, nLayer, vocabSize, dInner, dState, dConv, normEps: eps,
    useBias: has('ssm_in.bias'), useConvBias: has('ssm_conv1d.bias'),
    tieEmbeddings: !header.tensors.has('output.weight'),
  };
  if (arch === 'mamba') {
    if (meta.get('mamba.ssm.dt_b_c_rms') === true) {
      throw new ModelFileError(file, 'is a Falcon-Mamba model (mamba.ssm.dt_b_c_rms = true: RMS norms on Δ, B and C), which the studio does not run');
    }
    return {
      ...common, architecture: 'mamba', dtRank: rank, nHeads: 0, headDim: 0, nGroups: 0, chunkSize: 0, timeStepLimit: [0, Infinity], normGroupSize: 0,
    };
  }
  const nHeads = rank;
  const nGroups = int('ssm.group_count', 1);
  if (dInner % nHeads !== 0) throw new ModelFileError(file, `mamba2.ssm.inner_size ${dInner} is not a multiple of the head count (mamba2.ssm.time_step_rank) ${nHeads}`);
  if (nHeads % nGroups !== 0) throw new ModelFileError(file, `the head count (mamba2.ssm.time_step_rank) ${nHeads} is not a multiple of mamba2.ssm.group_count ${nGroups}`);
  return {
    ...common, architecture: 'mamba2', dtRank: 0, nHeads, headDim: dInner / nHeads, nGroups, chunkSize: 256, timeStepLimit: [0, Infinity],
    // llama.cpp's grouped RMS norm (src/models/mamba-base.cpp): per group, as mamba_ssm.
    normGroupSize: dInner / nGroups,
  };
}

// ---------------------------------------------------------------------------------------------
// Tensor names, shapes and transforms

/**
 * How a stored tensor becomes the canonical one. A change of shape never moves data (the stored
 * bytes, read row-major, are the canonical tensor's elements in order), so only values change:
 * 'none', or 'log-neg' for `ssm_a`, which holds A = −exp(A_log) and is turned back into
 * A_log = log(−a) by `applyTransform`.
 */
export type GgufTransform = 'none' | 'log-neg';

export interface GgufTensorEntry {
  /** transformers name (`backbone.layers.0.mixer.in_proj.weight`); the GGUF name when unknown. */
  name: string;
  ggufName: string;
  /** Canonical row-major shape (what `expectedTensors` expects). */
  shape: number[];
  /** Row-major shape as stored in the file (GGUF's ne reversed). */
  storedShape: number[];
  dtype: GgmlTypeName;
  /** Absolute byte offset and length in the file. */
  offset: number;
  byteLength: number;
  transform: GgufTransform;
}

export interface GgufTensorTable {
  /** Keyed by canonical name; pass it to `checkWeights`. */
  tensors: Map<string, GgufTensorEntry>;
  /**
   * Mamba-2: how many channels the gated RMSNorm normalizes over at a time. llama.cpp's graph
   * (src/models/mamba-base.cpp, "grouped RMS norm") reshapes y·silu(z) to [d_inner / n_group,
   * n_group] before the norm, as mamba_ssm's RMSNormGated(group_size = d_inner / ngroups) does,
   * whereas transformers normalizes over all of d_inner. A GGUF Mamba-2 is run as llama.cpp runs
   * it: d_inner / n_group. Mamba-1: 0 (no such norm).
   */
  normGroupSize: number;
  warnings: string[];
}

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Maps GGUF tensor names to transformers names and undoes the converter's conventions
 * (llama.cpp conversion/mamba.py `modify_tensors`; shapes from src/models/mamba.cpp and
 * mamba2.cpp `load_arch_tensors`):
 *
 * | GGUF | transformers | stored (row-major) → canonical |
 * | --- | --- | --- |
 * | token_embd.weight | backbone.embeddings.weight | |
 * | output_norm.weight | backbone.norm_f.weight | |
 * | output.weight | lm_head.weight (absent: tied; the converter drops it when equal to the embedding) | |
 * | blk.N.attn_norm.weight | backbone.layers.N.norm.weight | |
 * | blk.N.ssm_in.weight / .bias | …mixer.in_proj.weight / .bias | |
 * | blk.N.ssm_conv1d.weight | …mixer.conv1d.weight | [C, K] → [C, 1, K] (squeezed by the converter) |
 * | blk.N.ssm_conv1d.bias | …mixer.conv1d.bias | |
 * | blk.N.ssm_x.weight | …mixer.x_proj.weight (mamba) | |
 * | blk.N.ssm_dt.weight | …mixer.dt_proj.weight (mamba) | |
 * | blk.N.ssm_dt.bias | …mixer.dt_proj.bias (mamba), …mixer.dt_bias (mamba2) | mamba2: flattened |
 * | blk.N.ssm_a | …mixer.A_log | values −exp(A_log) → log(−a); mamba2 [H, 1] → [H] |
 * | blk.N.ssm_d | …mixer.D | mamba2 [H, 1] → [H] |
 * | blk.N.ssm_norm.weight | …mixer.norm.weight (mamba2) | [G, d_inner / G] → [d_inner] |
 * | blk.N.ssm_out.weight / .bias | …mixer.out_proj.weight / .bias | |
 *
 * One-dimensional canonical tensors (norms, biases, A_log and D of Mamba-2) are flattened
 * whatever singleton dimensions the file gives them; `checkWeights` then checks every shape
 * against the config. Tensors the model needs must be F32, F16, BF16 or Q8_0; unknown tensors
 * keep their GGUF name (so checkWeights warns about them) and any type.
 */
export function ggufTensorTable(file: string, header: GgufHeader, config: MambaConfig): GgufTensorTable {
  const mamba2 = config.architecture === 'mamba2';
  const tensors = new Map<string, GgufTensorEntry>();
  const warnings: string[] = [];
  const unsupported: GgufTensorInfo[] = [];
  for (const info of header.tensors.values()) {
    const mapped = mapName(info.name, mamba2);
    const entry: GgufTensorEntry = {
      name: mapped?.name ?? info.name,
      ggufName: info.name,
      shape: info.shape,
      storedShape: info.shape,
      dtype: info.type,
      offset: info.offset,
      byteLength: info.byteLength,
      transform: mapped?.role === 'A' ? 'log-neg' : 'none',
    };
    if (mapped) {
      if (!isLoadableType(info.type)) unsupported.push(info);
      if (mapped.role === 'conv' && info.shape.length === 2) entry.shape = [info.shape[0] as number, 1, info.shape[1] as number];
      else if (mapped.role === 'vector' || mapped.role === 'D' || (mapped.role === 'A' && mamba2)) entry.shape = [product(info.shape)];
    }
    if (tensors.has(entry.name)) throw new ModelFileError(file, `tensors "${tensors.get(entry.name)?.ggufName}" and "${info.name}" both map to ${entry.name}`);
    tensors.set(entry.name, entry);
  }
  const tokens = header.metadata.get('tokenizer.ggml.tokens');
  if (Array.isArray(tokens) && tokens.length !== config.vocabSize) {
    warnings.push(`${file}: the embedding has ${config.vocabSize} rows but the GGUF tokenizer lists ${tokens.length} tokens`);
  }
  if (unsupported.length > 0) {
    const first = unsupported[0] as GgufTensorInfo;
    const types = [...new Set(unsupported.map((t) => t.type))];
    throw new ModelFileError(
      file,
      `tensor "${first.name}": ${first.type} is not supported; use an F16/F32/Q8_0 GGUF` +
        (unsupported.length > 1 ? ` (${unsupported.length} tensors are ${types.join(', ')})` : ''),
    );
  }
  return { tensors, normGroupSize: config.normGroupSize, warnings };
}

/** Everything `info` and the loader need from a GGUF file, reading only its header. */
export async function openGguf(source: ByteSource): Promise<{ header: GgufHeader; config: MambaConfig; table: GgufTensorTable; check: WeightCheck }> {
  const header = await readGgufHeader(source);
  const config = ggufToCanonical(source.name, header);
  const table = ggufTensorTable(source.name, header, config);
  const check = checkWeights(source.name, config, table.tensors);
  return { header, config, table, check: { ...check, warnings: [...table.warnings, ...check.warnings] } };
}

type Role = 'plain' | 'vector' | 'conv' | 'A' | 'D';

function mapName(name: string, mamba2: boolean): { name: string; role: Role } | null {
  switch (name) {
    case 'token_embd.weight': return { name: 'backbone.embeddings.weight', role: 'plain' };
    case 'output_norm.weight': return { name: 'backbone.norm_f.weight', role: 'vector' };
    case 'output.weight': return { name: 'lm_head.weight', role: 'plain' };
  }
  const m = /^blk\.(0|[1-9]\d*)\.(.+)$/.exec(name);
  if (!m) return null;
  const p = `backbone.layers.${m[1]}.`;
  const x = `${p}mixer.`;
  switch (m[2]) {
    case 'attn_norm.weight': return { name: `${p}norm.weight`, role: 'vector' };
    case 'ssm_in.weight': return { name: `${x}in_proj.weight`, role: 'plain' };
    case 'ssm_in.bias': return { name: `${x}in_proj.bias`, role: 'vector' };
    case 'ssm_conv1d.weight': return { name: `${x}conv1d.weight`, role: 'conv' };
    case 'ssm_conv1d.bias': return { name: `${x}conv1d.bias`, role: 'vector' };
    case 'ssm_x.weight': return { name: `${x}x_proj.weight`, role: 'plain' };
    case 'ssm_dt.weight': return { name: `${x}dt_proj.weight`, role: 'plain' };
    case 'ssm_dt.bias': return mamba2 ? { name: `${x}dt_bias`, role: 'vector' } : { name: `${x}dt_proj.bias`, role: 'vector' };
    case 'ssm_a': return { name: `${x}A_log`, role: 'A' };
    case 'ssm_d': return { name: `${x}D`, role: 'D' };
    case 'ssm_norm.weight': return { name: `${x}norm.weight`, role: 'vector' };
    case 'ssm_out.weight': return { name: `${x}out_proj.weight`, role: 'plain' };
    case 'ssm_out.bias': return { name: `${x}out_proj.bias`, role: 'vector' };
    default: return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Loading: dequantization and transforms

/**
 * Decodes a whole number of blocks of `dtype` to float32: F32, F16, BF16, and Q8_0 (blocks of 32:
 * an f16 scale d, then 32 int8 q; x = d·q). Works on any block-aligned slice of a tensor, so a
 * loader can stream a tensor in chunks of `blockBytes(dtype)` multiples.
 */
export function dequantize(file: string, tensor: { name: string; dtype: GgmlTypeName }, bytes: Uint8Array): Float32Array {
  const { name, dtype } = tensor;
  const type = GGML_BY_NAME.get(dtype);
  if (!type || !isLoadableType(dtype)) {
    throw new ModelFileError(file, `tensor "${name}": ${dtype} is not supported; use an F16/F32/Q8_0 GGUF`);
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
    case 'Q8_0': {
      const table = f16Table();
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array(count);
      const blocks = count / 32;
      for (let b = 0; b < blocks; b++) {
        const at = b * 34;
        const d = table[view.getUint16(at, true)] as number;
        for (let j = 0; j < 32; j++) out[b * 32 + j] = d * view.getInt8(at + 2 + j);
      }
      return out;
    }
  }
}

/** Bytes per block of a ggml type (a streaming loader reads in multiples of this). */
export function blockBytes(dtype: GgmlTypeName): number {
  return GGML_BY_NAME.get(dtype)?.typeSize ?? 1;
}

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
