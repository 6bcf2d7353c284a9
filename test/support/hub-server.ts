/**
 * A Hugging Face Hub of our own for the tests: two real HTTP servers on 127.0.0.1 (random ports).
 * The "hub" serves model info, the file tree, search and `resolve` (LFS files: a 302 to the second
 * server, the "CDN", with X-Linked-Size / X-Linked-Etag / X-Repo-Commit; other files: the bytes,
 * with their git blob id as ETag); the CDN serves the bytes with Range. Both log every request's
 * headers. Faults are set per test: 429 with Retry-After, a dropped connection after N bytes, a
 * flipped byte, a stalled body. A gated repo answers 401 without the right token. CORS headers on
 * every answer, for web mode.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FixtureRepo {
  repo: string;
  commit: string;
  files: Record<string, Uint8Array>;
  gated?: boolean;
  license?: string;
  modelType?: string;
  tags?: string[];
}

export interface HubFaults {
  /** Answer this many resolve requests (of any file) with 429 first. */
  rateLimit?: { times: number; retryAfter: string };
  /** Close the connection at this byte of the file (at once for a range starting there), `times` times. */
  drop?: { file: string; afterBytes: number; times: number };
  /** Send this file with the byte at `offset` flipped. */
  flip?: { file: string; offset: number };
  /** Send this many bytes of the file, then nothing until the client goes away. */
  stall?: { file: string; afterBytes: number };
}

export interface LoggedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface HubServer {
  endpoint: string;
  cdn: string;
  hubRequests: LoggedRequest[];
  cdnRequests: LoggedRequest[];
  faults: HubFaults;
  token: string;
  close(): Promise<void>;
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
export const gitOid = (bytes: Uint8Array): string => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const isLfs = (file: string) => /\.(safetensors|gguf|bin)$/.test(file);

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Authorization, Range',
  'Access-Control-Expose-Headers': 'ETag, Content-Range, Content-Length, X-Linked-Size, X-Linked-Etag, X-Repo-Commit, Link, Retry-After, Location',
};

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

