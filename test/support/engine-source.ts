/**
 * A model folder on disk as the engine's 'files' load source (what a browser's file picker hands
 * the worker): the named files read into File objects. The folder's name is the source's folder
 * unless `folder` is given.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export function filesSource(dir: string, names: readonly string[] = ['config.json', 'model.safetensors'], folder = path.basename(dir)) {
  return {
    kind: 'files' as const,
    folder,
    files: names.map((name) => new File([readFileSync(path.join(dir, name))], name)),
  };
}
