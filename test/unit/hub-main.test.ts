/**
 * The desktop's download manager (main/hub.ts) with Electron injected: a download lands in the
 * library (main/library.ts) and its id comes with the finished job; the token is stored only
 * encrypted by safeStorage and refused without encryption; a download paused by quitting is
 * offered after a restart and resumes; cancel leaves no partial file; the chosen models folder is
 * kept and is the CLI's default too.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubJob } from '../../app/contract';
import type { HubFetch } from '../../app/hub/http';
import { inspectModel } from '../../app/arch/inspect';
import { READ_AHEAD } from '../../app/hub/plan';
import { planMemory } from '../../app/model/memory-plan';
import { modelsDir } from '../../app/node/app-data';
import { folderModelFiles } from '../../app/node/folder';
import { HUB_TOKEN_FILE, HubMain, type HubMainDeps, type TokenCrypto } from '../../main/hub';
import { Library } from '../../main/library';
import { selectiveCopyFiles, startHubServer, type HubServer } from '../support/hub-server';

const COMMIT = '2'.repeat(40);
const files = selectiveCopyFiles();
let server: HubServer;

beforeAll(async () => {
  server = await startHubServer([
    { repo: 'studio/selective-copy', commit: COMMIT, files, modelType: 'mamba', license: 'mit' },
    { repo: 'studio/gated', commit: COMMIT, files, modelType: 'mamba', gated: true },
  ]);
});
afterAll(() => server.close());

/** A stand-in for safeStorage: "encrypts" by xor, so the stored bytes never hold the token's text. */
const crypto = (available = true, backend = 'gnome_libsecret'): TokenCrypto => ({
  isEncryptionAvailable: () => available,
  encryptString: (text) => Buffer.from([...Buffer.from(text)].map((b) => b ^ 0x5a)),
  decryptString: (bytes) => Buffer.from([...bytes].map((b) => b ^ 0x5a)).toString(),
  getSelectedStorageBackend: () => backend,
});

function setup(userData = mkdtempSync(path.join(tmpdir(), 'hub-main-')), over: Partial<HubMainDeps> = {}) {
  const library = new Library(path.join(userData, 'no-bundled'), userData);
  const events: HubJob[] = [];
  const hub = new HubMain({
    userData,
    fetch: fetch as unknown as HubFetch,
    env: { HF_ENDPOINT: server.endpoint },
    safeStorage: crypto(),
    platform: 'linux',
    openModel: async (target) => (await library.open(target)).id,
    emit: (job) => events.push(job),
    chooseFolder: async () => null,
    downloadOptions: { partMinBytes: 1_000_000, retryDelayMs: 5 },
    ...over,
  });
  return { userData, library, events, hub };
}

const incomplete = (dir: string) => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).filter((f) => f.includes('.incomplete')) : []);

