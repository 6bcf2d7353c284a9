/**
 * model:// over real HTTP: the handler main registers for model:// is mounted on a Node HTTP
 * server and exercised with fetch — status codes, Range and Content-Range, HEAD, 416, and what
 * is served: only the model's own files, only from its folder, only regular files that are not
 * links (checked at serve time), nothing from the parent of a folder that has gone.
 */
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelEntry } from '../../app/contract';
import { serveFetch } from '../../app/node/serve-fetch';
import { Library } from '../../main/library';
import { createModelHandler, modelBaseUrl, parseRange, servedFolder, type ResolveModel } from '../../main/model-protocol';
import { writeTinyModel } from '../support/tiny-model';

const root = mkdtempSync(path.join(tmpdir(), 'model-proto-'));
const dir = path.join(root, 'model');
mkdirSync(dir);
const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 256);
writeFileSync(path.join(dir, 'model.safetensors'), bytes);
writeFileSync(path.join(dir, 'config.json'), '{"model_type":"mamba"}');
writeFileSync(path.join(dir, 'secret.txt'), 'not a model file');
writeFileSync(path.join(dir, 'gone.json'), '{}');
writeFileSync(path.join(dir, 'studio.json'), ''); // empty
const outside = path.join(root, 'hostname');
writeFileSync(outside, 'private-host-name');

const entry: ModelEntry = {
  id: 'user:abc',
  name: 'm',
  source: 'user',
  format: 'safetensors',
  architecture: 'mamba',
  files: ['config.json', 'model.safetensors', 'gone.json', 'studio.json', 'tokenizer.json', 'model.gguf'],
  baseUrl: 'model://models/user%3Aabc',
  sizeBytes: 1000,
  path: dir,
};

