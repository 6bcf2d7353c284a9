/** ModelFiles over a folder (or a single file) on disk. */
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { ModelFileError } from '../formats/errors.js';
import { readAllText, type ModelFiles } from '../formats/model-files.js';
import { notRegularFile, openFileSource, type FileSource } from './file-source.js';
import { MODEL_SIDE_FILES } from '../library/model-files.js';

/** A model path made absolute and stat'ed; a ModelFileError naming it when it cannot be. */
export async function statModelPath(target: string): Promise<{ resolved: string; stat: Stats }> {
  const resolved = path.resolve(target);
  try {
    return { resolved, stat: await fs.stat(resolved) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelFileError(resolved, code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'permission denied' : `cannot be opened (${code})`);
  }
}

export async function folderModelFiles(target: string): Promise<ModelFiles & { dir: string; close(): Promise<void> }> {
  const { resolved, stat } = await statModelPath(target);
  if (!stat.isDirectory() && !stat.isFile()) throw notRegularFile(resolved, stat);
  const dir = stat.isDirectory() ? resolved : path.dirname(resolved);
  const only = stat.isDirectory() ? null : path.basename(resolved);
  const list = async () => {
    if (only) {
      // A single weights file: its folder's config.json (or params.json), tokenizer files, generation_config.json and shard index belong to it.
      const siblings = await fs.readdir(dir).catch(() => [] as string[]);
      return [only, ...siblings.filter((n) => n !== 'studio.json' && MODEL_SIDE_FILES.includes(n))];
    }
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (error) {
      throw new ModelFileError(dir, `cannot be listed (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    return entries.filter((e) => e.isFile()).map((e) => e.name).sort();
  };
  return {
    ...openedModelFiles(only ? resolved : dir, dir, list, (file) => {
      if (file.includes('/') || file.includes('\\') || file === '..') throw new ModelFileError(path.join(dir, file), 'not a file of this model');
      return openFileSource(path.join(dir, file));
    }),
    dir,
  };
}

/**
 * ModelFiles named `name` over the files of folder `dir` that `list` gives, each opened by `openOne`
 * (which applies the caller's rules); every source still open is closed by `close()`.
 */
export function openedModelFiles(
  name: string,
  dir: string,
  list: () => Promise<string[]>,
  openOne: (file: string) => Promise<FileSource>,
): ModelFiles & { close(): Promise<void> } {
  const open: FileSource[] = [];
  const openFile = async (file: string) => {
    const source = await openOne(file);
    open.push(source);
    return source;
  };
  return {
    name,
    list,
    pathOf: (file) => path.join(dir, file),
    open: openFile,
    async readText(file) {
      const source = await openFile(file);
      try {
        return await readAllText(source);
      } finally {
        open.splice(open.indexOf(source), 1);
        await source.close();
      }
    },
    async close() {
      await Promise.all(open.splice(0).map((s) => s.close()));
    },
  };
}
