/** The URL of a library entry's file: the id travels in the path (hosts are lowercased and cannot hold ':'). */
export const modelBaseUrl = (id: string): string => `model://models/${encodeURIComponent(id)}`;

/**
 * `model://models/<id>/<file>`: serves the files of library entries to the renderer's engine, with HTTP
 * Range semantics (206 + Content-Range, 416 for every unsatisfiable range, HEAD, Accept-Ranges).
 *
 * What is served: only a file the model consists of (the names the library recorded for that id:
 * weights, config, tokenizer, studio.json), only from the folder recorded for it, and only when,
 * at the moment of serving, it is still a regular file of that folder — not a symbolic link, not
 * a hard link, not resolving outside the folder — opened without following links and checked
 * again through the open handle (main/model-files.ts). A model whose folder has gone (moved,
 * renamed, deleted) is a 404; nothing is ever looked up in another folder instead. A plain
 * Fetch-API handler (Request → Response), so Electron's protocol.handle and a Node HTTP server
 * serve it alike.
 */
import { Readable } from 'node:stream';
import { FileRuleError, isPlainName, openModelFile } from './model-files.js';

/** What may be served for one model id. */
export interface ServedModel {
  /** The model's folder, or null when it is no longer there. */
  folder: string | null;
  /** The model's own files, by name. */
  files: readonly string[];
  /** Where the model was opened from (named in messages). */
  path?: string;
}

export type ResolveModel = (id: string) => Promise<ServedModel | undefined>;

/** A folder model's entry (bundled models, tests) as model:// serves it: its files, from `entry.path`. */
export const servedFolder = (entry: { path?: string; files: readonly string[] }): ServedModel => ({
  folder: entry.path ?? null,
  files: entry.files,
  ...(entry.path ? { path: entry.path } : {}),
});

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers } });

/**
 * Parses a single `bytes=` range against a size: [start, end] inclusive, 'invalid' (answer 416),
 * or null (no header). Several ranges, malformed ones and any range of an empty file are 'invalid'.
 */
export function parseRange(header: string | null, size: number): [number, number] | 'invalid' | null {
  if (header === null) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'invalid';
  if (size === 0) return 'invalid'; // no byte of an empty file can be asked for (RFC 9110 §14.1.1)
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (!Number.isFinite(suffix) || suffix === 0) return 'invalid';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (!Number.isSafeInteger(start) || start >= size || start > end) return 'invalid';
  return [start, end];
}

const STATUS: Record<FileRuleError['kind'], number> = {
  name: 403, missing: 404, link: 403, 'not-regular': 403, 'hard-link': 403, outside: 403, changed: 403, unreadable: 403,
};

export function createModelHandler(resolve: ResolveModel): (request: Request) => Promise<Response> {
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
    const model = await resolve(id);
    if (!model) return text(404, `model://: unknown model id ${id}`);
    if (!isPlainName(name) || !model.files.includes(name)) return text(403, `model://: ${name} is not a file of model ${id}`);
    if (model.folder === null) {
      return text(404, `model://: the model ${model.path ?? id} is no longer where it was opened (moved, renamed or deleted); open it again`);
    }
    let opened;
    try {
      opened = await openModelFile(model.folder, name);
    } catch (error) {
      if (!(error instanceof FileRuleError)) return text(500, `model://: ${name}: cannot be read`);
      const why = error.kind === 'missing' ? 'the file has disappeared since it was opened' : error.problem;
      return text(STATUS[error.kind], `model://: ${error.file}: ${why}`);
    }
    const { handle, stat } = opened;
    const size = stat.size;
    const range = parseRange(request.headers.get('range'), size);
    const base = { 'Accept-Ranges': 'bytes', 'Content-Type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream' };
    if (range === 'invalid') {
      await handle.close();
      return new Response(null, { status: 416, headers: { ...base, 'Content-Range': `bytes */${size}` } });
    }
    const [start, end] = range ?? [0, size - 1];
    const length = range ? end - start + 1 : size;
    const headers: Record<string, string> = { ...base, 'Content-Length': String(length) };
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    const status = range ? 206 : 200;
    if (request.method === 'HEAD' || length === 0) {
      await handle.close();
      return new Response(null, { status, headers });
    }
    // The stream reads through the handle that was checked, and closes it when done.
    const stream = Readable.toWeb(handle.createReadStream({ start, end, autoClose: true })) as ReadableStream<Uint8Array>;
    return new Response(stream, { status, headers });
  };
}
