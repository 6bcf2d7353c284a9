/** CPU references of app/kernels/int8-gemm.ts: row quantization as fp32 does it, and the exact int8 product. */

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
