/**
 * A model's files, wherever they live: a folder on disk (Node), a base URL served with Range
 * (model:// on the desktop, bundled/ in web mode), or File objects (web mode). Parsers see only
 * this interface and ByteSources.
 */
import { ModelFileError } from './errors.js';
import { blobSource, httpSource, type BlobLike, type ByteSource, type FetchLike } from './source.js';

export interface ModelFiles {
  /** Shown in messages: the folder path, URL or the model's name. */
  readonly name: string;
  /** File names available (one level, no folders). */
  list(): Promise<string[]>;
  /** How a file of the model is named in messages (its path or URL). */
  pathOf(file: string): string;
  open(file: string): Promise<ByteSource>;
  readText(file: string): Promise<string>;
}

/** Largest JSON file (config, index, tokenizer) read whole. */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

async function readAllText(source: ByteSource): Promise<string> {
  if (source.size > MAX_JSON_BYTES) throw new ModelFileError(source.name, `is ${source.size} bytes, too large for a JSON file`);
  const bytes = await source.read(0, source.size);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ModelFileError(source.name, 'is not UTF-8 text');
  }
}

/** Files served under a base URL; `files` is the list the server announced (from the library entry). */
export function urlModelFiles(baseUrl: string, files: string[], fetchFn: FetchLike): ModelFiles {
  const url = (file: string) => `${baseUrl.replace(/\/$/, '')}/${encodeURIComponent(file)}`;
  const open = (file: string) => {
    if (!files.includes(file)) throw new ModelFileError(`${baseUrl}/${file}`, 'no such file in this model');
    return httpSource(url(file), fetchFn);
  };
  return {
    name: baseUrl,
    list: async () => [...files],
    pathOf: url,
    open,
    readText: async (file) => readAllText(await open(file)),
  };
}

/** Files the user picked or dropped (web mode); `folder` prefixes names in messages when known. */
export function blobModelFiles(folder: string, blobs: (BlobLike & { name: string })[]): ModelFiles {
  const byName = new Map(blobs.map((b) => [b.name, b]));
  const shown = (file: string) => (folder ? `${folder}/${file}` : file);
  const open = async (file: string) => {
    const blob = byName.get(file);
    if (!blob) throw new ModelFileError(shown(file), 'no such file among the opened files');
    return blobSource(blob, shown(file));
  };
  return {
    name: folder || 'the opened files',
    list: async () => [...byName.keys()],
    pathOf: shown,
    open,
    readText: async (file) => readAllText(await open(file)),
  };
}

export { readAllText };
