/**
 * Web mode's implementation of the contract: what main does on the desktop, done in the page.
 * Bundled models come over HTTP (`bundled/index.json`, served by the Vite plugin); the user's
 * models come from the file picker or drag and drop; each is named from its folder or its own
 * files (web-models.ts webModelName), opened once however often it is opened again (same files),
 * and kept across reloads with its File blobs in IndexedDB (a model whose storage fails still
 * opens, with a notice that it will not be remembered).
 */
import type { AppInfo, EventName, Events, ModelEntry, StudioApi } from '../../../app/contract';
import { inspectModel } from '../../../app/arch/inspect';
import { inspectedFields } from '../../../app/library/bundled';
import { blobModelFiles, readAllText } from '../../../app/formats/model-files';
import { blobSource } from '../../../app/formats/source';
import { createWebHub } from '../hub/web-hub';
import { indexedDbStorage, webModelKey, webModelName, type ModelStorage, type StoredModel } from './web-models';

type Listener = (payload: never) => void;

const WEIGHTS = /\.(safetensors|gguf|bin)$/i;

export interface WebStudio extends StudioApi {
  /** Adds dropped or picked files as one model (a folder's files, or a single weights file). */
  openFiles(files: File[]): Promise<ModelEntry>;
  /** The File objects behind a user model, for the engine to read. */
  filesOf(id: string): File[] | undefined;
}

/** Small JSON files read for the model's name (anything larger is not read). */
const NAME_FILE_MAX_BYTES = 1024 * 1024;

async function smallText(file: File | undefined): Promise<string | undefined> {
  if (!file || file.size > NAME_FILE_MAX_BYTES) return undefined;
  return readAllText(blobSource(file, file.name)).catch(() => undefined);
}

