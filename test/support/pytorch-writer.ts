/**
 * Writes PyTorch-style checkpoints by hand, without torch: a stored zip (optionally ZIP64, with
 * gaps so that offsets pass 4 GiB without allocating them: `sparseSource`), a pickle assembler,
 * and a state dict pickled the way torch.save does (protocol 2: OrderedDict REDUCE, SETITEMS,
 * _rebuild_tensor_v2 with a BINPERSID ('storage', torch.<T>Storage, key, 'cpu', numel)). For the
 * unit tests of app/formats/{zip,pickle,pytorch}.ts and their hostile variants; the real files
 * torch writes are the fixtures of scripts/golden/make_bin_fixtures.py.
 */
import { ModelFileError } from '../../app/formats/errors';
import type { ByteSource } from '../../app/formats/source';

export interface ZipSpec {
  name: string;
  data: Uint8Array;
  /** Compression method written (0 stored); the data is written as given either way. */
  method?: number;
  flags?: number;
  /** Align the data to this many bytes with an extra field in the local header, as torch does (64). */
  align?: number;
  /** Bytes skipped (never allocated) before this entry's local header. */
  gapBefore?: number;
  /** Write this local header offset in the central directory instead of the real one. */
  fakeOffset?: number;
  /** Write this size in the central directory instead of the real one. */
  fakeSize?: number;
}

export interface ZipLayout {
  size: number;
  segments: { offset: number; bytes: Uint8Array }[];
}

class Bytes {
  parts: number[] = [];
  u16(v: number) {
    this.parts.push(v & 0xff, (v >>> 8) & 0xff);
    return this;
  }
  u32(v: number) {
    this.parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this;
  }
  u64(v: number) {
    const big = BigInt(v);
    for (let i = 0n; i < 8n; i++) this.parts.push(Number((big >> (8n * i)) & 0xffn));
    return this;
  }
  bytes(b: ArrayLike<number>) {
    for (let i = 0; i < b.length; i++) this.parts.push(b[i] as number);
    return this;
  }
  get length() {
    return this.parts.length;
  }
  done() {
    return Uint8Array.from(this.parts);
  }
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** A zip archive's layout (ZIP64 when asked, or when an offset needs it). */
export function zipLayout(entries: ZipSpec[], options: { zip64?: boolean; comment?: string; cdOffsetDelta?: number } = {}): ZipLayout {
  const segments: ZipLayout['segments'] = [];
  let at = 0;
  const central = new Bytes();
  const big = (x: number) => x >= 0xffffffff;
  for (const e of entries) {
    at += e.gapBefore ?? 0;
    const name = utf8(e.name);
    const local = new Bytes();
    const headerStart = at;
    const minimal = 30 + name.length;
    let extra: number[] = [];
    if (e.align) {
      const pad = (e.align - ((headerStart + minimal + 4) % e.align)) % e.align;
      extra = [0x46, 0x42, pad & 0xff, pad >> 8, ...new Array<number>(pad).fill(0x5a)];
    }
    local.u32(0x04034b50).u16(20).u16(e.flags ?? 0).u16(e.method ?? 0).u16(0).u16(0).u32(0).u32(e.data.length).u32(e.data.length).u16(name.length).u16(extra.length).bytes(name).bytes(extra);
    segments.push({ offset: at, bytes: local.done() });
    at += local.length;
    segments.push({ offset: at, bytes: e.data });
    at += e.data.length;
    const offset = e.fakeOffset ?? headerStart;
    const size = e.fakeSize ?? e.data.length;
    const zip64 = options.zip64 || big(offset) || big(size);
    const z = new Bytes();
    if (zip64) z.u16(1).u16(24).u64(size).u64(size).u64(offset);
    central
      .u32(0x02014b50).u16(45).u16(zip64 ? 45 : 20).u16(e.flags ?? 0).u16(e.method ?? 0).u16(0).u16(0).u32(0)
      .u32(zip64 ? 0xffffffff : size).u32(zip64 ? 0xffffffff : size).u16(name.length).u16(z.length).u16(0).u16(0).u16(0).u32(0)
      .u32(zip64 ? 0xffffffff : offset).bytes(name).bytes(z.parts);
  }
  const cdOffset = at;
  const cd = central.done();
  segments.push({ offset: at, bytes: cd });
  at += cd.length;
  const zip64 = options.zip64 || big(cdOffset) || entries.some((e) => big(e.fakeOffset ?? 0));
  const tail = new Bytes();
  const shownOffset = cdOffset + (options.cdOffsetDelta ?? 0);
  if (zip64) {
    const recordAt = at;
    tail.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0).u64(entries.length).u64(entries.length).u64(cd.length).u64(shownOffset);
    tail.u32(0x07064b50).u32(0).u64(recordAt).u32(1);
  }
  const comment = utf8(options.comment ?? '');
  tail
    .u32(0x06054b50).u16(0).u16(0).u16(zip64 ? 0xffff : entries.length).u16(zip64 ? 0xffff : entries.length)
    .u32(zip64 ? 0xffffffff : cd.length).u32(zip64 ? 0xffffffff : shownOffset).u16(comment.length).bytes(comment);
  segments.push({ offset: at, bytes: tail.done() });
  at += tail.length;
  return { size: at, segments };
}

/** The layout as one byte array (no gaps larger than a test can afford). */
export function flatten(layout: ZipLayout): Uint8Array {
  const out = new Uint8Array(layout.size);
  for (const s of layout.segments) out.set(s.bytes, s.offset);
  return out;
}

