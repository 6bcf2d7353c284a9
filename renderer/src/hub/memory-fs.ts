/**
 * The download engine's file system in the page (web mode): files in memory, hashed with
 * WebCrypto. Partial files live as long as the page (a pause and resume work; a reload starts
 * over); finished models are handed to web mode's store as File objects (kept in IndexedDB).
 */
import type { DownloadFs } from '../../../app/hub/download';

export interface MemoryFs extends DownloadFs {
  /** A finished file's bytes, or undefined. */
  bytes(path: string): Uint8Array | undefined;
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');

export function memoryDownloadFs(freeBytes: () => Promise<number | null> = async () => null): MemoryFs {
  const files = new Map<string, { buf: Uint8Array; size: number }>();
  const texts = new Map<string, string>();
  const data = (path: string) => {
    const f = files.get(path);
    return f ? f.buf.subarray(0, f.size) : undefined;
  };
  return {
    async size(path) {
      return files.get(path)?.size ?? null;
    },
    async readText(path) {
      return texts.get(path) ?? null;
    },
    async writeText(path, text) {
      texts.set(path, text);
    },
    async openPartial(path) {
      if (!files.has(path)) files.set(path, { buf: new Uint8Array(0), size: 0 });
      return {
        async write(bytes, position) {
          const f = files.get(path);
          if (!f) throw new Error(`${path} was removed while it was written`);
          const end = position + bytes.length;
          if (end > f.buf.length) {
            const grown = new Uint8Array(Math.max(end, f.buf.length * 2));
            grown.set(f.buf.subarray(0, f.size));
            f.buf = grown;
          }
          f.buf.set(bytes, position);
          f.size = Math.max(f.size, end);
        },
        async close() {},
      };
    },
    async hash(path, kind) {
      const bytes = data(path) ?? new Uint8Array(0);
      if (kind === 'sha256') return hex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
      const header = new TextEncoder().encode(`blob ${bytes.length}\0`);
      const all = new Uint8Array(header.length + bytes.length);
      all.set(header);
      all.set(bytes, header.length);
      return hex(await crypto.subtle.digest('SHA-1', all));
    },
    async rename(from, to) {
      const f = files.get(from);
      if (f) {
        files.delete(from);
        files.set(to, { buf: f.buf.slice(0, f.size), size: f.size });
      } else if (texts.has(from)) {
        texts.set(to, texts.get(from) as string);
        texts.delete(from);
      }
    },
    async remove(path) {
      files.delete(path);
      texts.delete(path);
    },
    freeBytes: () => freeBytes(),
    location: (path) => path,
    bytes: data,
  };
}
