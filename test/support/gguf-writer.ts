/**
 * Writes GGUF bytes for tests, the way llama.cpp's gguf-py writer lays them out: header, metadata,
 * tensor infos (ne = the row-major shape reversed), padding to the alignment, then each tensor's
 * data padded to the alignment. Every field can be overridden so tests can corrupt it.
 */
import type { ArchitectureName } from '../../app/arch/registry';
import { f16ToF32 } from '../../app/formats/float16';
import { GGML_TYPES } from '../../app/formats/ggml';
import { isQuantType } from '../../app/formats/ggml-quants';
import { quantize } from './ggml-quantize';

/** GGUF metadata value type ids. */
export const GT = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;

export type WriterValue = number | bigint | boolean | string | WriterValue[];
export interface WriterKv {
  key: string;
  /** Value type id (may be an invalid one, for corruption tests; then `raw` bytes follow it). */
  type: number;
  /** For arrays: the item type. */
  itemType?: number;
  value: WriterValue;
  raw?: Uint8Array;
}

/** The ggml type ids the writer writes (ggml.c's `ggml_type`). */
export const GGML_TYPE_IDS = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q2_K: 10, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
export type WriterType = keyof typeof GGML_TYPE_IDS;
/** Elements and bytes per block of each, from app/formats/ggml.ts GGML_TYPES (ggml.c's type_traits). */
const TYPE_SIZES: Record<number, [number, number]> = Object.fromEntries(
  Object.values(GGML_TYPE_IDS).map((id) => {
    const t = GGML_TYPES[id];
    return [id, [t.blockSize, t.typeSize]];
  }),
);

export interface WriterTensor {
  name: string;
  /** Row-major shape as stored (ne is its reverse). */
  shape: number[];
  type: WriterType;
  data: Uint8Array;
  /** Override the offset written in the tensor info (relative to the data section). */
  offset?: number;
}

export interface GgufSpec {
  magic?: string | Uint8Array;
  version?: number;
  alignment?: number;
  kv: WriterKv[];
  tensors: WriterTensor[];
  /** Override the tensor / kv counts written in the header. */
  tensorCount?: bigint;
  kvCount?: bigint;
}

