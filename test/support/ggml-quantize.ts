/**
 * Test-only quantizers: float32 values → blocks in ggml's layouts (the layouts are described in
 * app/formats/ggml-quants.ts), so tests can write quantized GGUF files and check the decoders.
 *
 * The methods are simple ones in the spirit of ggml's reference quantizers (`quantize_row_*_ref`),
 * not ggml's error-minimizing searches, and differ from them in one deliberate way: every stored
 * f16 scale is rounded in the direction that keeps the block's values inside the range its codes
 * cover, and the codes are chosen against the stored (rounded) scales. So no code ever has to be
 * clamped and each format's error is at most half of its step (the exceptions, and the bound each
 * round trip meets, are stated per format and checked in test/unit/ggml-quants.test.ts).
 *
 *   Q8_0        d = absmax/127 (rounded up to f16), q = round(x/d)             |err| ≤ d/2
 *   Q4_0, Q5_0  ggml's choice: d = −v/8 (−v/16) where v is the value of largest magnitude, rounded
 *               away from 0, so v itself gets the lowest code; q = round(x/d) + 8 (+16), clamped
 *               to the top code. |err| ≤ |d|/2, except values of the other sign with x/d > 7.5
 *               (15.5), which take the top code 7 (15) at an error |x| − 7|d| (15|d|) ≤ |d|, as
 *               |x| ≤ |v| ≤ 8|d| (16|d|).
 *   Q4_1, Q5_1  m = min rounded down to f16, d = (max − m)/15 (31) rounded up; q = round((x − m)/d).
 *               |err| ≤ d/2
 *   Q4_K, Q5_K  per sub-block j of 32: its offset M_j = −min(0, min x) and its step. dmin =
 *               max M_j/63 and d = max step/63 are f16 rounded up; min code lm_j = ceil(M_j/dmin) (so
 *               the stored offset dmin·lm_j ≥ M_j), scale code ls_j = ceil(((max_j + dmin·lm_j)/15)/d)
 *               (/31 for Q5_K), so the 16 (32) levels d·ls_j·q − dmin·lm_j, q = 0..15 (31), span
 *               the sub-block. |err| ≤ d·ls_j/2.
 *   Q6_K        per sub-block j of 16: step_j = absmax_j/31; d = max step_j/127 rounded up, scale
 *               code sc_j = ceil(step_j/d) ≤ 127, q = round(x/(d·sc_j)) ∈ −31..31.  |err| ≤ d·sc_j/2.
 */
import { f16ToF32 } from '../../app/formats/float16';
import type { QuantType } from '../../app/formats/ggml-quants';
import { f32ToF16Bits } from './gguf-writer';

/**
 * f16 bits of the nearest half on the chosen side of x: `up` gives the least half ≥ x, `down` the
 * greatest half ≤ x (x finite and inside the f16 range).
 */
export function f16Rounded(x: number, direction: 'up' | 'down'): number {
  const bits = f32ToF16Bits(x);
  const v = f16ToF32(bits);
  if (direction === 'up' ? v >= x : v <= x) return bits;
  // One step of one f16 unit: away from 0 when moving the way of x's sign, toward 0 otherwise.
  const negative = (bits & 0x8000) !== 0;
  if ((bits & 0x7fff) === 0) return direction === 'up' ? 0x0001 : 0x8001;
  return (direction === 'down') === negative ? bits + 1 : bits - 1;
}
/** f16 bits of x rounded away from 0 (|half| ≥ |x|). */
const f16Away = (x: number) => f16Rounded(x, x < 0 ? 'down' : 'up');

const BLOCK = { Q8_0: [32, 34], Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210] } as const;

