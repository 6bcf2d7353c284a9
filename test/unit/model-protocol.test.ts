/**
 * model:// over real HTTP: the handler main registers for model:// is mounted on a Node HTTP
 * server and exercised with fetch — status codes, Range and Content-Range, HEAD, 416, and the
 * allow-list (unknown ids, files not in the entry, traversal).
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelEntry } from '../../app/contract';
import { serveFetch } from '../../app/node/serve-fetch';
import { createModelHandler, modelBaseUrl, parseRange } from '../../main/model-protocol';

const dir = mkdtempSync(path.join(tmpdir(), 'model-proto-'));
const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 256);
writeFileSync(path.join(dir, 'model.safetensors'), bytes);
writeFileSync(path.join(dir, 'config.json'), '{"model_type":"mamba"}');
writeFileSync(path.join(dir, 'secret.txt'), 'not a model file');
writeFileSync(path.join(dir, 'gone.json'), '{}');

const entry: ModelEntry = {
  id: 'user:abc',
  name: 'm',
  source: 'user',
  format: 'safetensors',
  architecture: 'mamba',
  files: ['config.json', 'model.safetensors', 'gone.json'],
  baseUrl: 'model://models/user%3Aabc',
  sizeBytes: 1000,
  path: dir,
};

let server: Server;
let base = '';
beforeAll(async () => {
  const handler = createModelHandler(async (id) => (id === entry.id ? entry : undefined));
  server = createServer((req, res) => {
    // The browser asks model://models/<id>/<file>; over HTTP the same path follows the server's address.
    void serveFetch(handler, `model://models${req.url ?? '/'}`, req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/user%3Aabc`;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('model:// protocol', () => {
  it('serves a whole file with its length and Accept-Ranges', async () => {
    const r = await fetch(`${base}/model.safetensors`);
    expect(r.status).toBe(200);
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    expect(r.headers.get('content-length')).toBe('1000');
    expect(new Uint8Array(await r.arrayBuffer())).toEqual(bytes);
  });

  it('serves byte ranges with 206 and Content-Range', async () => {
    const r = await fetch(`${base}/model.safetensors`, { headers: { Range: 'bytes=10-19' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe('bytes 10-19/1000');
    expect(new Uint8Array(await r.arrayBuffer())).toEqual(bytes.subarray(10, 20));
    const open = await fetch(`${base}/model.safetensors`, { headers: { Range: 'bytes=990-' } });
    expect(open.headers.get('content-range')).toBe('bytes 990-999/1000');
    expect(new Uint8Array(await open.arrayBuffer())).toEqual(bytes.subarray(990));
    const suffix = await fetch(`${base}/model.safetensors`, { headers: { Range: 'bytes=-5' } });
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(bytes.subarray(995));
    const clipped = await fetch(`${base}/model.safetensors`, { headers: { Range: 'bytes=998-5000' } });
    expect(clipped.headers.get('content-range')).toBe('bytes 998-999/1000');
  });

  it('answers 416 for unsatisfiable or malformed ranges', async () => {
    for (const range of ['bytes=1000-1001', 'bytes=50-10', 'bytes=-0', 'items=0-1', 'bytes=abc']) {
      const r = await fetch(`${base}/model.safetensors`, { headers: { Range: range } });
      expect(r.status, range).toBe(416);
      expect(r.headers.get('content-range')).toBe('bytes */1000');
    }
  });

  it('answers HEAD with the size and no body', async () => {
    const r = await fetch(`${base}/model.safetensors`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe('1000');
    expect((await r.arrayBuffer()).byteLength).toBe(0);
  });

  it('refuses unknown ids, unlisted files, traversal and other methods', async () => {
    expect((await fetch(`${base.replace('abc', 'zzz')}/config.json`)).status).toBe(404);
    expect((await fetch(`${base}/secret.txt`)).status).toBe(403);
    expect((await fetch(`${base}/..%2Fsecret.txt`)).status).toBe(403);
    expect((await fetch(`${base}/%2Fetc%2Fpasswd`)).status).toBe(403);
    expect((await fetch(`${base}/a/b`)).status).toBe(404);
    expect(modelBaseUrl('user:abc')).toBe('model://models/user%3Aabc');
    expect((await fetch(`${base}/config.json`, { method: 'POST', body: 'x' })).status).toBe(405);
  });

  it('says so when a file disappeared after it was opened', async () => {
    rmSync(path.join(dir, 'gone.json'));
    const r = await fetch(`${base}/gone.json`);
    expect(r.status).toBe(404);
    expect(await r.text()).toMatch(/gone\.json: the file has disappeared since it was opened/);
  });

  it('parseRange follows RFC 9110 single ranges', () => {
    expect(parseRange(null, 10)).toBeNull();
    expect(parseRange('bytes=0-0', 10)).toEqual([0, 0]);
    expect(parseRange('bytes=-20', 10)).toEqual([0, 9]);
    expect(parseRange('bytes=0-1,3-4', 10)).toBe('invalid');
  });
});
