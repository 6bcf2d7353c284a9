/**
 * The rules for reading a model's files from disk, shared by the library (when a model is opened)
 * and model:// (every time a file is served): a model's file is a regular file directly inside
 * the model's folder — not a symbolic link, not a hard link (a second name of a file that may
 * live anywhere), not a folder, FIFO or device — and is opened without following links, then
 * checked again through the open handle (same file as the one checked by name), so that a file
 * swapped for a link between the check and the read is refused rather than followed.
 */
import { constants, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { ModelFileError } from '../app/formats/errors.js';
import type { ModelFiles } from '../app/formats/model-files.js';
import { handleSource, type FileSource } from '../app/node/file-source.js';
import { openedModelFiles } from '../app/node/folder.js';
import { isModelFileName, MODEL_SIDE_FILES } from '../app/library/model-files.js';

/** At most this many candidate files (weights, configs) in one model folder. */
export const MAX_MODEL_FILES = 4096;

export type FileProblem = 'name' | 'missing' | 'link' | 'not-regular' | 'hard-link' | 'outside' | 'changed' | 'unreadable';

export class FileRuleError extends ModelFileError {
  constructor(
    file: string,
    readonly kind: FileProblem,
    problem: string,
  ) {
    super(file, problem);
    this.name = 'FileRuleError';
  }
}

/** A file name that names one entry of a folder: no separators, no `.`/`..`, no NUL. */
export function isPlainName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !/[/\\\0]/.test(name) && name === path.basename(name);
}

const code = (error: unknown) => (error as NodeJS.ErrnoException).code ?? String(error);

function requireRegular(file: string, stat: Stats): void {
  if (stat.isSymbolicLink()) {
    throw new FileRuleError(file, 'link', 'is a symbolic link; only regular files inside the model folder are read (copy the file into the folder)');
  }
  if (!stat.isFile()) throw new FileRuleError(file, 'not-regular', 'is not a regular file');
  if (stat.nlink > 1) {
    throw new FileRuleError(file, 'hard-link', `has ${stat.nlink} hard links (other names elsewhere); only files of their own are read (copy the file)`);
  }
}

/**
 * Checks that `name` may be read as a file of the model in `folder` (see the module comment);
 * returns its lstat. `realFolder` (realpath of `folder`) may be passed when already known.
 */
export async function checkModelFile(folder: string, name: string, realFolder?: string): Promise<Stats> {
  const file = path.join(folder, name);
  if (!isPlainName(name)) throw new FileRuleError(file, 'name', 'is not a file name inside the model folder');
  let stat: Stats;
  try {
    stat = await fs.lstat(file);
  } catch (error) {
    const c = code(error);
    if (c === 'ENOENT' || c === 'ENOTDIR') throw new FileRuleError(file, 'missing', 'not found');
    throw new FileRuleError(file, 'unreadable', `cannot be read (${c})`);
  }
  requireRegular(file, stat);
  let real: string;
  try {
    real = await fs.realpath(file);
    realFolder ??= await fs.realpath(folder);
  } catch (error) {
    throw new FileRuleError(file, 'unreadable', `cannot be resolved (${code(error)})`);
  }
  if (real !== path.join(realFolder, name)) throw new FileRuleError(file, 'outside', 'resolves to a file outside the model folder');
  return stat;
}

/**
 * Opens a checked model file for reading without following links, and checks the open handle is
 * the file that was checked. The caller closes the handle.
 */
export async function openModelFile(folder: string, name: string): Promise<{ handle: fs.FileHandle; stat: Stats; file: string }> {
  const file = path.join(folder, name);
  const checked = await checkModelFile(folder, name);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (error) {
    const c = code(error);
    if (c === 'ELOOP') throw new FileRuleError(file, 'link', 'became a symbolic link');
    if (c === 'ENOENT') throw new FileRuleError(file, 'missing', 'not found');
    throw new FileRuleError(file, 'unreadable', `cannot be opened (${c})`);
  }
  try {
    const stat = await handle.stat();
    requireRegular(file, stat);
    if (stat.ino !== checked.ino || stat.dev !== checked.dev) throw new FileRuleError(file, 'changed', 'was replaced while it was being opened');
    return { handle, stat, file };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

export interface VettedFile {
  name: string;
  size: number;
  mtimeMs: number;
}

export interface ModelListing {
  /** The path the user chose, made absolute with links resolved. */
  resolved: string;
  /** The folder the model's files are in (`resolved` itself, or the folder of a single weights file). */
  folder: string;
  /** When a single weights file was chosen: its name. */
  single: string | null;
  /** The candidate files (weights, config, tokenizer…), checked, sorted by name. */
  files: VettedFile[];
}

/** Names of the folder's entries that may belong to a model (every other file is never looked at, not even stat'ed). */
async function candidateNames(folder: string): Promise<string[]> {
  const entries = await fs.readdir(folder, { withFileTypes: true });
  return entries.filter((e) => !e.isDirectory() && isModelFileName(e.name)).map((e) => e.name);
}

/**
 * What a chosen path (a model folder or a weights file) holds, as far as a model goes: the
 * folder, and each candidate file checked by `checkModelFile`. A bad candidate refuses the model
 * (naming the file), so that the library never records a file model:// would refuse to serve.
 */
export async function listModel(target: string): Promise<ModelListing> {
  const absolute = path.resolve(target);
  let resolved: string;
  let stat: Stats;
  try {
    resolved = await fs.realpath(absolute);
    stat = await fs.stat(resolved);
  } catch (error) {
    const c = code(error);
    throw new ModelFileError(absolute, c === 'ENOENT' ? 'not found' : c === 'EACCES' ? 'permission denied' : `cannot be opened (${c})`);
  }
  const folder = stat.isDirectory() ? resolved : path.dirname(resolved);
  const single = stat.isDirectory() ? null : path.basename(resolved);
  let names: string[];
  try {
    names = single ? [single, ...(await candidateNames(folder)).filter((n) => n !== single && MODEL_SIDE_FILES.includes(n))] : await candidateNames(folder);
  } catch (error) {
    throw new ModelFileError(folder, `cannot be listed (${code(error)})`);
  }
  if (names.length > MAX_MODEL_FILES) {
    throw new ModelFileError(folder, `holds ${names.length} weights and config files; one model may have at most ${MAX_MODEL_FILES}`);
  }
  const realFolder = await fs.realpath(folder);
  const files: VettedFile[] = [];
  for (const name of [...new Set(names)].sort()) {
    const s = await checkModelFile(folder, name, realFolder);
    files.push({ name, size: s.size, mtimeMs: s.mtimeMs });
  }
  return { resolved, folder, single, files };
}

/** A ByteSource over a checked model file (see `openModelFile`). */
async function openSource(folder: string, name: string): Promise<FileSource> {
  const { handle, stat, file } = await openModelFile(folder, name);
  return handleSource(file, handle, stat.size);
}

/** ModelFiles over exactly the listed files (inspection sees nothing else), each opened by the rules above. */
export function listedModelFiles(listing: ModelListing): ModelFiles & { close(): Promise<void> } {
  const names = listing.files.map((f) => f.name);
  return openedModelFiles(listing.single ? listing.resolved : listing.folder, listing.folder, async () => [...names], (name) => {
    if (!names.includes(name)) throw new ModelFileError(path.join(listing.folder, name), 'not a file of this model');
    return openSource(listing.folder, name);
  });
}