class Out {
  private chunks: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array) {
    this.chunks.push(b);
    this.length += b.byteLength;
  }
  private num(n: number, set: (v: DataView) => void) {
    const b = new Uint8Array(n);
    set(new DataView(b.buffer));
    this.bytes(b);
  }
  u8 = (v: number) => this.num(1, (d) => d.setUint8(0, v));
  i8 = (v: number) => this.num(1, (d) => d.setInt8(0, v));
  u16 = (v: number) => this.num(2, (d) => d.setUint16(0, v, true));
  i16 = (v: number) => this.num(2, (d) => d.setInt16(0, v, true));
  u32 = (v: number) => this.num(4, (d) => d.setUint32(0, v, true));
  i32 = (v: number) => this.num(4, (d) => d.setInt32(0, v, true));
  f32 = (v: number) => this.num(4, (d) => d.setFloat32(0, v, true));
  f64 = (v: number) => this.num(8, (d) => d.setFloat64(0, v, true));
  u64 = (v: number | bigint) => this.num(8, (d) => d.setBigUint64(0, BigInt(v), true));
  i64 = (v: number | bigint) => this.num(8, (d) => d.setBigInt64(0, BigInt(v), true));
  str(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.byteLength);
    this.bytes(b);
  }
  pad(alignment: number) {
    const n = (alignment - (this.length % alignment)) % alignment;
    if (n) this.bytes(new Uint8Array(n));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

function writeValue(o: Out, type: number, value: WriterValue, itemType?: number) {
  switch (type) {
    case GT.U8: return o.u8(value as number);
    case GT.I8: return o.i8(value as number);
    case GT.U16: return o.u16(value as number);
    case GT.I16: return o.i16(value as number);
    case GT.U32: return o.u32(value as number);
    case GT.I32: return o.i32(value as number);
    case GT.F32: return o.f32(value as number);
    case GT.BOOL: return o.u8(value ? 1 : 0);
    case GT.STRING: return o.str(value as string);
    case GT.U64: return o.u64(value as number | bigint);
    case GT.I64: return o.i64(value as number | bigint);
    case GT.F64: return o.f64(value as number);
    case GT.ARRAY: {
      const items = value as WriterValue[];
      const it = itemType ?? GT.STRING;
      o.u32(it);
      o.u64(items.length);
      for (const item of items) writeValue(o, it, item, Array.isArray(item) ? GT.STRING : undefined);
      return;
    }
    default:
      throw new Error(`writer: value type ${type} needs raw bytes`);
  }
}

export function writeGguf(spec: GgufSpec): Uint8Array {
  const alignment = spec.alignment ?? 32;
  const o = new Out();
  const magic = spec.magic ?? 'GGUF';
  o.bytes(typeof magic === 'string' ? new TextEncoder().encode(magic) : magic);
  o.u32(spec.version ?? 3);
  o.u64(spec.tensorCount ?? BigInt(spec.tensors.length));
  o.u64(spec.kvCount ?? BigInt(spec.kv.length));
  for (const kv of spec.kv) {
    o.str(kv.key);
    o.u32(kv.type);
    if (kv.raw) o.bytes(kv.raw);
    else writeValue(o, kv.type, kv.value, kv.itemType);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of spec.tensors) {
    offsets.push(offset);
    offset += Math.ceil(t.data.byteLength / alignment) * alignment;
  }
  spec.tensors.forEach((t, i) => {
    o.str(t.name);
    o.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) o.u64(d);
    o.u32(GGML_TYPE_IDS[t.type]);
    o.u64(t.offset ?? (offsets[i] as number));
  });
  o.pad(alignment);
  for (const t of spec.tensors) {
    o.bytes(t.data);
    o.pad(alignment);
  }
  return o.concat();
}

/** Byte size a tensor of this type and shape must have. */
export function tensorBytes(type: WriterType, shape: number[]): number {
  const [block, size] = TYPE_SIZES[GGML_TYPE_IDS[type]] as [number, number];
  return (shape.reduce((a, b) => a * b, 1) / block) * size;
}

// ---------------------------------------------------------------------------------------------
// Encoders

export const f32Bytes = (values: ArrayLike<number>) => new Uint8Array(Float32Array.from(values).buffer);

/** float → IEEE half bits, round to nearest even (handles subnormals, overflow to ∞, NaN). */
export function f32ToF16Bits(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is still right (up to ∞)
  return sign | h;
}

export const f16Bytes = (values: ArrayLike<number>) => new Uint8Array(Uint16Array.from(Array.from(values, f32ToF16Bits)).buffer);

export const bf16Bytes = (values: ArrayLike<number>) =>
  new Uint8Array(Uint16Array.from(Array.from(values, (v) => (new Uint32Array(new Float32Array([v]).buffer)[0] as number) >>> 16)).buffer);

/** ggml's quantize_row_q8_0_ref: per block of 32, d = max|x| / 127, q = round(x / d), d stored as f16. */
export function q8_0Bytes(values: ArrayLike<number>): Uint8Array {
  if (values.length % 32 !== 0) throw new Error('Q8_0 needs a multiple of 32 values');
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[b * 32 + j] as number));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    view.setUint16(b * 34, f32ToF16Bits(d), true);
    for (let j = 0; j < 32; j++) view.setInt8(b * 34 + 2 + j, Math.round((values[b * 32 + j] as number) * id));
  }
  return out;
}

/**
 * A tensor's bytes in `type`: the float types exactly (rounded to nearest), the eight block formats
 * by the test quantizers (ggml-quantize.ts `quantize`: ggml's layouts, each value within half a
 * step of its block). Q2_K, a type the studio does not load, is written as opaque zero blocks.
 */
