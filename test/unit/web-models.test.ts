/**
 * Defect 11 (issue 15): opened models were all named "model.safetensors", opening one twice listed
 * it twice, web mode could not remove one, and the list emptied on reload. Here: the naming rule
 * (web-models.ts webModelName; main's userModelIdentity), web mode's dedupe, Remove and
 * persistence through a ModelStorage (an in-memory one standing in for IndexedDB), and a stored
 * model that cannot be restored giving a notice; on the desktop, a weights file chosen inside a
 * folder is the folder's model (one entry, the folder's name).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createWebStudio } from '../../renderer/src/host/web-studio';
import { checkStored, webModelKey, webModelName, type ModelStorage, type StoredModel } from '../../renderer/src/host/web-models';
import { Library, userModelIdentity } from '../../main/library';
import { writeTinyModel } from '../support/tiny-model';

afterEach(() => vi.unstubAllGlobals());

function memoryStorage(initial: unknown[] = []): ModelStorage & { rows: Map<string, StoredModel> } {
  const rows = new Map<string, StoredModel>();
  const raw = [...initial];
  return {
    rows,
    async load() {
      const models: StoredModel[] = [];
      const problems: string[] = [];
      for (const value of [...raw, ...rows.values()]) {
        const checked = checkStored(value);
        if (typeof checked === 'string') problems.push(checked);
        else models.push(checked);
      }
      return { models, problems };
    },
    async save(m) {
      rows.set(m.key, m);
    },
    async remove(key) {
      rows.delete(key);
    },
  };
}

const tinyFiles = (extra: Record<string, string> = {}) => {
  const dir = writeTinyModel(mkdtempSync(path.join(tmpdir(), 'web-models-')));
  return [
    ...['config.json', 'model.safetensors'].map((name) => new File([readFileSync(path.join(dir, name))], name)),
    ...Object.entries(extra).map(([name, text]) => new File([text], name)),
  ];
};

describe('web mode model names', () => {
  it('uses the folder, then the model’s own name, then its kind and file — never just "model.safetensors"', () => {
    const w = { name: 'model.safetensors' };
    expect(webModelName([{ ...w, webkitRelativePath: 'mamba-130m/model.safetensors' }], {})).toBe('mamba-130m');
    expect(webModelName([w], { studio: '{"display_name":"Shakespeare (bytes)"}' })).toBe('Shakespeare (bytes)');
    expect(webModelName([w], { config: '{"_name_or_path":"state-spaces/mamba-130m-hf","model_type":"mamba"}' })).toBe('mamba-130m-hf');
    expect(webModelName([w], { config: '{"model_type":"mamba2"}' })).toBe('mamba2 · model.safetensors');
    expect(webModelName([{ name: 'falcon-mamba-7b.Q4_K_M.gguf' }], {})).toBe('falcon-mamba-7b.Q4_K_M.gguf');
    expect(webModelName([w], { config: '{oops', studio: '[]' })).toBe('model.safetensors');
  });

  it('keys a model by its files’ names and sizes, in any order', () => {
    expect(webModelKey([{ name: 'b', size: 2 }, { name: 'a', size: 1 }])).toBe(webModelKey([{ name: 'a', size: 1 }, { name: 'b', size: 2 }]));
    expect(webModelKey([{ name: 'a', size: 1 }])).not.toBe(webModelKey([{ name: 'a', size: 2 }]));
  });
});

describe('web mode user models', () => {
  it('names a model from its config, lists it once however often it is opened, and keeps it across a reload', async () => {
    vi.stubGlobal('fetch', async () => new Response('{"models": []}'));
    const storage = memoryStorage();
    const studio = createWebStudio({ storage });
    const first = await studio.openFiles(tinyFiles());
    expect(first.name).toBe('mamba · model.safetensors');
    const second = await studio.openFiles(tinyFiles());
    expect(second.id).toBe(first.id);
    expect((await studio.listModels()).filter((m) => m.source === 'user')).toHaveLength(1);

    // A new page (reload) over the same storage: the model is listed again, with its files.
    const reloaded = createWebStudio({ storage });
    const listed = (await reloaded.listModels()).filter((m) => m.source === 'user');
    expect(listed.map((m) => m.name)).toEqual(['mamba · model.safetensors']);
    expect(listed[0]).toMatchObject({ architecture: 'mamba', sizeBytes: first.sizeBytes, files: first.files });
    expect(reloaded.filesOf(listed[0]!.id)?.map((f) => f.name)).toEqual(['config.json', 'model.safetensors']);
    expect(await reloaded.getNotices()).toEqual([]);

    // Remove: gone from the list and from storage.
    await reloaded.removeModel(listed[0]!.id);
    expect((await reloaded.listModels()).filter((m) => m.source === 'user')).toEqual([]);
    expect(storage.rows.size).toBe(0);
  });

  it('says so when a stored model cannot be restored, and when one cannot be stored', async () => {
    vi.stubGlobal('fetch', async () => new Response('{"models": []}'));
    const broken = { key: '[]', entry: { name: 'old-model', source: 'user', sizeBytes: 1, files: ['a'] }, files: [] };
    const studio = createWebStudio({ storage: memoryStorage([broken, 42]) });
    expect((await studio.listModels()).filter((m) => m.source === 'user')).toEqual([]);
    const notices = await studio.getNotices();
    expect(notices).toHaveLength(2);
    expect(notices[0]).toMatch(/^A model opened earlier could not be restored: old-model: its files could not be restored/);

    const failing: ModelStorage = { load: async () => ({ models: [], problems: [] }), save: async () => Promise.reject(new Error('QuotaExceededError')), remove: async () => undefined };
    const full = createWebStudio({ storage: failing });
    const entry = await full.openFiles(tinyFiles({ 'studio.json': '{"display_name":"Tiny"}' }));
    expect(entry.name).toBe('Tiny');
    expect(await full.getNotices()).toEqual(['Tiny is open, but will not be listed after a reload: the browser could not store it (QuotaExceededError).']);

    const unreadable: ModelStorage = { load: async () => Promise.reject(new Error('blocked')), save: async () => undefined, remove: async () => undefined };
    const blocked = createWebStudio({ storage: unreadable });
    await blocked.listModels();
    expect(await blocked.getNotices()).toEqual(['Models opened earlier could not be restored (browser storage: blocked). Open them again.']);
  });
});

describe('desktop user models', () => {
  it('treats a .safetensors chosen in a folder as the folder’s model; a .gguf file as its own', () => {
    expect(userModelIdentity({ resolved: '/m/mamba-130m', folder: '/m/mamba-130m', single: null })).toEqual({ key: '/m/mamba-130m', name: 'mamba-130m' });
    expect(userModelIdentity({ resolved: '/m/mamba-130m/model.safetensors', folder: '/m/mamba-130m', single: 'model.safetensors' })).toEqual({ key: '/m/mamba-130m', name: 'mamba-130m' });
    expect(userModelIdentity({ resolved: '/m/q/x.Q4.gguf', folder: '/m/q', single: 'x.Q4.gguf' })).toEqual({ key: '/m/q/x.Q4.gguf', name: 'x.Q4.gguf' });
  });

  it('opening the folder and then its weights file gives one entry named after the folder', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'library-dedupe-'));
    const model = writeTinyModel(path.join(root, 'my-model'));
    const library = new Library(path.join(root, 'no-bundled'), path.join(root, 'userData'));
    const a = await library.open(model);
    const b = await library.open(path.join(model, 'model.safetensors'));
    expect(b.id).toBe(a.id);
    expect(b.name).toBe('my-model');
    expect((await library.list()).filter((m) => m.source === 'user')).toHaveLength(1);
  });
});