export function createWebStudio(
  options: { bundledIndexUrl?: string; pickFiles?: () => Promise<File[] | null>; storage?: ModelStorage | null } = {},
): WebStudio {
  const indexUrl = options.bundledIndexUrl ?? 'bundled/index.json';
  const listeners = new Map<EventName, Set<Listener>>();
  const userModels = new Map<string, { entry: ModelEntry; files: File[]; key: string }>();
  let nextUserId = 1;
  let bundled: Promise<ModelEntry[]> | null = null;
  const notices: string[] = [];
  const storage = options.storage === undefined ? indexedDbStorage() : options.storage;
  const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

  const add = (stored: Pick<StoredModel, 'entry' | 'files' | 'key'>): ModelEntry => {
    const id = `web:${nextUserId++}`;
    const entry: ModelEntry = { ...stored.entry, id, baseUrl: `web-file://${id}` };
    userModels.set(id, { entry, files: stored.files, key: stored.key });
    return entry;
  };

  // The models of earlier visits, restored once before the first listing.
  let restored: Promise<void> | null = null;
  const restore = (): Promise<void> => {
    restored ??= (async () => {
      if (!storage) return;
      try {
        const { models, problems } = await storage.load();
        for (const m of models) add(m);
        for (const p of problems) notices.push(`A model opened earlier could not be restored: ${p}. Open it again.`);
      } catch (error) {
        notices.push(`Models opened earlier could not be restored (browser storage: ${message(error)}). Open them again.`);
      }
    })();
    return restored;
  };

  const emit = <E extends EventName>(event: E, payload: Events[E]) => {
    for (const l of listeners.get(event) ?? []) (l as (p: Events[E]) => void)(payload);
  };

  const loadBundled = (): Promise<ModelEntry[]> => {
    bundled ??= fetch(indexUrl).then(async (response) => {
      if (!response.ok) throw new Error(`${indexUrl}: HTTP ${response.status}`);
      const body = (await response.json()) as { models?: ModelEntry[]; warnings?: string[] };
      if (!Array.isArray(body.models)) throw new Error(`${indexUrl}: no "models" list`);
      notices.push(...(body.warnings ?? []));
      return body.models;
    });
    return bundled;
  };

  const list = async (): Promise<ModelEntry[]> => {
    const models = await loadBundled();
    await restore();
    return [...models, ...[...userModels.values()].map((m) => m.entry)];
  };

  const openFiles = async (files: File[]): Promise<ModelEntry> => {
    const weights = files.filter((f) => WEIGHTS.test(f.name));
    if (weights.length === 0) {
      const names = files.map((f) => f.name).join(', ') || 'nothing';
      throw new Error(`${names}: no model here — expected a .safetensors, .gguf or PyTorch .bin file (with its config.json)`);
    }
    const first = weights[0] as File;
    const folder = (first.webkitRelativePath || '').split('/')[0];
    await restore();
    // The same files opened again: the entry already listed, not a second one.
    const key = webModelKey(files);
    const same = [...userModels.values()].find((m) => m.key === key);
    if (same) return same.entry;
    const byName = (name: string) => files.find((f) => f.name === name);
    const name = webModelName(files, { config: await smallText(byName('config.json')), studio: await smallText(byName('studio.json')) });
    const entry: Omit<ModelEntry, 'id' | 'baseUrl'> = {
      name,
      source: 'user',
      format: weights.every((f) => /\.gguf$/i.test(f.name)) ? 'gguf' : weights.some((f) => /\.safetensors$/i.test(f.name)) ? 'safetensors' : 'pytorch',
      architecture: 'unknown',
      files: files.map((f) => f.name).sort(),
      sizeBytes: files.reduce((sum, f) => sum + f.size, 0),
      lastOpened: new Date().toISOString(),
    };
    // Headers only: the config, the tensor index and their shapes; no weights are read here.
    Object.assign(entry, inspectedFields(await inspectModel(blobModelFiles(folder ?? '', files))));
    const added = add({ entry, files, key });
    if (storage) {
      await storage.save({ key, entry, files }).catch((error: unknown) => {
        notices.push(`${name} is open, but will not be listed after a reload: the browser could not store it (${message(error)}).`);
      });
    }
    emit('modelsChanged', await list());
    return added;
  };

  const info: AppInfo = {
    name: 'Mamba Studio',
    version: __APP_VERSION__,
    shell: 'web',
    versions: {},
    platform: globalThis.navigator?.platform || 'web',
  };

  const hub = createWebHub({ openFiles, emit: (job) => emit('hubJob', job) });

  return {
    ...hub,
    getAppInfo: async () => info,
    listModels: list,
    openModelDialog: async () => {
      const files = await (options.pickFiles ?? pickWithInput)();
      return files && files.length > 0 ? openFiles(files) : null;
    },
    readSessionFile: async () => {
      throw new Error('Files handed over by the system need the desktop app; in the browser, use Open trace or session… or drop the file.');
    },
    openModelPaths: async () => {
      throw new Error('Opening by path needs the desktop app; in the browser, use Open model… or drop files.');
    },
    getNotices: async () => {
      await loadBundled().catch(() => undefined);
      await restore();
      return notices.splice(0);
    },
    removeModel: async (id) => {
      const removed = userModels.get(id);
      if (!removed || !userModels.delete(id)) throw new Error(`No model with id ${id} (bundled models cannot be removed)`);
      if (storage) {
        await storage.remove(removed.key).catch((error: unknown) => {
          notices.push(`${removed.entry.name} was removed, but may be listed again after a reload (browser storage: ${message(error)}).`);
        });
      }
      const models = await list();
      emit('modelsChanged', models);
      return models;
    },
    on(event, listener) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as Listener);
      return () => set.delete(listener as Listener);
    },
    openFiles,
    filesOf: (id) => userModels.get(id)?.files,
  };
}

/** The browser's file picker (needs a user gesture: called from a click or key handler). */
function pickWithInput(): Promise<File[] | null> {
  return new Promise((resolve) => {
    const input = document.createElement('input');
    input.type = 'file';
    input.multiple = true;
    input.accept = '.safetensors,.gguf,.bin,.json,.jinja';
    input.addEventListener('change', () => resolve(input.files ? [...input.files] : null), { once: true });
    input.addEventListener('cancel', () => resolve(null), { once: true });
    input.click();
  });
}