export function encode(type: WriterType, values: ArrayLike<number>): Uint8Array {
  switch (type) {
    case 'F32': return f32Bytes(values);
    case 'F16': return f16Bytes(values);
    case 'BF16': return bf16Bytes(values);
    case 'Q2_K': return new Uint8Array((values.length / 256) * 84); // opaque: a type the studio does not load
    default: return quantize(type, values);
  }
}

/** The values a stored encoding decodes to, computed independently of app/ (for F32/F16/BF16). */
export function roundTrip(type: 'F32' | 'F16' | 'BF16', values: ArrayLike<number>): number[] {
  if (type === 'F32') return Array.from(Float32Array.from(values));
  if (type === 'F16') return Array.from(values, (v) => f16ToF32(f32ToF16Bits(v)));
  const bits = new Uint32Array(Float32Array.from(values).buffer).map((b) => b & 0xffff0000);
  return Array.from(new Float32Array(bits.buffer));
}

// ---------------------------------------------------------------------------------------------
// Tiny Mamba / Mamba-2 models in llama.cpp's layout

export interface TinyModelOptions {
  arch: ArchitectureName;
  dModel?: number;
  nLayer?: number;
  vocab?: number;
  dState?: number;
  dConv?: number;
  /** mamba: Δ rank; mamba2: heads. */
  rank?: number;
  nGroups?: number;
  /** Store lm_head (output.weight); otherwise the head is tied. */
  untied?: boolean;
  /** Type of the big projection matrices (ssm_in, ssm_out). */
  matrixType?: WriterType;
  /** mamba2: store ssm_a / ssm_d as [H] instead of llama.cpp's ne {1, H} (row-major [H, 1]). */
  flatAD?: boolean;
  extraKv?: WriterKv[];
  version?: number;
  alignment?: number;
}

export interface TinyModel {
  spec: GgufSpec;
  bytes: Uint8Array;
  /** The canonical (transformers-layout) values each tensor should load as, by transformers name. */
  expected: Map<string, { shape: number[]; values: number[] }>;
}

/**
 * A tiny random model: canonical weights first (A_log, conv [C, 1, K], …), then written as
 * llama.cpp's converter would (−exp(A_log), conv squeezed to [C, K], mamba2 A/D as [H, 1], norm
 * grouped as [G, d_inner / G]). `expected` holds what loading must give back.
 */
