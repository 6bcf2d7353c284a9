/**
 * Web mode's implementation of the contract: what main does on the desktop, done in the page.
 * Bundled models come over HTTP (`bundled/index.json`, served by the Vite plugin); the user's
 * models come from the file picker or drag and drop and stay in this page's memory.
 */
import type { AppInfo, EventName, Events, ModelEntry, StudioApi } from '../../../app/contract';
import { inspectModel } from '../../../app/arch/inspect';
import { inspectedFields } from '../../../app/library/bundled';
import { blobModelFiles } from '../../../app/formats/model-files';

type Listener = (payload: never) => void;

const WEIGHTS = /\.(safetensors|gguf)$/i;

export interface WebStudio extends StudioApi {
  /** Adds dropped or picked files as one model (a folder's files, or a single weights file). */
  openFiles(files: File[]): Promise<ModelEntry>;
  /** The File objects behind a user model, for the engine to read. */
  filesOf(id: string): File[] | undefined;
}

export function createWebStudio(options: { bundledIndexUrl?: string; pickFiles?: () => Promise<File[] | null> } = {}): WebStudio {
  const indexUrl = options.bundledIndexUrl ?? 'bundled/index.json';
  const listeners = new Map<EventName, Set<Listener>>();
  const userModels = new Map<string, { entry: ModelEntry; files: File[] }>();
  let nextUserId = 1;
  let bundled: Promise<ModelEntry[]> | null = null;
  const notices: string[] = [];

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

  const list = async (): Promise<ModelEntry[]> => [...(await loadBundled()), ...[...userModels.values()].map((m) => m.entry)];

  const openFiles = async (files: File[]): Promise<ModelEntry> => {
    const weights = files.filter((f) => WEIGHTS.test(f.name));
    if (weights.length === 0) {
      const names = files.map((f) => f.name).join(', ') || 'nothing';
      throw new Error(`${names}: no model here — expected a .safetensors or .gguf file (with its config.json)`);
    }
    const first = weights[0] as File;
    const folder = (first.webkitRelativePath || '').split('/')[0];
    const id = `web:${nextUserId++}`;
    const entry: ModelEntry = {
      id,
      name: folder || first.name,
      source: 'user',
      format: weights.every((f) => /\.gguf$/i.test(f.name)) ? 'gguf' : 'safetensors',
      architecture: 'unknown',
      files: files.map((f) => f.name).sort(),
      baseUrl: `web-file://${id}`,
      sizeBytes: files.reduce((sum, f) => sum + f.size, 0),
    };
    // Headers only: the config, the tensor index and their shapes; no weights are read here.
    Object.assign(entry, inspectedFields(await inspectModel(blobModelFiles(folder ?? '', files))));
    userModels.set(id, { entry, files });
    emit('modelsChanged', await list());
    return entry;
  };

  const info: AppInfo = {
    name: 'Mamba Studio',
    version: __APP_VERSION__,
    shell: 'web',
    versions: {},
    platform: globalThis.navigator?.platform || 'web',
  };

  return {
    getAppInfo: async () => info,
    listModels: list,
    openModelDialog: async () => {
      const files = await (options.pickFiles ?? pickWithInput)();
      return files && files.length > 0 ? openFiles(files) : null;
    },
    openModelPaths: async () => {
      throw new Error('Opening by path needs the desktop app; in the browser, use Open model… or drop files.');
    },
    getNotices: async () => {
      await loadBundled().catch(() => undefined);
      return notices.splice(0);
    },
    removeModel: async (id) => {
      if (!userModels.delete(id)) throw new Error(`No model with id ${id} (bundled models cannot be removed)`);
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
    input.accept = '.safetensors,.gguf,.json,.jinja';
    input.addEventListener('change', () => resolve(input.files ? [...input.files] : null), { once: true });
    input.addEventListener('cancel', () => resolve(null), { once: true });
    input.click();
  });
}
