/** Reads a golden fixture's golden.safetensors (test/fixtures/golden/<case>/), tensor by tensor. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readSafetensorsHeader, readTensorBytes, toFloat32, toIntegers } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';

export async function readGolden(dir: string) {
  const bytes = readFileSync(path.join(dir, 'golden.safetensors'));
  const source = memorySource(`${dir}/golden.safetensors`, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const header = await readSafetensorsHeader(source);
  const tensor = (name: string) => {
    const t = header.tensors.get(name);
    if (!t) throw new Error(`golden.safetensors has no ${name}`);
    return t;
  };
  return {
    f32: async (name: string) => toFloat32(tensor(name), await readTensorBytes(source, tensor(name))),
    ints: async (name: string) => toIntegers(tensor(name), await readTensorBytes(source, tensor(name))),
  };
}