let resolve: ResolveModel = async (id) => (id === entry.id ? servedFolder(entry) : undefined);
let server: Server;
let origin = '';
let base = '';
beforeAll(async () => {
  const handler = createModelHandler((id) => resolve(id));
  server = createServer((req, res) => {
    // The browser asks model://models/<id>/<file>; over HTTP the same path follows the server's address.
    void serveFetch(handler, `model://models${req.url ?? '/'}`, req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  base = `${origin}/user%3Aabc`;
});
afterAll(() => {
  server.close();
  rmSync(root, { recursive: true, force: true });
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
    for (const range of ['bytes=1000-1001', 'bytes=50-10', 'bytes=-0', 'items=0-1', 'bytes=abc', 'bytes=0-1,3-4', 'bytes=99999999999999999999-']) {
      const r = await fetch(`${base}/model.safetensors`, { headers: { Range: range } });
      expect(r.status, range).toBe(416);
      expect(r.headers.get('content-range')).toBe('bytes */1000');
    }
  });

  it('answers 416 with "bytes */0" for every range of an empty file, 200 without one', async () => {
    for (const range of ['bytes=-5', 'bytes=0-', 'bytes=0-0']) {
      const r = await fetch(`${base}/studio.json`, { headers: { Range: range } });
      expect(r.status, range).toBe(416);
      expect(r.headers.get('content-range'), range).toBe('bytes */0');
    }
    const whole = await fetch(`${base}/studio.json`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-length')).toBe('0');
  });

  it('answers HEAD with the size and no body', async () => {
    const r = await fetch(`${base}/model.safetensors`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe('1000');
    expect((await r.arrayBuffer()).byteLength).toBe(0);
  });

  it('refuses unknown ids, unlisted files, traversal and other methods', async () => {
    expect((await fetch(`${base.replace('abc', 'zzz')}/config.json`)).status).toBe(404);
    const secret = await fetch(`${base}/secret.txt`);
    expect(secret.status).toBe(403);
    expect(await secret.text()).toBe('model://: secret.txt is not a file of model user:abc');
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

  it('refuses a listed file that became a symbolic link to a file outside after opening', async () => {
    symlinkSync(outside, path.join(dir, 'model.gguf'));
    const r = await fetch(`${base}/model.gguf`);
    expect(r.status).toBe(403);
    const body = await r.text();
    expect(body).toMatch(/model\.gguf: is a symbolic link; only regular files inside the model folder are read/);
    expect(body).not.toContain('private-host-name');
    unlinkSync(path.join(dir, 'model.gguf'));
  });

  it('refuses a listed file that is a hard link (a second name of a file elsewhere)', async () => {
    linkSync(outside, path.join(dir, 'tokenizer.json'));
    const r = await fetch(`${base}/tokenizer.json`);
    expect(r.status).toBe(403);
    const body = await r.text();
    expect(body).toMatch(/tokenizer\.json: has 2 hard links \(other names elsewhere\); only files of their own are read/);
    expect(body).not.toContain('private-host-name');
    unlinkSync(path.join(dir, 'tokenizer.json'));
  });

  it('refuses a listed name that is a FIFO, a folder or a symlinked folder, without hanging', async () => {
    execFileSync('mkfifo', [path.join(dir, 'tokenizer.json')]);
    const fifo = await fetch(`${base}/tokenizer.json`);
    expect(fifo.status).toBe(403);
    expect(await fifo.text()).toMatch(/tokenizer\.json: is not a regular file/);
    unlinkSync(path.join(dir, 'tokenizer.json'));
    mkdirSync(path.join(dir, 'tokenizer.json'));
    expect((await fetch(`${base}/tokenizer.json`)).status).toBe(403);
    rmSync(path.join(dir, 'tokenizer.json'), { recursive: true });
  });

  it('parseRange follows RFC 9110 single ranges', () => {
    expect(parseRange(null, 10)).toBeNull();
    expect(parseRange('bytes=0-0', 10)).toEqual([0, 0]);
    expect(parseRange('bytes=-20', 10)).toEqual([0, 9]);
    expect(parseRange('bytes=0-1,3-4', 10)).toBe('invalid');
    expect(parseRange('bytes=-5', 0)).toBe('invalid');
    expect(parseRange('bytes=0-', 0)).toBe('invalid');
  });
});

describe('model:// for library models', () => {
  it('serves only the files the model consists of, never a private file beside them', async () => {
    const folder = writeTinyModel(path.join(root, 'lib-own'));
    writeFileSync(path.join(folder, 'notes.txt'), 'private notes');
    writeFileSync(path.join(folder, 'tokenizer.json'), '{}');
    const library = new Library(path.join(root, 'no-bundled'), path.join(root, 'ud-own'));
    const opened = await library.open(folder);
    expect(opened.files).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    resolve = (id) => library.served(id);
    const url = `${origin}/${encodeURIComponent(opened.id)}`;
    expect((await fetch(`${url}/config.json`)).status).toBe(200);
    expect((await fetch(`${url}/tokenizer.json`)).status).toBe(200);
    const notes = await fetch(`${url}/notes.txt`);
    expect(notes.status).toBe(403);
    expect(await notes.text()).not.toContain('private notes');
  });

  it('gives a clear 404 when the model folder was renamed, never the parent folder\'s config.json', async () => {
    const parent = path.join(root, 'parent');
    const folder = writeTinyModel(path.join(parent, 'renamed-model'));
    writeFileSync(path.join(parent, 'config.json'), '{"parent": "private"}');
    const library = new Library(path.join(root, 'no-bundled'), path.join(root, 'ud-rename'));
    const opened = await library.open(folder);
    resolve = (id) => library.served(id);
    renameSync(folder, path.join(parent, 'moved-away'));
    const r = await fetch(`${origin}/${encodeURIComponent(opened.id)}/config.json`);
    expect(r.status).toBe(404);
    const body = await r.text();
    expect(body).toMatch(/renamed-model is no longer where it was opened \(moved, renamed or deleted\); open it again/);
    expect(body).not.toContain('private');
  });

  it('does the same for a version-1 record (no folder recorded) whose folder was renamed', async () => {
    const parent = path.join(root, 'parent-v1');
    const folder = writeTinyModel(path.join(parent, 'old-model'));
    writeFileSync(path.join(parent, 'config.json'), '{"parent": "private"}');
    const userData = path.join(root, 'ud-v1');
    mkdirSync(userData);
    const old = { ...entry, id: 'user:0123456789abcdef', files: ['config.json', 'model.safetensors'], path: folder, baseUrl: modelBaseUrl('user:0123456789abcdef') };
    writeFileSync(path.join(userData, 'library.json'), JSON.stringify({ version: 1, models: [{ entry: old, validatedKey: 'config.json:1:1' }] }));
    const library = new Library(path.join(root, 'no-bundled'), userData);
    resolve = (id) => library.served(id);
    expect((await fetch(`${origin}/${encodeURIComponent(old.id)}/config.json`)).status).toBe(200);
    renameSync(folder, path.join(parent, 'elsewhere'));
    const r = await fetch(`${origin}/${encodeURIComponent(old.id)}/config.json`);
    expect(r.status).toBe(404);
    expect(await r.text()).not.toContain('private');
  });
});