export const writeZip = (entries: ZipSpec[], options?: Parameters<typeof zipLayout>[1]) => flatten(zipLayout(entries, options));

/** A ByteSource over a layout whose gaps read as zeros (offsets past 4 GiB with a few KB in memory). */
export function sparseSource(name: string, layout: ZipLayout): ByteSource & { reads: { offset: number; length: number }[] } {
  const reads: { offset: number; length: number }[] = [];
  return {
    name,
    size: layout.size,
    reads,
    async read(offset, length) {
      if (offset < 0 || offset + length > layout.size) throw new ModelFileError(name, `read ${offset}+${length} past the end`);
      if (length > 64 * 1024 * 1024) throw new Error(`sparseSource: a read of ${length} bytes (the reader must read ranges, not the file)`);
      reads.push({ offset, length });
      const out = new Uint8Array(length);
      for (const s of layout.segments) {
        const from = Math.max(offset, s.offset);
        const to = Math.min(offset + length, s.offset + s.bytes.length);
        if (from < to) out.set(s.bytes.subarray(from - s.offset, to - s.offset), from - offset);
      }
      return out;
    },
  };
}

/** A pickle assembler: each method appends one opcode. */
export class PickleWriter {
  private readonly b = new Bytes();
  private memo = 0;
  op(...codes: number[]) {
    this.b.bytes(codes);
    return this;
  }
  proto(v = 2) {
    return this.op(0x80, v);
  }
  global(module: string, name: string) {
    return this.op(0x63).op(...utf8(`${module}\n${name}\n`));
  }
  str(s: string) {
    const bytes = utf8(s);
    this.b.bytes([0x58]).u32(bytes.length).bytes(bytes);
    return this;
  }
  int(n: number) {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    if (n >= -(2 ** 31) && n < 2 ** 31) {
      this.b.bytes([0x4a]).u32(n >>> 0);
      return this;
    }
    const bytes: number[] = [];
    let big = BigInt(n);
    for (let i = 0; i < 8; i++) {
      bytes.push(Number(big & 0xffn));
      big >>= 8n;
    }
    return this.op(0x8a, 8, ...bytes);
  }
  mark() {
    return this.op(0x28);
  }
  tuple(n?: number) {
    if (n === 0) return this.op(0x29);
    if (n === 1 || n === 2 || n === 3) return this.op(0x84 + n);
    return this.op(0x74);
  }
  put() {
    return this.op(0x71, this.memo++ & 0xff);
  }
  get(i: number) {
    return this.op(0x68, i);
  }
  reduce() {
    return this.op(0x52);
  }
  build() {
    return this.op(0x62);
  }
  emptyDict() {
    return this.op(0x7d);
  }
  setitems() {
    return this.op(0x75);
  }
  setitem() {
    return this.op(0x73);
  }
  persid() {
    return this.op(0x51);
  }
  bool(v: boolean) {
    return this.op(v ? 0x88 : 0x89);
  }
  stop() {
    return this.op(0x2e);
  }
  done() {
    return this.b.done();
  }
}

export interface TensorSpec {
  name: string;
  storageType?: string;
  key: string;
  numel: number;
  offset?: number;
  shape: number[];
  stride?: number[];
}

const rowMajor = (shape: number[]) => shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));

/** A state dict pickled as torch.save writes one (OrderedDict with `_metadata` when `metadata`). */
export function stateDictPickle(tensors: TensorSpec[], options: { plainDict?: boolean; metadata?: boolean } = {}): Uint8Array {
  const w = new PickleWriter().proto(2);
  if (options.plainDict) w.emptyDict();
  else w.global('collections', 'OrderedDict').tuple(0).reduce();
  w.mark();
  for (const t of tensors) {
    w.str(t.name).global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark().str('storage').global('torch', t.storageType ?? 'FloatStorage').str(t.key).str('cpu').int(t.numel).tuple().persid();
    w.int(t.offset ?? 0);
    w.mark();
    for (const d of t.shape) w.int(d);
    w.tuple();
    w.mark();
    for (const d of t.stride ?? rowMajor(t.shape)) w.int(d);
    w.tuple();
    w.bool(false).global('collections', 'OrderedDict').tuple(0).reduce();
    w.tuple().reduce();
  }
  w.setitems();
  if (options.metadata && !options.plainDict) {
    w.emptyDict().str('_metadata').global('collections', 'OrderedDict').tuple(0).reduce().str('').emptyDict().str('version').int(1).setitem().setitem().setitem().build();
  }
  return w.stop().done();
}

/** A torch.save-like zip: `<archive>/data.pkl`, `byteorder` (unless null), `data/<key>` each aligned to 64, `version`. */
export function torchZipEntries(pkl: Uint8Array, storages: Record<string, Uint8Array>, options: { archive?: string; byteorder?: string | null } = {}): ZipSpec[] {
  const archive = options.archive ?? 'archive';
  const entries: ZipSpec[] = [{ name: `${archive}/data.pkl`, data: pkl, align: 64 }];
  if (options.byteorder !== null) entries.push({ name: `${archive}/byteorder`, data: utf8(options.byteorder ?? 'little'), align: 64 });
  for (const [key, data] of Object.entries(storages)) entries.push({ name: `${archive}/data/${key}`, data, align: 64 });
  entries.push({ name: `${archive}/version`, data: utf8('3\n'), align: 64 });
  return entries;
}

export const f32Bytes = (values: ArrayLike<number>) => new Uint8Array(Float32Array.from(values).buffer);