/** Logs a request; answers a CORS preflight (true: nothing more to do). */
function logged(log: LoggedRequest[], req: IncomingMessage, res: ServerResponse): boolean {
  log.push({ method: req.method ?? 'GET', url: req.url ?? '', headers: req.headers });
  if (req.method !== 'OPTIONS') return false;
  res.writeHead(204, CORS);
  res.end();
  return true;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...CORS, 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

export async function startHubServer(repos: FixtureRepo[], token = 'hf_test_token'): Promise<HubServer> {
  const hubRequests: LoggedRequest[] = [];
  const cdnRequests: LoggedRequest[] = [];
  const faults: HubFaults = {};
  const byName = new Map(repos.map((r) => [r.repo, r]));
  const byHash = new Map<string, { repo: FixtureRepo; file: string; bytes: Uint8Array }>();
  for (const repo of repos) for (const [file, bytes] of Object.entries(repo.files)) byHash.set(sha256(bytes), { repo, file, bytes });
  let dropped = 0;
  const open = new Set<ServerResponse>();

  /** The bytes of a file with Range, ETag and the faults. */
  function sendBytes(req: IncomingMessage, res: ServerResponse, file: string, bytes: Uint8Array, headers: Record<string, string>): void {
    let start = 0;
    let end = bytes.length - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length) {
        res.writeHead(416, { ...CORS, 'Content-Range': `bytes */${bytes.length}` });
        res.end();
        return;
      }
      status = 206;
    }
    let body = Buffer.from(bytes.subarray(start, end + 1));
    if (faults.flip?.file === file && faults.flip.offset >= start && faults.flip.offset <= end) {
      body = Buffer.from(body);
      body[faults.flip.offset - start] = (body[faults.flip.offset - start] as number) ^ 0xff;
    }
    res.writeHead(status, {
      ...CORS,
      ...headers,
      'Accept-Ranges': 'bytes',
      'Content-Length': String(body.length),
      ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${bytes.length}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const drop = faults.drop;
    if (drop?.file === file && dropped < drop.times && start <= drop.afterBytes && end >= drop.afterBytes) {
      dropped++;
      res.write(body.subarray(0, Math.max(0, drop.afterBytes - start)), () => res.socket?.destroy());
      return;
    }
    const stall = faults.stall;
    if (stall?.file === file && start < stall.afterBytes) {
      res.write(body.subarray(0, stall.afterBytes - start));
      open.add(res);
      return;
    }
    res.end(body);
  }

  function info(repo: FixtureRepo) {
    return {
      id: repo.repo,
      modelId: repo.repo,
      sha: repo.commit,
      private: false,
      gated: repo.gated ? 'manual' : false,
      tags: [...(repo.tags ?? []), ...(repo.license ? [`license:${repo.license}`] : [])],
      cardData: repo.license ? { license: repo.license } : {},
      config: repo.modelType ? { model_type: repo.modelType } : {},
      downloads: 10,
      likes: 1,
      siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })),
    };
  }

  const hub = createServer((req, res) => {
    if (logged(hubRequests, req, res)) return;
    const url = new URL(req.url ?? '/', 'http://hub');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const authorized = req.headers.authorization === `Bearer ${token}`;
    const repoAt = (i: number) => byName.get(`${parts[i]}/${parts[i + 1]}`);
    if (parts[0] === 'api' && parts[1] === 'models' && parts.length === 2) {
      const q = (url.searchParams.get('search') ?? '').toLowerCase();
      json(res, 200, repos.filter((r) => r.repo.toLowerCase().includes(q)).map(info));
      return;
    }
    if (parts[0] === 'api' && parts[1] === 'models') {
      const repo = repoAt(2);
      if (!repo) return json(res, 404, { error: 'Repository not found' });
      if (repo.gated && !authorized && parts[4] === 'tree') return json(res, 401, { error: 'Access to this model is restricted' });
      if (parts.length === 4 || parts[4] === 'revision') return json(res, 200, info(repo));
      if (parts[4] === 'tree') {
        json(
          res,
          200,
          Object.entries(repo.files).map(([path, bytes]) => ({
            type: 'file',
            path,
            size: bytes.length,
            oid: gitOid(bytes),
            ...(isLfs(path) ? { lfs: { oid: sha256(bytes), size: bytes.length, pointerSize: 130 } } : {}),
          })),
        );
        return;
      }
    }
    if (parts[2] === 'resolve') {
      const repo = repoAt(0);
      const file = parts.slice(4).join('/');
      const bytes = repo?.files[file];
      if (!repo || !bytes) return json(res, 404, { error: 'Entry not found' });
      if (repo.gated && !authorized) return json(res, 401, { error: 'Access to this model is restricted' });
      if (faults.rateLimit && faults.rateLimit.times > 0) {
        faults.rateLimit.times--;
        res.writeHead(429, { ...CORS, 'Retry-After': faults.rateLimit.retryAfter });
        res.end('Too many requests');
        return;
      }
      const common = { 'X-Repo-Commit': repo.commit };
      if (isLfs(file)) {
        const hash = sha256(bytes);
        res.writeHead(302, {
          ...CORS,
          ...common,
          Location: `${cdnUrl}/blobs/${hash}?file=${encodeURIComponent(file)}`,
          'X-Linked-Size': String(bytes.length),
          'X-Linked-Etag': `"${hash}"`,
          ETag: `"${gitOid(new TextEncoder().encode(hash))}"`,
        });
        res.end();
        return;
      }
      sendBytes(req, res, file, bytes, { ...common, ETag: `"${gitOid(bytes)}"` });
      return;
    }
    json(res, 404, { error: 'Not found' });
  });

  const cdn = createServer((req, res) => {
    if (logged(cdnRequests, req, res)) return;
    const url = new URL(req.url ?? '/', 'http://cdn');
    const hash = url.pathname.replace(/^\/blobs\//, '');
    const blob = byHash.get(hash);
    if (!blob) return json(res, 404, { error: 'no such blob' });
    sendBytes(req, res, blob.file, blob.bytes, { ETag: `"${hash}"` });
  });

  const endpoint = await listen(hub);
  const cdnUrl = await listen(cdn);
  return {
    endpoint,
    cdn: cdnUrl,
    hubRequests,
    cdnRequests,
    faults,
    token,
    async close() {
      for (const res of open) res.socket?.destroy();
      hub.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all([new Promise((r) => hub.close(r)), new Promise((r) => cdn.close(r))]);
    },
  };
}

/** The bundled selective-copy model's files (config.json, model.safetensors, studio.json), as a fixture repo's files. */
export function selectiveCopyFiles(): Record<string, Uint8Array> {
  const dir = path.resolve(import.meta.dirname, '../../resources/models/selective-copy');
  return Object.fromEntries(['config.json', 'model.safetensors', 'studio.json'].map((f) => [f, new Uint8Array(readFileSync(path.join(dir, f)))]));
}

/** Bytes that look random but are the same in every run. */
export function fixtureBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