export function tinyModel(o: TinyModelOptions, rand: () => number = Math.random): TinyModel {
  const D = o.dModel ?? 8;
  const L = o.nLayer ?? 2;
  const V = o.vocab ?? 16;
  const Di = 2 * D;
  const N = o.dState ?? 4;
  const K = o.dConv ?? 4;
  const arch = o.arch;
  const R = o.rank ?? (arch === 'mamba' ? 2 : 4);
  const G = o.nGroups ?? 2;
  const matrixType = o.matrixType ?? 'F32';
  const random = (n: number, scale = 1) => Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
  const expected = new Map<string, { shape: number[]; values: number[] }>();
  const tensors: WriterTensor[] = [];
  const add = (ggufName: string, canonical: string, canonicalShape: number[], values: number[], stored: { shape: number[]; type?: WriterType; values?: number[] }) => {
    const type = stored.type ?? 'F32';
    const storedValues = stored.values ?? values;
    tensors.push({ name: ggufName, shape: stored.shape, type, data: encode(type, storedValues) });
    const decoded = isQuantType(type) || type === 'Q2_K' ? values : roundTrip(type, values);
    expected.set(canonical, { shape: canonicalShape, values: decoded });
  };
  const mat = (ggufName: string, canonical: string, shape: [number, number], type: WriterType = 'F32') =>
    add(ggufName, canonical, shape, random(shape[0] * shape[1], 0.5), { shape, type });
  const vec = (ggufName: string, canonical: string, n: number, storedShape = [n]) => add(ggufName, canonical, [n], random(n), { shape: storedShape });

  mat('token_embd.weight', 'backbone.embeddings.weight', [V, D]);
  for (let i = 0; i < L; i++) {
    const p = `backbone.layers.${i}.`;
    const m = `${p}mixer.`;
    const b = `blk.${i}.`;
    vec(`${b}attn_norm.weight`, `${p}norm.weight`, D);
    if (arch === 'mamba') {
      mat(`${b}ssm_in.weight`, `${m}in_proj.weight`, [2 * Di, D], matrixType);
      const conv = random(Di * K);
      add(`${b}ssm_conv1d.weight`, `${m}conv1d.weight`, [Di, 1, K], conv, { shape: [Di, K] });
      vec(`${b}ssm_conv1d.bias`, `${m}conv1d.bias`, Di);
      mat(`${b}ssm_x.weight`, `${m}x_proj.weight`, [R + 2 * N, Di]);
      mat(`${b}ssm_dt.weight`, `${m}dt_proj.weight`, [Di, R]);
      vec(`${b}ssm_dt.bias`, `${m}dt_proj.bias`, Di);
      const aLog = Array.from({ length: Di * N }, (_, j) => Math.log(1 + (j % N)) + 0.01 * rand());
      add(`${b}ssm_a`, `${m}A_log`, [Di, N], aLog, { shape: [Di, N], values: aLog.map((v) => -Math.exp(v)) });
      vec(`${b}ssm_d`, `${m}D`, Di);
      mat(`${b}ssm_out.weight`, `${m}out_proj.weight`, [D, Di], matrixType);
    } else {
      const H = R;
      const convDim = Di + 2 * G * N;
      mat(`${b}ssm_in.weight`, `${m}in_proj.weight`, [2 * Di + 2 * G * N + H, D], matrixType);
      add(`${b}ssm_conv1d.weight`, `${m}conv1d.weight`, [convDim, 1, K], random(convDim * K), { shape: [convDim, K] });
      vec(`${b}ssm_conv1d.bias`, `${m}conv1d.bias`, convDim);
      vec(`${b}ssm_dt.bias`, `${m}dt_bias`, H);
      const aLog = Array.from({ length: H }, (_, j) => Math.log(1 + j) + 0.01 * rand());
      const adShape = o.flatAD ? [H] : [H, 1];
      add(`${b}ssm_a`, `${m}A_log`, [H], aLog, { shape: adShape, values: aLog.map((v) => -Math.exp(v)) });
      vec(`${b}ssm_d`, `${m}D`, H, adShape);
      vec(`${b}ssm_norm.weight`, `${m}norm.weight`, Di, [G, Di / G]);
      mat(`${b}ssm_out.weight`, `${m}out_proj.weight`, [D, Di], matrixType);
    }
  }
  vec('output_norm.weight', 'backbone.norm_f.weight', D);
  if (o.untied) mat('output.weight', 'lm_head.weight', [V, D]);

  const kv: WriterKv[] = [
    { key: 'general.architecture', type: GT.STRING, value: arch },
    { key: 'general.name', type: GT.STRING, value: `tiny-${arch}` },
    { key: `${arch}.context_length`, type: GT.U32, value: 2 ** 20 },
    { key: `${arch}.embedding_length`, type: GT.U32, value: D },
    { key: `${arch}.feed_forward_length`, type: GT.U32, value: 0 },
    { key: `${arch}.attention.head_count`, type: GT.U32, value: 0 },
    { key: `${arch}.block_count`, type: GT.U32, value: L },
    { key: `${arch}.ssm.conv_kernel`, type: GT.U32, value: K },
    { key: `${arch}.ssm.inner_size`, type: GT.U32, value: Di },
    { key: `${arch}.ssm.state_size`, type: GT.U32, value: N },
    { key: `${arch}.ssm.time_step_rank`, type: GT.U32, value: R },
    ...(arch === 'mamba2' ? [{ key: 'mamba2.ssm.group_count', type: GT.U32, value: G }] : []),
    { key: `${arch}.attention.layer_norm_rms_epsilon`, type: GT.F32, value: 1e-5 },
    ...(arch === 'mamba' ? [{ key: 'mamba.ssm.dt_b_c_rms', type: GT.BOOL, value: false }] : []),
    { key: 'general.file_type', type: GT.U32, value: 0 },
    { key: 'tokenizer.ggml.model', type: GT.STRING, value: 'gpt2' },
    { key: 'tokenizer.ggml.tokens', type: GT.ARRAY, itemType: GT.STRING, value: Array.from({ length: V }, (_, i) => `t${i}`) },
    { key: 'tokenizer.ggml.token_type', type: GT.ARRAY, itemType: GT.I32, value: Array.from({ length: V }, () => 1) },
    ...(o.alignment ? [{ key: 'general.alignment', type: GT.U32, value: o.alignment }] : []),
    ...(o.extraKv ?? []),
  ];
  const spec: GgufSpec = { kv, tensors, ...(o.version ? { version: o.version } : {}), ...(o.alignment ? { alignment: o.alignment } : {}) };
  return { spec, bytes: writeGguf(spec), expected };
}

