/** Reads tensors whole, decoded to float32: for references, tests and small models only. */
import { tensorDecoder } from './decode.js';
import type { ModelFiles } from './model-files.js';
import type { ByteSource } from './source.js';
import { checkRange } from './source.js';
import type { TensorLocation } from './tensor-location.js';

export async function readAllTensorsF32(files: ModelFiles, inspection: { tensors: ReadonlyMap<string, TensorLocation> }): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const sources = new Map<string, ByteSource>();
  for (const t of inspection.tensors.values()) {
    let source = sources.get(t.file);
    if (!source) {
      source = await files.open(t.file);
      sources.set(t.file, source);
    }
    checkRange(source, t.offset, t.byteLength, `tensor "${t.name}"`);
    out.set(t.name, tensorDecoder(t).decode(await source.read(t.offset, t.byteLength)));
  }
  return out;
}
