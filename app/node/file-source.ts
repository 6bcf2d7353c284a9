/** A ByteSource over a file on disk (Node): reads ranges through one file handle. */
import { promises as fs } from 'node:fs';
import { ModelFileError } from '../formats/errors.js';
import { checkRange, type ByteSource } from '../formats/source.js';

export interface FileSource extends ByteSource {
  close(): Promise<void>;
}

export async function openFileSource(path: string): Promise<FileSource> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'is a folder, not a file' : String(code ?? error);
    throw new ModelFileError(path, `cannot be opened (${why})`);
  }
  const { size } = await handle.stat();
  const source: FileSource = {
    name: path,
    size,
    async read(offset, length) {
      checkRange(source, offset, length, 'read');
      const bytes = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
        if (bytesRead === 0) throw new ModelFileError(path, `ended at byte ${offset + done} while ${size} were expected: the file changed or is truncated`);
        done += bytesRead;
      }
      return bytes;
    },
    close: () => handle.close(),
  };
  return source;
}
