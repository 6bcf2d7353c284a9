/** A ByteSource over a file on disk (Node): reads ranges through one file handle. */
import { constants, promises as fs, type Stats } from 'node:fs';
import { ModelFileError } from '../formats/errors.js';
import { checkRange, type ByteSource } from '../formats/source.js';

export interface FileSource extends ByteSource {
  close(): Promise<void>;
}

/** What a non-regular file is, for the message that refuses it. */
export function fileKind(stat: Stats): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a named pipe (FIFO)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** The error for a path that is not a regular file (pipes and devices never end or block on open). */
export function notRegularFile(path: string, stat: Stats): ModelFileError {
  return new ModelFileError(path, `is ${fileKind(stat)}, not a regular file; a model's files must be regular files`);
}

/**
 * Opens a regular file for reading. Anything else — a FIFO (whose open blocks until a writer
 * comes, and whose reads never end), a socket, a device — is refused: checked with stat before
 * opening, and again on the handle (opened non-blocking, so a FIFO swapped in between cannot
 * block the open).
 */
export async function openFileSource(path: string): Promise<FileSource> {
  let handle: fs.FileHandle;
  const cannot = (error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'is a folder, not a file' : String(code ?? error);
    return new ModelFileError(path, `cannot be opened (${why})`);
  };
  let before: Stats;
  try {
    before = await fs.stat(path);
  } catch (error) {
    throw cannot(error);
  }
  if (!before.isFile()) throw notRegularFile(path, before);
  try {
    handle = await fs.open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw cannot(error);
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw notRegularFile(path, stat);
  }
  return handleSource(path, handle, stat.size);
}

/** A FileSource reading ranges of an open file handle of `size` bytes (a short read is a ModelFileError naming `name`). */
export function handleSource(name: string, handle: fs.FileHandle, size: number): FileSource {
  const source: FileSource = {
    name,
    size,
    async read(offset, length) {
      checkRange(source, offset, length, 'read');
      const bytes = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
        if (bytesRead === 0) throw new ModelFileError(name, `ended at byte ${offset + done} while ${size} were expected: the file changed or is truncated`);
        done += bytesRead;
      }
      return bytes;
    },
    close: () => handle.close(),
  };
  return source;
}
