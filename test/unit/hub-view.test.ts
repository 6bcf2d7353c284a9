/**
 * The "Get models" view's pure parts (renderer/src/hub/view-model.ts), web mode's in-memory file
 * system under the download engine against the test Hub (renderer/src/hub/memory-fs.ts, WebCrypto
 * hashes), and the page policy that lets web mode reach the Hub while the desktop's header does not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubJob } from '../../app/contract';
import { CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_META } from '../../app/csp';
import { HubClient } from '../../app/hub/client';
import { downloadFiles, snapshotFolder } from '../../app/hub/download';
import type { HubFetch } from '../../app/hub/http';
import { memoryDownloadFs } from '../../renderer/src/hub/memory-fs';
import { choiceVerdict, planVerdict, progressText, withJob } from '../../renderer/src/hub/view-model';
import { inspectModel } from '../../app/arch/inspect';
import { planMemory } from '../../app/model/memory-plan';
import { folderModelFiles } from '../../app/node/folder';
import path from 'node:path';
import { webEndpoint } from '../../renderer/src/hub/web-hub';
import { fixtureBytes, startHubServer, type HubServer } from '../support/hub-server';

describe('get models view', () => {
  it("a choice's verdict compares its weights with the GPU's memory as the memory plan estimates it", () => {
    const h200 = { bytes: 141e9, source: 'adapter' as const, what: 'NVIDIA H200' };
    expect(choiceVerdict({ weightBytes: 14.6e9 }, h200)).toEqual({ fits: true, text: "weights 14.6 GB · fits this GPU's 141 GB (NVIDIA H200)" });
    expect(choiceVerdict({ weightBytes: 150e9 }, h200)).toMatchObject({ fits: false, text: expect.stringMatching(/does not fit this GPU's 141 GB/) });
    expect(choiceVerdict({ weightBytes: 5e8 }, { bytes: null, source: 'unknown', what: 'no adapter' })).toEqual({ fits: null, text: 'weights 500 MB · GPU memory unknown (no adapter)' });
  });

  it("the plan's verdict says what the model needs and whether it fits, as the load panel does", async () => {
    const files = await folderModelFiles(path.resolve(__dirname, '../../resources/models/selective-copy'));
    const inspection = await inspectModel(files).finally(() => files.close());
    const h200 = { vendor: 'nvidia', architecture: '', device: 'NVIDIA H200', description: '', limits: { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32 } };
    const fits = planVerdict(planMemory(inspection, { adapter: h200 }));
    expect(fits.fits).toBe(true);
    expect(fits.text).toMatch(/^needs .* · fits this GPU's 141 GB \(NVIDIA H200\)$/);
    const over = planVerdict(planMemory(inspection, { adapter: h200, budget: 1000 }));
    expect(over).toMatchObject({ fits: false, text: expect.stringMatching(/ — does not fit the budget of 1 KB \(gpuMemoryBudget\)$/) });
    const tiny = { ...h200, limits: { maxStorageBufferBindingSize: 1024, maxBufferSize: 1024 } };
    expect(planVerdict(planMemory(inspection, { adapter: tiny })).text).toMatch(/is larger than one GPU binding: loading is refused$/);
    // Every weight fits, but the largest activation (here the products' scratch) would not: refused too.
    const plan = planMemory(inspection, { adapter: h200 });
    const under = { ...h200, limits: { maxStorageBufferBindingSize: plan.largestActivation.bytes - 4, maxBufferSize: 2 ** 32 } };
    expect(planMemory(inspection, { adapter: under }).oversize).toEqual([]);
    expect(planVerdict(planMemory(inspection, { adapter: under }))).toEqual({ fits: false, text: expect.stringMatching(new RegExp(` — its ${plan.largestActivation.label} activation is larger than one GPU binding: loading is refused$`)) });
    expect(planVerdict(planMemory(inspection)).fits).toBeNull();
  });

  it('progress text: bytes, speed and time left while running; the state otherwise', () => {
    expect(progressText({ state: 'downloading', bytes: 12e6, total: 945e6, speed: 3.1e6, etaSeconds: 300.2 })).toBe('12.0 MB of 945 MB · 3.10 MB/s · 5 min left');
    expect(progressText({ state: 'downloading', bytes: 0, total: 10, speed: 0, etaSeconds: null })).toBe('0 B of 10 B · 0 B/s · — left');
    expect(progressText({ state: 'paused', bytes: 5, total: 10, speed: 0, etaSeconds: null })).toBe('5 B of 10 B · paused');
  });

  it('withJob replaces a job in place and adds a new one first', () => {
    const job = (id: string, bytes: number) => ({ id, bytes }) as HubJob;
    expect(withJob([job('a', 1), job('b', 1)], job('b', 2)).map((j) => [j.id, j.bytes])).toEqual([['a', 1], ['b', 2]]);
    expect(withJob([job('a', 1)], job('c', 0)).map((j) => j.id)).toEqual(['c', 'a']);
  });

  it('web mode reaches the Hub through its page policy only; ?hub-endpoint= names another endpoint', () => {
    const connect = (policy: string) => policy.split('; ').find((d) => d.startsWith('connect-src')) ?? '';
    expect(connect(CONTENT_SECURITY_POLICY_META)).toContain('https://huggingface.co https://*.huggingface.co https://*.hf.co');
    expect(connect(CONTENT_SECURITY_POLICY)).toBe("connect-src 'self' model: blob:");
    expect(webEndpoint('')).toBe('https://huggingface.co');
    expect(webEndpoint('?hub-endpoint=http%3A%2F%2F127.0.0.1%3A9%2F')).toBe('http://127.0.0.1:9');
  });
});

describe("web mode's in-memory downloads", () => {
  let server: HubServer;
  const commit = '3'.repeat(40);
  const big = fixtureBytes(50_000, 3);
  const config = new TextEncoder().encode('{"model_type":"mamba"}');
  beforeAll(async () => {
    server = await startHubServer([{ repo: 'o/m', commit, files: { 'config.json': config, 'model.safetensors': big } }]);
  });
  afterAll(() => server.close());

  it('downloads with redirects followed by fetch itself (no HEAD), checks sha256 and git ids with WebCrypto, catches a flipped byte', async () => {
    const client = new HubClient({ fetch: fetch as unknown as HubFetch, endpoint: server.endpoint, redirects: 'follow' });
    const files = await client.tree('o/m', commit);
    const fs = memoryDownloadFs();
    await downloadFiles(client, fs, { repo: 'o/m', revision: 'main', commit, files }, { head: false, partMinBytes: 10_000, parts: 3 });
    expect(fs.bytes(`${snapshotFolder('o/m', commit)}/model.safetensors`)).toEqual(big);
    expect(fs.bytes(`${snapshotFolder('o/m', commit)}/config.json`)).toEqual(config);
    expect(server.hubRequests.some((r) => r.method === 'HEAD')).toBe(false);
    server.faults.flip = { file: 'config.json', offset: 3 };
    const fresh = memoryDownloadFs();
    await expect(downloadFiles(client, fresh, { repo: 'o/m', revision: 'main', commit, files }, { head: false })).rejects.toThrow(/config\.json of o\/m is corrupt: its git blob id/);
    expect(fresh.bytes(`${snapshotFolder('o/m', commit)}/config.json`)).toBeUndefined();
  });
});
