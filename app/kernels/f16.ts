/**
 * fp16 weight storage without the shader-f16 feature: two IEEE half floats per u32, element 2k in
 * the low 16 bits and 2k + 1 in the high ones — the layout WGSL's unpack2x16float reads
 * (component x = low half). A matrix [O, I] packed this way is its row-major flattening, so
 * element e = o·I + i lives in word e >> 1, half e & 1 (rows may straddle words when I is odd).
 * (Halves are decoded in one place: app/formats/float16.ts.)
 */
import { f16ToF32 } from '../formats/float16.js';

import { weightBytes } from './weight-format.js';

export { type WeightFormat, weightBytes, weightWords } from './weight-format.js';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The IEEE half nearest to `value` (ties to even), as its 16-bit pattern; overflow gives ±inf. */
export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // inf, NaN
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): m · 2^-24 with m = (1.mantissa) · 2^(e + 10) rounded.
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // a carry into the exponent is right (up to inf)
  return sign | half;
}

/** `values` rounded to the nearest half (what the GPU sees of an f16-stored weight), as f32. */
export function roundToF16(values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f16ToF32(f32ToF16Bits(values[i] as number));
  return out;
}

/** Packs `values` as halves, two per u32 (a last odd element gets a zero high half). */
export function packF16(values: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(Math.ceil(values.length / 2));
  for (let w = 0; w < out.length; w++) {
    const lo = f32ToF16Bits(values[2 * w] as number);
    const hi = 2 * w + 1 < values.length ? f32ToF16Bits(values[2 * w + 1] as number) : 0;
    out[w] = (lo | (hi << 16)) >>> 0;
  }
  return out;
}

/** Uploads `values` as a packed-f16 weight buffer. */
export function uploadF16(device: GPUDevice, label: string, values: ArrayLike<number>): GPUBuffer {
  const packed = packF16(values);
  const buffer = device.createBuffer({
    label,
    size: weightBytes(values.length, 'f16'),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
  });
  device.queue.writeBuffer(buffer, 0, packed.buffer, packed.byteOffset, packed.byteLength);
  return buffer;
}
