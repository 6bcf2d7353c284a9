/** CPU reference of embedding: out[t, :] = table[min(ids[t], V - 1), :], as the shader clamps. */
export function embeddingRef(ids: Uint32Array, table: Float32Array, vocab: number, dim: number): Float32Array {
  const out = new Float32Array(ids.length * dim);
  ids.forEach((id, t) => {
    const row = Math.min(id, vocab - 1);
    out.set(table.subarray(row * dim, (row + 1) * dim), t * dim);
  });
  return out;
}
