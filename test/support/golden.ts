/** Reads a golden fixture's golden.safetensors (test/fixtures/golden/<case>/), tensor by tensor. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { inspectModel } from '../../app/arch/inspect';
import { readSafetensorsHeader, readTensorBytes, toFloat32, toIntegers } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import type { GpuContext } from '../../app/gpu/context';
import { loadWeights } from '../../app/model/loader';
import { folderModelFiles } from '../../app/node/folder';

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

/** A golden case in `dir`: its model (inspected, its weights on the GPU), its golden tensors and its input ids. */
export async function openGoldenModel(gpu: GpuContext, dir: string) {
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  const weights = await loadWeights(gpu, files, inspection);
  await files.close();
  const golden = await readGolden(dir);
  return { inspection, weights, golden, ids: await golden.ints('input_ids') };
}
