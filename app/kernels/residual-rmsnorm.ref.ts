/** CPU reference of residual-rmsnorm (float64 accumulation). */
export function residualRmsNormRef(
  hidden: Float32Array,
  residualIn: Float32Array | null,
  weight: Float32Array,
  rows: number,
  cols: number,
  eps: number,
  scales: { hidden?: number; out?: number } = {},
): { residual: Float64Array; output: Float64Array } {
  const hs = scales.hidden ?? 1;
  const os = scales.out ?? 1;
  const residual = new Float64Array(rows * cols);
  const output = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let sumSq = 0;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const value = (hidden[i] ?? 0) * hs + (residualIn ? (residualIn[i] ?? 0) : 0);
      residual[i] = value;
      sumSq += value * value;
    }
    const scale = 1 / Math.sqrt(sumSq / cols + eps);
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      output[i] = (residual[i] ?? 0) * scale * (weight[c] ?? 0) * os;
    }
  }
  return { residual, output };
}