describe('hub download manager (main)', () => {
  it('downloads a looked-up choice into the models folder, adds it to the library and reports its id', async () => {
    const { userData, library, events, hub } = setup();
    const info = await hub.lookup('https://huggingface.co/studio/selective-copy');
    expect(info).toMatchObject({ repo: 'studio/selective-copy', commit: COMMIT, license: 'mit', gated: false });
    expect(info.choices.map((c) => c.id)).toEqual(['safetensors']);
    const job = await hub.download('studio/selective-copy', 'main', 'safetensors');
    const done = await hub.settled(job.id);
    expect(done.state).toBe('done');
    expect(done.bytes).toBe(done.total);
    const entry = await library.get(done.modelId as string);
    expect(entry).toMatchObject({ source: 'user', architecture: 'mamba', format: 'safetensors' });
    expect(entry?.path).toBe(path.join(userData, 'models', 'models--studio--selective-copy', 'snapshots', COMMIT));
    expect(events.map((e) => e.state)).toContain('downloading');
    expect(events.at(-1)).toMatchObject({ state: 'done', modelId: done.modelId });
  });

  it("plans a choice's GPU memory from its headers over the Hub, as the plan of the same files on disk, without reading the weights", async () => {
    const { hub } = setup();
    const adapter = { vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H200', description: '', limits: { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32 } };
    server.cdnRequests.length = 0;
    const plan = await hub.plan('studio/selective-copy', 'main', 'safetensors', adapter);
    const local = await folderModelFiles(path.resolve(__dirname, '../../resources/models/selective-copy'));
    const expected = planMemory(await inspectModel(local).finally(() => local.close()), { adapter });
    expect({ weights: plan.weights, state: plan.state, activations: plan.activations, total: plan.total, fits: plan.modelFits }).toEqual({
      weights: expected.weights, state: expected.state, activations: expected.activations, total: expected.total, fits: true,
    });
    expect(plan.device).toMatchObject({ bytes: 141e9, what: 'NVIDIA H200' });
    // The safetensors header only: one ranged request of at most READ_AHEAD bytes, not the 945 kB of weights.
    const ranges = server.cdnRequests.map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.headers.range ?? '')).filter((m) => m !== null);
    expect(ranges.length).toBe(1);
    expect(Number(ranges[0]?.[2]) - Number(ranges[0]?.[1]) + 1).toBe(READ_AHEAD);
  });

  it('stores the token only encrypted, refuses without encryption (or with the basic_text backend), and uses it for a gated repo', async () => {
    const refused = setup(undefined, { safeStorage: crypto(false) });
    await expect(refused.hub.setToken('hf_secret_token')).rejects.toThrow(/The token was not stored: the OS offers no encryption.*never written in plain text/);
    expect(existsSync(path.join(refused.userData, HUB_TOKEN_FILE))).toBe(false);
    const basic = setup(undefined, { safeStorage: crypto(true, 'basic_text') });
    await expect(basic.hub.setToken('hf_secret_token')).rejects.toThrow(/fixed key/);
    expect((await basic.hub.settings()).tokenStorage).toMatchObject({ available: false });

    const { userData, hub } = setup();
    await expect(hub.lookup('studio/gated')).rejects.toThrow(/a Hugging Face access token is needed/);
    expect((await hub.setToken(server.token)).hasToken).toBe(true);
    const stored = readFileSync(path.join(userData, HUB_TOKEN_FILE));
    expect(stored.includes(Buffer.from(server.token))).toBe(false);
    // A restart reads it back (decrypted by safeStorage) and the gated repo opens.
    const again = setup(userData);
    expect((await again.hub.settings()).hasToken).toBe(true);
    const job = await again.hub.download('studio/gated', 'main', 'safetensors');
    expect((await again.hub.settled(job.id)).state).toBe('done');
    expect((await again.hub.setToken(null)).hasToken).toBe(false);
    expect(existsSync(path.join(userData, HUB_TOKEN_FILE))).toBe(false);
  });

  it('a download paused by quitting is offered after a restart and resumes from its partial file', async () => {
    server.faults.stall = { file: 'model.safetensors', afterBytes: 300_000 };
    const first = setup();
    const job = await first.hub.download('studio/selective-copy', 'main', 'safetensors');
    while (!first.events.some((e) => e.files.some((f) => f.path === 'model.safetensors' && f.bytes >= 300_000))) await new Promise((r) => setTimeout(r, 10));
    await first.hub.shutdown();
    expect((await first.hub.settled(job.id)).state).toBe('paused');
    server.faults.stall = undefined;
    server.cdnRequests.length = 0;
    const second = setup(first.userData);
    expect((await second.hub.list()).map((j) => [j.id, j.state])).toEqual([[job.id, 'paused']]);
    await second.hub.resume(job.id);
    expect((await second.hub.settled(job.id)).state).toBe('done');
    expect(server.cdnRequests.filter((r) => r.method === 'GET').map((r) => r.headers.range)).toEqual([`bytes=300000-${files['model.safetensors']!.length - 1}`]);
    expect(incomplete(path.join(first.userData, 'models'))).toEqual([]);
  });

  it('cancel deletes the partial file; nothing half-written is left', async () => {
    server.faults.stall = { file: 'model.safetensors', afterBytes: 100_000 };
    const { userData, events, hub } = setup();
    const job = await hub.download('studio/selective-copy', 'main', 'safetensors');
    while (!events.some((e) => e.files.some((f) => f.path === 'model.safetensors' && f.bytes >= 100_000))) await new Promise((r) => setTimeout(r, 10));
    expect(incomplete(path.join(userData, 'models')).sort()).toEqual([expect.stringMatching(/\.incomplete$/), expect.stringMatching(/\.incomplete\.json$/)]);
    expect((await hub.cancel(job.id)).state).toBe('cancelled');
    server.faults.stall = undefined;
    expect(incomplete(path.join(userData, 'models'))).toEqual([]);
    expect(existsSync(path.join(userData, 'models', 'models--studio--selective-copy', 'snapshots', COMMIT, 'model.safetensors'))).toBe(false);
  });

  it('keeps the models folder the user chose, which is also the CLI pull default', async () => {
    const chosen = mkdtempSync(path.join(tmpdir(), 'chosen-'));
    const { userData, hub } = setup(undefined, { chooseFolder: async () => chosen });
    expect((await hub.settings()).modelsDir).toBe(path.join(userData, 'models'));
    expect((await hub.chooseModelsFolder()).modelsDir).toBe(chosen);
    expect((await setup(userData).hub.settings()).modelsDir).toBe(chosen);
    expect(await modelsDir(userData)).toBe(chosen);
  });
});