/**
 * The metadata llama.cpp's converter writes for a Mamba / Mamba-2 model (app/arch/gguf.ts reads
 * them): architecture, name, the config's sizes, the norm epsilon and general.file_type (llama_ftype:
 * ALL_F32 0, MOSTLY_Q8_0 7, MOSTLY_Q4_K_S 14, MOSTLY_Q4_K_M 15); `extra` goes before the epsilon.
 */
export function mambaGgufKv(
  arch: 'mamba' | 'mamba2',
  name: string,
  c: { dModel: number; nLayer: number; dConv: number; dInner: number; dState: number; dtRank: number; nHeads: number; nGroups: number; normEps: number },
  fileType: number,
  extra: WriterKv[] = [],
): WriterKv[] {
  const u32 = (key: string, value: number): WriterKv => ({ key, type: GT.U32, value });
  return [
    { key: 'general.architecture', type: GT.STRING, value: arch },
    { key: 'general.name', type: GT.STRING, value: name },
    u32(`${arch}.context_length`, 2 ** 20),
    u32(`${arch}.embedding_length`, c.dModel),
    u32(`${arch}.block_count`, c.nLayer),
    u32(`${arch}.ssm.conv_kernel`, c.dConv),
    u32(`${arch}.ssm.inner_size`, c.dInner),
    u32(`${arch}.ssm.state_size`, c.dState),
    u32(`${arch}.ssm.time_step_rank`, arch === 'mamba' ? c.dtRank : c.nHeads),
    ...(arch === 'mamba2' ? [u32('mamba2.ssm.group_count', c.nGroups)] : []),
    ...extra,
    { key: `${arch}.attention.layer_norm_rms_epsilon`, type: GT.F32, value: c.normEps },
    u32('general.file_type', fileType),
  ];
}

/**
 * Writing a fixture's fp32 tensors (`table`, by their safetensors names) into a GGUF tensor list:
 * `get` one (throws naming a missing one), `put` one as F32 under its GGUF name and shape.
 */
export function f32TensorList(table: ReadonlyMap<string, Float32Array>): { tensors: WriterTensor[]; get: (name: string) => Float32Array; put: (name: string, shape: number[], values: ArrayLike<number>) => void } {
  const tensors: WriterTensor[] = [];
  const get = (name: string) => {
    const t = table.get(name);
    if (!t) throw new Error(`fixture has no ${name}`);
    return t;
  };
  const put = (name: string, shape: number[], values: ArrayLike<number>) => tensors.push({ name, shape, type: 'F32', data: encode('F32', values) });
  return { tensors, get, put };
}
