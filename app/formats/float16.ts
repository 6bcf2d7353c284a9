/**
 * Stored floats → float32: IEEE 754 binary16 (F16), bfloat16 (BF16), and little-endian F32 and
 * F64. The one place the file readers (safetensors.ts, ggml.ts's dequantizer, decode.ts's
 * tensorDecoder) turn stored bytes into numbers.
 *
 * Every bulk decoder takes any slice of a buffer: an aligned one is read through a typed-array
 * view (platform byte order: little-endian on every platform the studio runs on, as WebGPU is),
 * an unaligned one (a tensor at an odd offset in a file, a chunk of a streamed read) through a
 * DataView, with the same results. `out`, when given, receives the values from index 0 (it must
 * hold at least as many) and is returned; otherwise a new array is.
 *
 * This is the reading side. The GPU's packing side (f32 → halves, two per u32 word) is
 * app/kernels/f16.ts.
 */

/** The value of a 16-bit IEEE half pattern (subnormals exact, ±inf, NaN for every NaN pattern). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

let halfTable: Float32Array | null = null;
/** f16 bits → f32 for all 65,536 patterns, built once: the table every F16 decoder uses. */
export function f16Table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let x = 0; x < 65536; x++) halfTable[x] = f16ToF32(x);
  }
  return halfTable;
}

const bf16Scratch = new Uint32Array(1);
const bf16Value = new Float32Array(bf16Scratch.buffer);
/** The value of a 16-bit bfloat16 pattern: the high half of a float32, whose low half is zero. */
export function bf16ToF32(b: number): number {
  bf16Scratch[0] = (b & 0xffff) << 16;
  return bf16Value[0] as number;
}

/** The 16-bit float encodings `decodeHalves` reads. */
export type HalfKind = 'F16' | 'BF16';
/** Every encoding `decodeFloats` reads, with its bytes per value. */
export const FLOAT_BYTES = { F16: 2, BF16: 2, F32: 4, F64: 8 } as const;
export type FloatKind = keyof typeof FLOAT_BYTES;
export const isFloatKind = (x: string): x is FloatKind => Object.hasOwn(FLOAT_BYTES, x);

function output(bytes: Uint8Array, size: number, kind: FloatKind, out: Float32Array | undefined): { count: number; out: Float32Array } {
  if (bytes.byteLength % size !== 0) throw new RangeError(`${bytes.byteLength} bytes are not a whole number of ${kind} values (${size} bytes each)`);
  const count = bytes.byteLength / size;
  if (!out) return { count, out: new Float32Array(count) };
  if (out.length < count) throw new RangeError(`${count} ${kind} values do not fit in an output of ${out.length}`);
  return { count, out };
}

/** Decodes little-endian F16 or BF16 values (an even number of bytes, any alignment) to float32. */
export function decodeHalves(bytes: Uint8Array, kind: HalfKind, out?: Float32Array): Float32Array {
  const { count, out: result } = output(bytes, 2, kind, out);
  const aligned = bytes.byteOffset % 2 === 0;
  const src = aligned ? new Uint16Array(bytes.buffer, bytes.byteOffset, count) : null;
  const view = aligned ? null : new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (kind === 'F16') {
    const table = f16Table();
    if (src) for (let i = 0; i < count; i++) result[i] = table[src[i] as number] as number;
    else for (let i = 0; i < count; i++) result[i] = table[(view as DataView).getUint16(2 * i, true)] as number;
  } else {
    // bfloat16 is the top half of a float32: write the bits, so NaN payloads survive too.
    const bits = new Uint32Array(result.buffer, result.byteOffset, count);
    if (src) for (let i = 0; i < count; i++) bits[i] = (src[i] as number) << 16;
    else for (let i = 0; i < count; i++) bits[i] = (view as DataView).getUint16(2 * i, true) << 16;
  }
  return result;
}

/** Little-endian F32 or F64 values (any alignment) into a float32 array: a typed-array view when aligned, a DataView otherwise. */
function decodeWide(bytes: Uint8Array, kind: 'F32' | 'F64', out: Float32Array | undefined): Float32Array {
  const size = kind === 'F32' ? 4 : 8;
  const { count, out: result } = output(bytes, size, kind, out);
  if (bytes.byteOffset % size === 0) {
    result.set(kind === 'F32' ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new Float64Array(bytes.buffer, bytes.byteOffset, count));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (kind === 'F32') for (let i = 0; i < count; i++) result[i] = view.getFloat32(4 * i, true);
    else for (let i = 0; i < count; i++) result[i] = view.getFloat64(8 * i, true);
  }
  return result;
}

/** Copies little-endian F32 values (a multiple of 4 bytes, any alignment) into a float32 array. */
export function decodeF32(bytes: Uint8Array, out?: Float32Array): Float32Array {
  return decodeWide(bytes, 'F32', out);
}

/** Decodes little-endian F64 values (a multiple of 8 bytes, any alignment), rounded to float32. */
export function decodeF64(bytes: Uint8Array, out?: Float32Array): Float32Array {
  return decodeWide(bytes, 'F64', out);
}

/** Decodes `bytes` of any float encoding to float32. */
export function decodeFloats(bytes: Uint8Array, kind: FloatKind, out?: Float32Array): Float32Array {
  switch (kind) {
    case 'F16':
    case 'BF16':
      return decodeHalves(bytes, kind, out);
    case 'F32':
      return decodeF32(bytes, out);
    case 'F64':
      return decodeF64(bytes, out);
  }
}
