/** ModelFiles over bytes in memory, for in-process tests of inspection (no disk, no fetch). */
import { ModelFileError } from '../../app/formats/errors';
import { readAllText, type ModelFiles } from '../../app/formats/model-files';
import { memorySource } from '../../app/formats/source';
import { canonicalConfig } from '../../app/arch/registry';
import { expectedTensors } from '../../app/arch/tensors';
import { writeSafetensors, type TestTensor } from './safetensors-writer';
import { TINY_CONFIG } from './tiny-model';

export function memoryModelFiles(folder: string, files: Record<string, Uint8Array | string>): ModelFiles {
  const bytes = new Map(Object.entries(files).map(([name, b]) => [name, typeof b === 'string' ? new TextEncoder().encode(b) : b]));
  const pathOf = (file: string) => `${folder}/${file}`;
  const open = async (file: string) => {
    const b = bytes.get(file);
    if (!b) throw new ModelFileError(pathOf(file), 'no such file');
    return memorySource(pathOf(file), b);
  };
  return {
    name: folder,
    list: async () => [...bytes.keys()].sort(),
    pathOf,
    open,
    readText: async (file) => readAllText(await open(file)),
  };
}

/** config.json and model.safetensors of a valid model for `weightsConfig` (sine values), with `config` as its config.json text or object. */
export function tinyModelBytes(config: Record<string, unknown> | string, weightsConfig: Record<string, unknown> = TINY_CONFIG): Record<string, Uint8Array | string> {
  const canonical = canonicalConfig('config.json', weightsConfig);
  const tensors: Record<string, TestTensor> = {};
  for (const spec of expectedTensors(canonical, 'backbone.embeddings.weight')) {
    if (spec.optional) continue;
    const n = spec.shape.reduce((a, b) => a * b, 1);
    tensors[spec.name] = { dtype: 'F32', shape: spec.shape, data: Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1)) };
  }
  return { 'config.json': typeof config === 'string' ? config : JSON.stringify(config), 'model.safetensors': writeSafetensors(tensors) };
}
