/**
 * The Hub download engine (app/hub/download.ts) on disk (app/node/hub-fs.ts) against a real HTTP
 * Hub of our own (test/support/hub-server.ts): parallel ranged parts, resume after a dropped
 * connection and after a restart, the hash check, the disk-space check, pause and cancel, 429,
 * gated repos, and the token never sent to the CDN host a resolve redirects to.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../app/hub/client';
import { downloadFiles, PAUSE, snapshotFolder, type DownloadOptions, type DownloadRequest } from '../../app/hub/download';
import { HubError } from '../../app/hub/errors';
import type { HubFetch } from '../../app/hub/http';
import { nodeDownloadFs, type StatFs } from '../../app/node/hub-fs';
import { fixtureBytes, startHubServer, type HubServer } from '../support/hub-server';

const COMMIT = 'a'.repeat(40);
const GATED_COMMIT = 'b'.repeat(40);
const big = fixtureBytes(200_000, 7);
const config = new TextEncoder().encode(JSON.stringify({ model_type: 'mamba', hidden_size: 8 }));
const tokenizer = new TextEncoder().encode('{"model":{}}');
let server: HubServer;

beforeAll(async () => {
  server = await startHubServer([
    { repo: 'owner/tiny', commit: COMMIT, files: { 'config.json': config, 'model.safetensors': big, 'tokenizer.json': tokenizer }, modelType: 'mamba' },
    { repo: 'owner/gated', commit: GATED_COMMIT, files: { 'config.json': config, 'model.safetensors': big }, gated: true, modelType: 'mamba' },
  ]);
});
afterAll(() => server.close());

const nodeFetch = fetch as unknown as HubFetch;
const client = (token?: string) => new HubClient({ fetch: nodeFetch, endpoint: server.endpoint, token: token ?? null, retryDelayMs: 10 });
const fast: DownloadOptions = { partMinBytes: 16_384, parts: 4, retryDelayMs: 5, maxRetries: 3 };

async function request(c: HubClient, repo: string, revision = 'main'): Promise<DownloadRequest> {
  const info = await c.modelInfo(repo, revision);
  return { repo, revision, commit: info.commit, files: await c.tree(repo, info.commit) };
}

function setup(statfs?: StatFs) {
  const root = mkdtempSync(path.join(tmpdir(), 'hub-dl-'));
  return { root, fs: nodeDownloadFs(root, statfs) };
}

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)));
}

function reset() {
  for (const k of Object.keys(server.faults)) delete server.faults[k as keyof typeof server.faults];
  server.hubRequests.length = 0;
  server.cdnRequests.length = 0;
}

describe('hub downloads', () => {
  it('downloads a choice into the hub cache layout in parallel ranged parts, each file checked', async () => {
    reset();
    const { root, fs } = setup();
    const c = client();
    const req = await request(c, 'owner/tiny');
    const seen: number[] = [];
    const result = await downloadFiles(c, fs, req, { ...fast, onProgress: (p) => seen.push(p.bytes) });
    const folder = path.join(root, snapshotFolder('owner/tiny', COMMIT));
    expect(result.location).toBe(folder);
    expect(readFileSync(path.join(folder, 'model.safetensors')).equals(Buffer.from(big))).toBe(true);
    expect(readFileSync(path.join(folder, 'config.json')).equals(Buffer.from(config))).toBe(true);
    expect(readFileSync(path.join(root, 'models--owner--tiny', 'refs', 'main'), 'utf8')).toBe(COMMIT);
    // 200,000 bytes in 4 parts of 50,000: four ranged GETs reached the CDN.
    const ranges = server.cdnRequests.filter((r) => r.method === 'GET').map((r) => r.headers.range).sort();
    expect(ranges).toEqual(['bytes=0-49999', 'bytes=100000-149999', 'bytes=150000-199999', 'bytes=50000-99999']);
    expect(seen.at(-1)).toBe(big.length + config.length + tokenizer.length);
    expect(allFiles(root).filter((f) => f.includes('.incomplete'))).toEqual([]);
  });

  it('a 302 to another host carries no token: the hub sees it, the CDN never does', async () => {
    reset();
    const { root, fs } = setup();
    const c = client(server.token);
    await downloadFiles(c, fs, await request(c, 'owner/gated'), fast);
    expect(readFileSync(path.join(root, snapshotFolder('owner/gated', GATED_COMMIT), 'model.safetensors')).length).toBe(big.length);
    const resolves = server.hubRequests.filter((r) => r.url.includes('/resolve/'));
    expect(resolves.length).toBeGreaterThan(0);
    expect(resolves.every((r) => r.headers.authorization === `Bearer ${server.token}`)).toBe(true);
    expect(server.cdnRequests.length).toBeGreaterThan(0);
    expect(server.cdnRequests.filter((r) => r.headers.authorization !== undefined)).toEqual([]);
  });

  it('resumes with Range after the server drops the connection mid-file', async () => {
    reset();
    server.faults.drop = { file: 'model.safetensors', afterBytes: 70_000, times: 1 };
    const { root, fs } = setup();
    const c = client();
    await downloadFiles(c, fs, await request(c, 'owner/tiny'), fast);
    expect(readFileSync(path.join(root, snapshotFolder('owner/tiny', COMMIT), 'model.safetensors')).equals(Buffer.from(big))).toBe(true);
    // The part 50000-99999 was cut at 70,000 and asked again from there.
    expect(server.cdnRequests.map((r) => r.headers.range)).toContain('bytes=70000-99999');
  });

  it('resumes from the partial file and its sidecar in a new run (a restart) after the retries ran out', async () => {
    reset();
    server.faults.drop = { file: 'model.safetensors', afterBytes: 30_000, times: 100 };
    const { root, fs } = setup();
    const c = client();
    const req = await request(c, 'owner/tiny');
    const one = { ...fast, parts: 1, maxRetries: 1 };
    const error = await downloadFiles(c, fs, req, one).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect((error as HubError).kind).toBe('network');
    expect((error as HubError).message).toContain('model.safetensors');
    expect(existsSync(path.join(root, snapshotFolder('owner/tiny', COMMIT), 'model.safetensors'))).toBe(false);
    const partial = allFiles(root).find((f) => f.endsWith('.incomplete'));
    expect(partial).toBeDefined();
    server.faults.drop = undefined;
    server.cdnRequests.length = 0;
    // A fresh client and file system: nothing carried over but the files on disk.
    const again = client();
    await downloadFiles(again, nodeDownloadFs(root), await request(again, 'owner/tiny'), one);
    expect(server.cdnRequests.filter((r) => r.method === 'GET').map((r) => r.headers.range)).toEqual(['bytes=30000-199999']);
    expect(readFileSync(path.join(root, snapshotFolder('owner/tiny', COMMIT), 'model.safetensors')).equals(Buffer.from(big))).toBe(true);
    expect(allFiles(root).filter((f) => f.includes('.incomplete'))).toEqual([]);
  });

  it('a flipped byte is caught by the sha256: the file is not moved into place and the error names it', async () => {
    reset();
    server.faults.flip = { file: 'model.safetensors', offset: 12_345 };
    const { root, fs } = setup();
    const c = client();
    const error = await downloadFiles(c, fs, await request(c, 'owner/tiny'), fast).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect((error as HubError).kind).toBe('integrity');
    expect((error as HubError).message).toMatch(/model\.safetensors of owner\/tiny is corrupt: its sha256/);
    expect(existsSync(path.join(root, snapshotFolder('owner/tiny', COMMIT), 'model.safetensors'))).toBe(false);
    expect(allFiles(root).filter((f) => f.includes('model.safetensors') || f.includes('.incomplete'))).toEqual([]);
  });

  it('refuses before the first byte when the disk has too little free space', async () => {
    reset();
    const { root, fs } = setup(async () => ({ bavail: 10, bsize: 4096 }));
    const c = client();
    const error = await downloadFiles(c, fs, await request(c, 'owner/tiny'), fast).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect((error as HubError).kind).toBe('disk-space');
    expect((error as HubError).message).toMatch(/Not enough free disk space in .*: owner\/tiny needs 200 kB more, only 41\.0 kB free/);
    expect(server.cdnRequests).toEqual([]);
    expect(allFiles(root)).toEqual([]);
  });

  it('cancel leaves no half file anywhere; pause keeps it and the next run finishes', async () => {
    reset();
    server.faults.stall = { file: 'model.safetensors', afterBytes: 40_000 };
    const { root, fs } = setup();
    const c = client();
    const req = await request(c, 'owner/tiny');
    const stopAt = (reason: string) => {
      const controller = new AbortController();
      return {
        signal: controller.signal,
        onProgress: (p: { files: { path: string; bytes: number }[] }) => {
          if ((p.files.find((f) => f.path === 'model.safetensors')?.bytes ?? 0) >= 40_000) controller.abort(reason);
        },
      };
    };
    const paused = await downloadFiles(c, fs, req, { ...fast, parts: 1, progressIntervalMs: 0, ...stopAt(PAUSE) }).catch((e: unknown) => e);
    expect((paused as HubError).kind).toBe('paused');
    expect(allFiles(root).filter((f) => f.endsWith('.incomplete'))).toHaveLength(1);
    const cancelled = await downloadFiles(c, fs, req, { ...fast, parts: 1, progressIntervalMs: 0, ...stopAt('cancel') }).catch((e: unknown) => e);
    expect((cancelled as HubError).kind).toBe('cancelled');
    expect(allFiles(root).filter((f) => f.includes('.incomplete') || f.endsWith('model.safetensors'))).toEqual([]);
    server.faults.stall = undefined;
    await downloadFiles(c, fs, req, fast);
    expect(readFileSync(path.join(root, snapshotFolder('owner/tiny', COMMIT), 'model.safetensors')).equals(Buffer.from(big))).toBe(true);
  });

  it('waits out a 429 for its Retry-After and retries', async () => {
    reset();
    server.faults.rateLimit = { times: 1, retryAfter: '1' };
    const { root, fs } = setup();
    const c = client();
    const req = await request(c, 'owner/tiny');
    const t0 = performance.now();
    await downloadFiles(c, fs, { ...req, files: req.files.filter((f) => f.path === 'config.json') }, fast);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(950);
    expect(server.hubRequests.filter((r) => r.url.includes('/resolve/')).length).toBe(3); // 429, HEAD, GET
    expect(readFileSync(path.join(root, snapshotFolder('owner/tiny', COMMIT), 'config.json')).equals(Buffer.from(config))).toBe(true);
  });

  it('a 429 past the bound is a rate-limited error', async () => {
    reset();
    server.faults.rateLimit = { times: 10, retryAfter: '0' };
    const c = new HubClient({ fetch: nodeFetch, endpoint: server.endpoint, maxRetries: 2 });
    const error = await c.head('owner/tiny', COMMIT, 'config.json').catch((e: unknown) => e);
    expect((error as HubError).kind).toBe('rate-limited');
    expect(server.hubRequests.length).toBe(3);
  });

  it('a gated repo without a token is a "token needed" error; a missing repo or file is not-found', async () => {
    reset();
    const c = client();
    const gated = await c.tree('owner/gated', 'main').catch((e: unknown) => e);
    expect((gated as HubError).kind).toBe('gated');
    expect((gated as HubError).message).toMatch(/owner\/gated is gated or private: a Hugging Face access token is needed/);
    const refused = await client('wrong').head('owner/gated', GATED_COMMIT, 'config.json').catch((e: unknown) => e);
    expect((refused as HubError).message).toMatch(/the token was refused/);
    const missing = await c.modelInfo('owner/nothing').catch((e: unknown) => e);
    expect((missing as HubError).kind).toBe('not-found');
    const file = await c.head('owner/tiny', COMMIT, 'nope.json').catch((e: unknown) => e);
    expect((file as HubError).kind).toBe('not-found');
    expect((file as HubError).message).toContain('nope.json of owner/tiny was not found');
  });
});
