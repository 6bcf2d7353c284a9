/** CPU references of app/kernels/int8-gemm.ts: row quantization as fp32 does it, the rows' Hadamard rotation, and the exact int8 product. */

/** round() as WGSL does it: halfway cases to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The codes [rows, cols] and scales [rows] of quantizeRowsI8, in fp32 arithmetic (127 / max taken in fp32). */
export function quantizeRowsRef(x: Float32Array, rows: number, cols: number): { codes: Int8Array; scales: Float32Array } {
  const codes = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(x[r * cols + c] as number));
    const inv = max > 0 ? Math.fround(127 / max) : 0;
    scales[r] = Math.fround(max / 127);
    for (let c = 0; c < cols; c++) codes[r * cols + c] = Math.max(-127, Math.min(127, roundHalfEven(Math.fround((x[r * cols + c] as number) * inv))));
  }
  return { codes, scales };
}

/** Y [M, N] = sa[m]·sw[n]·Σ_k qa[m, k]·qw[n, k] (the sums exact; float64 scaling). */
export function int8GemmRef(qa: Int8Array, sa: ArrayLike<number>, qw: Int8Array, sw: ArrayLike<number>, M: number, N: number, K: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += (qa[m * K + k] as number) * (qw[n * K + k] as number);
      y[m * N + n] = acc * (sa[m] as number) * (sw[n] as number);
    }
  }
  return y;
}

/** Unpacks codes [rows_pad, words] (4 per i32 word) into [rows, cols] int8. */
export function unpackCodes(words: Int32Array, rows: number, cols: number, wordsPerRow: number): Int8Array {
  const out = new Int8Array(rows * cols);
  const bytes = new Int8Array(words.buffer, words.byteOffset, words.byteLength);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = bytes[r * wordsPerRow * 4 + c] as number;
  return out;
}

/** Sylvester-order Hadamard butterflies over each block of `block` values of `out`, in place; `round` rounds each sum. */
function butterflies(out: Float32Array | Float64Array, block: number, round: (v: number) => number): void {
  for (let b0 = 0; b0 < out.length; b0 += block) {
    for (let h = 1; h < block; h *= 2) {
      for (let i = b0; i < b0 + block; i++) {
        if (((i - b0) & h) !== 0) continue;
        const a = out[i] as number;
        const c = out[i + h] as number;
        out[i] = round(a + c);
        out[i + h] = round(a - c);
      }
    }
  }
}

/**
 * Each row of X [rows, cols] times the block-diagonal Hadamard matrix of `block` scaled by
 * 1/√block (orthonormal), in float64; block 0: a copy. The rotation quantize_rot's codes and
 * scales stand for.
 */
export function hadamardRows(x: ArrayLike<number>, rows: number, cols: number, block: number): Float64Array {
  const out = Float64Array.from({ length: rows * cols }, (_, i) => x[i] as number);
  if (block === 0) return out;
  butterflies(out, block, (v) => v);
  const scale = 1 / Math.sqrt(block);
  return out.map((v) => v * scale);
}

/**
 * What quantize_rot quantizes: each row of X (rounded to fp32) times the block-diagonal ±1
 * Hadamard matrix of `block`, unscaled, with every butterfly's sum rounded to fp32 in the
 * shader's order; block 0: X in fp32.
 */
export function hadamardRowsF32(x: ArrayLike<number>, rows: number, cols: number, block: number): Float32Array {
  const out = Float32Array.from({ length: rows * cols }, (_, i) => x[i] as number);
  if (block !== 0) butterflies(out, block, Math.fround);
  return out;
}
