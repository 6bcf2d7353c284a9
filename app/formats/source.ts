/**
 * A byte-range source: the one way model files are read, so the same parsers run on a Node file
 * handle, on `fetch` with Range (model:// on the desktop, HTTP in web mode) and on a File/Blob.
 */
import { ModelFileError } from './errors.js';

export interface ByteSource {
  /** Shown in errors: a path, a URL or a file name. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset`; rejects if the source cannot give them all. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Checks a range against the source's size, throwing a ModelFileError that names the file. */
export function checkRange(source: ByteSource, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new ModelFileError(source.name, `${what}: invalid byte range ${offset}+${length}`);
  }
  if (offset + length > source.size) {
    throw new ModelFileError(
      source.name,
      `${what}: bytes ${offset}–${offset + length} lie past the end of the file (${source.size} bytes): the file is truncated`,
    );
  }
}

/** A source over bytes already in memory (tests, small files). */
export function memorySource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(offset, length) {
      checkRange(this, offset, length, 'read');
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** Minimal shape of a Blob/File (browser or Node ≥ 20), so app/ needs no DOM types. */
export interface BlobLike {
  readonly size: number;
  readonly name?: string;
  slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

export function blobSource(blob: BlobLike, name = blob.name ?? 'file'): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      checkRange(this, offset, length, 'read');
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/** Minimal `fetch` shape used for Range requests. */
export type FetchLike = (
  url: string,
  init?: { method?: string; headers?: Record<string, string> },
) => Promise<{ ok: boolean; status: number; headers: { get(name: string): string | null }; arrayBuffer(): Promise<ArrayBuffer> }>;

/** A source over HTTP(S) or model:// with Range requests; the size comes from a HEAD request. */
export async function httpSource(url: string, fetchFn: FetchLike): Promise<ByteSource> {
  const head = await fetchFn(url, { method: 'HEAD' });
  if (!head.ok) throw new ModelFileError(url, `cannot be read (HTTP ${head.status})`);
  const size = Number(head.headers.get('content-length'));
  if (!Number.isSafeInteger(size) || size < 0) throw new ModelFileError(url, 'the server did not report the file size');
  const source: ByteSource = {
    name: url,
    size,
    async read(offset, length) {
      checkRange(source, offset, length, 'read');
      if (length === 0) return new Uint8Array(0);
      const response = await fetchFn(url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
      if (response.status !== 206 && !(response.status === 200 && offset === 0 && length === size)) {
        throw new ModelFileError(url, `range request ${offset}+${length} answered HTTP ${response.status}`);
      }
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.byteLength !== length) {
        throw new ModelFileError(url, `range request ${offset}+${length} returned ${bytes.byteLength} bytes`);
      }
      return bytes;
    },
  };
  return source;
}