/** Quantizes `values` (a whole number of blocks) to `type`'s blocks, by the methods above. */
export function quantize(type: QuantType, values: ArrayLike<number>): Uint8Array {
  const [blockSize, typeSize] = BLOCK[type];
  if (values.length % blockSize !== 0) throw new Error(`${type} needs a multiple of ${blockSize} values, got ${values.length}`);
  const blocks = values.length / blockSize;
  const out = new Uint8Array(blocks * typeSize);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const x = Float32Array.from({ length: blockSize }, (_, i) => values[b * blockSize + i] as number);
    const at = b * typeSize;
    const block = out.subarray(at, at + typeSize);
    const setHalf = (offset: number, bits: number) => view.setUint16(at + offset, bits, true);
    switch (type) {
      case 'Q8_0': {
        const dBits = f16Rounded(Math.max(...Array.from(x, Math.abs)) / 127, 'up');
        setHalf(0, dBits);
        const d = f16ToF32(dBits);
        for (let j = 0; j < 32; j++) view.setInt8(at + 2 + j, d ? Math.round((x[j] as number) / d) : 0);
        break;
      }
      case 'Q4_0':
      case 'Q5_0': {
        const five = type === 'Q5_0';
        const half = five ? 16 : 8;
        let v = 0;
        for (const xi of x) if (Math.abs(xi) > Math.abs(v)) v = xi;
        const dBits = f16Away(v / -half);
        setHalf(0, dBits);
        const d = f16ToF32(dBits);
        const codes = Array.from(x, (xi) => (d ? Math.max(0, Math.min(2 * half - 1, Math.round(xi / d) + half)) : half));
        packSmall(block, five ? 6 : 2, codes, five);
        break;
      }
      case 'Q4_1':
      case 'Q5_1': {
        const five = type === 'Q5_1';
        const top = five ? 31 : 15;
        const mBits = f16Rounded(Math.min(...x), 'down');
        const m = f16ToF32(mBits);
        const dBits = f16Rounded((Math.max(...x) - m) / top, 'up');
        const d = f16ToF32(dBits);
        setHalf(0, dBits);
        setHalf(2, mBits);
        const codes = Array.from(x, (xi) => (d ? Math.max(0, Math.min(top, Math.round((xi - m) / d))) : 0));
        packSmall(block, five ? 8 : 4, codes, five);
        break;
      }
      case 'Q4_K':
      case 'Q5_K': {
        const five = type === 'Q5_K';
        const top = five ? 31 : 15;
        const subs = Array.from({ length: 8 }, (_, j) => x.subarray(32 * j, 32 * j + 32));
        const offsets = subs.map((s) => -Math.min(0, ...s));
        const dminBits = f16Rounded(Math.max(...offsets) / 63, 'up');
        const dmin = f16ToF32(dminBits);
        const lm = offsets.map((o) => (dmin ? Math.min(63, Math.ceil(o / dmin)) : 0));
        const steps = subs.map((s, j) => (Math.max(...s) + dmin * (lm[j] as number)) / top);
        const dBits = f16Rounded(Math.max(...steps) / 63, 'up');
        const d = f16ToF32(dBits);
        const ls = steps.map((s) => (d ? Math.min(63, Math.ceil(s / d)) : 0));
        setHalf(0, dBits);
        setHalf(2, dminBits);
        for (let j = 0; j < 8; j++) {
          const sc = ls[j] as number;
          const mn = lm[j] as number;
          if (j < 4) {
            block[4 + j] = sc;
            block[4 + j + 4] = mn;
          } else {
            block[4 + j + 4] = (sc & 15) | ((mn & 15) << 4);
            block[4 + j - 4] = (block[4 + j - 4] as number) | ((sc >> 4) << 6);
            block[4 + j] = (block[4 + j] as number) | ((mn >> 4) << 6);
          }
        }
        const qs = five ? 48 : 16;
        for (let j = 0; j < 8; j++) {
          const step = d * (ls[j] as number);
          const shift = dmin * (lm[j] as number);
          for (let l = 0; l < 32; l++) {
            const q = step ? Math.max(0, Math.min(top, Math.round(((x[32 * j + l] as number) + shift) / step))) : 0;
            const byte = qs + 32 * (j >> 1) + l;
            block[byte] = (block[byte] as number) | ((q & 15) << (4 * (j & 1)));
            if (five && q > 15) block[16 + l] = (block[16 + l] as number) | (1 << j);
          }
        }
        break;
      }
      case 'Q6_K': {
        const steps = Array.from({ length: 16 }, (_, j) => Math.max(...Array.from(x.subarray(16 * j, 16 * j + 16), Math.abs)) / 31);
        const dBits = f16Rounded(Math.max(...steps) / 127, 'up');
        const d = f16ToF32(dBits);
        const sc = steps.map((s) => (d ? Math.min(127, Math.ceil(s / d)) : 0));
        setHalf(208, dBits);
        for (let j = 0; j < 16; j++) view.setInt8(at + 192 + j, sc[j] as number);
        for (let e = 0; e < 256; e++) {
          const step = d * (sc[e >> 4] as number);
          const q = (step ? Math.max(-32, Math.min(31, Math.round((x[e] as number) / step))) : 0) + 32;
          const n = e >> 7;
          const k = (e >> 5) & 3;
          const l = e & 31;
          const lowAt = 64 * n + 32 * (k & 1) + l;
          block[lowAt] = (block[lowAt] as number) | ((q & 15) << (4 * (k >> 1)));
          const highAt = 128 + 32 * n + l;
          block[highAt] = (block[highAt] as number) | ((q >> 4) << (2 * k));
        }
        break;
      }
    }
  }
  return out;
}

/**
 * Packs the 32 codes of a Q4_0/Q4_1/Q5_0/Q5_1 block: nibbles at `qsAt` (element j low, j+16 high),
 * and for the 5-bit formats bit 4 of element i into bit i of the u32 just before them.
 */
function packSmall(block: Uint8Array, qsAt: number, codes: number[], five: boolean): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const lo = codes[j] as number;
    const hi = codes[j + 16] as number;
    block[qsAt + j] = (lo & 15) | ((hi & 15) << 4);
    if (lo & 16) qh |= 1 << j;
    if (hi & 16) qh |= 1 << (j + 16);
  }
  if (five) new DataView(block.buffer, block.byteOffset + qsAt - 4, 4).setUint32(0, qh >>> 0, true);
}
