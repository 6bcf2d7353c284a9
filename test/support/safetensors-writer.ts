/** Writes safetensors bytes for tests (F32 / I64 tensors in the order given). */
export interface TestTensor {
  dtype: 'F32' | 'I64' | 'F16' | 'BF16';
  shape: number[];
  data: ArrayLike<number> | ArrayLike<bigint>;
}

export function writeSafetensors(tensors: Record<string, TestTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    let bytes: Uint8Array;
    if (t.dtype === 'F32') bytes = new Uint8Array(Float32Array.from(t.data as ArrayLike<number>).buffer);
    else if (t.dtype === 'I64') bytes = new Uint8Array(BigInt64Array.from(Array.from(t.data as ArrayLike<number>, (x) => BigInt(x))).buffer);
    else bytes = new Uint8Array(Uint16Array.from(t.data as ArrayLike<number>).buffer); // raw 16-bit patterns
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    chunks.push(bytes);
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Rewrites the JSON header of a safetensors file (keeping the data), for corruption tests. */
export function withHeader(file: Uint8Array, edit: (header: Record<string, unknown>) => unknown): Uint8Array {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, unknown>;
  const json = new TextEncoder().encode(JSON.stringify(edit(header) ?? header));
  const out = new Uint8Array(8 + json.byteLength + file.byteLength - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(file.subarray(8 + n), 8 + json.byteLength);
  return out;
}
