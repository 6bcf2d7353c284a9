/** The URL of a library entry's file: the id travels in the path (hosts are lowercased and cannot hold ':'). */
export const modelBaseUrl = (id: string): string => `model://models/${encodeURIComponent(id)}`;

/**
 * `model://models/<id>/<file>`: serves the files of library entries to the renderer's engine, with HTTP
 * Range semantics (206 + Content-Range, 416 for unsatisfiable ranges, HEAD, Accept-Ranges).
 * Only a file listed in the entry with that id is served; ids resolve to allow-listed paths, so
 * `..`, absolute paths, unknown ids and unlisted files are refused. A plain Fetch-API handler
 * (Request → Response), so Electron's protocol.handle and a Node HTTP server serve it alike.
 */
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ModelEntry } from '../app/contract.js';

export type ResolveEntry = (id: string) => Promise<ModelEntry | undefined>;

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers } });

/** Parses a single `bytes=` range against a size: [start, end] inclusive, 'invalid', or null (no header). */
export function parseRange(header: string | null, size: number): [number, number] | 'invalid' | null {
  if (header === null) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'invalid';
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'invalid';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || start > end) return 'invalid';
  return [start, end];
}

export function createModelHandler(resolve: ResolveEntry): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return text(405, 'model://: only GET and HEAD', { Allow: 'GET, HEAD' });
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return text(400, 'model://: malformed URL');
    }
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
    } catch {
      return text(400, 'model://: malformed URL');
    }
    if (url.host !== 'models' || parts.length !== 2) return text(404, 'model://: expected model://models/<id>/<file>');
    const [id, name] = parts as [string, string];
    const entry = await resolve(id);
    if (!entry?.path) return text(404, `model://: unknown model id ${id}`);
    if (!entry.files.includes(name) || name !== path.basename(name)) return text(403, `model://: ${name} is not a file of model ${id}`);
    const dir = (await fs.stat(entry.path).catch(() => null))?.isDirectory() ? entry.path : path.dirname(entry.path);
    const file = path.join(dir, name);
    let stat;
    try {
      stat = await fs.stat(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return text(code === 'ENOENT' ? 404 : 403, `model://: ${file}: ${code === 'ENOENT' ? 'the file has disappeared since it was opened' : `cannot be read (${code})`}`);
    }
    const size = stat.size;
    const range = parseRange(request.headers.get('range'), size);
    const base = { 'Accept-Ranges': 'bytes', 'Content-Type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream' };
    if (range === 'invalid') return new Response(null, { status: 416, headers: { ...base, 'Content-Range': `bytes */${size}` } });
    const [start, end] = range ?? [0, size - 1];
    const length = size === 0 ? 0 : end - start + 1;
    const headers: Record<string, string> = { ...base, 'Content-Length': String(length) };
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    const status = range ? 206 : 200;
    if (request.method === 'HEAD' || length === 0) return new Response(null, { status, headers });
    const stream = Readable.toWeb(createReadStream(file, { start, end })) as ReadableStream<Uint8Array>;
    return new Response(stream, { status, headers });
  };
}
