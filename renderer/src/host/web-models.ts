/**
 * Web mode's user models: what they are called, when two openings are the same model, and how
 * they outlive a reload (the File blobs kept in IndexedDB). Pure functions plus a small storage
 * interface, so the logic is unit-tested in Node with an in-memory storage
 * (test/unit/web-models.test.ts).
 */
import type { ModelEntry } from '../../../app/contract';

/** A model's name from what the browser gives: the folder, the model's own name, or its kind and weights file. */
export function webModelName(files: readonly { name: string; webkitRelativePath?: string }[], texts: { config?: string; studio?: string }): string {
  const folder = files.map((f) => (f.webkitRelativePath ?? '').split('/')[0]).find((x) => x);
  if (folder) return folder;
  const object = (text: string | undefined): Record<string, unknown> => {
    if (!text) return {};
    try {
      const value: unknown = JSON.parse(text);
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  };
  const plain = (x: unknown) => (typeof x === 'string' && x.trim() && x.length <= 200 ? x.trim() : undefined);
  const studio = object(texts.studio);
  const config = object(texts.config);
  const named = plain(studio.display_name) ?? plain(studio.name);
  if (named) return named;
  // A Hugging Face config remembers where it came from: "state-spaces/mamba-130m-hf".
  const origin = plain(config._name_or_path)?.split(/[\\/]/).filter(Boolean).pop();
  if (origin) return origin;
  const weights = files.find((f) => /\.(safetensors|gguf|bin)$/i.test(f.name))?.name ?? files[0]?.name ?? 'model';
  const kind = plain(config.model_type) ?? plain(config.architectures instanceof Array ? config.architectures[0] : undefined);
  return kind ? `${kind} · ${weights}` : weights;
}

/** Two openings are the same model when they have the same files (names and sizes). */
export function webModelKey(files: readonly { name: string; size: number }[]): string {
  return JSON.stringify(files.map((f) => [f.name, f.size]).sort((a, b) => (a[0] as string).localeCompare(b[0] as string)));
}

/** One remembered model: its entry (without the page-local id) and its files. */
export interface StoredModel {
  key: string;
  entry: Omit<ModelEntry, 'id' | 'baseUrl'>;
  files: File[];
}

export interface ModelStorage {
  load(): Promise<{ models: StoredModel[]; problems: string[] }>;
  save(model: StoredModel): Promise<void>;
  remove(key: string): Promise<void>;
}

/** Checks a record read back from storage (anything could be there: another version, a damaged profile). */
export function checkStored(value: unknown): StoredModel | string {
  if (typeof value !== 'object' || value === null) return 'a stored model is not an object';
  const r = value as Partial<StoredModel>;
  if (typeof r.key !== 'string' || typeof r.entry !== 'object' || r.entry === null || !Array.isArray(r.files)) return 'a stored model lacks its key, entry or files';
  const name = typeof r.entry.name === 'string' ? r.entry.name : 'a stored model';
  if (r.files.length === 0 || !r.files.every((f) => typeof f === 'object' && f !== null && typeof (f as File).name === 'string' && typeof (f as File).size === 'number')) {
    return `${name}: its files could not be restored`;
  }
  if (typeof r.entry.sizeBytes !== 'number' || !Array.isArray(r.entry.files) || r.entry.source !== 'user') return `${name}: the stored entry is damaged`;
  if (webModelKey(r.files) !== r.key) return `${name}: the stored files do not match what was opened`;
  return r as StoredModel;
}

const DB = 'mamba-studio-models';
const STORE = 'models';

const request = <T>(r: IDBRequest<T>) =>
  new Promise<T>((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });

/** The browser's IndexedDB (File objects are stored as they are, blobs included); null where there is none. */
export function indexedDbStorage(): ModelStorage | null {
  if (typeof indexedDB === 'undefined') return null;
  let db: Promise<IDBDatabase> | null = null;
  const open = () => {
    db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open(DB, 1);
      r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: 'key' });
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error ?? new Error('IndexedDB could not be opened'));
    });
    return db;
  };
  const tx = async (mode: IDBTransactionMode) => (await open()).transaction(STORE, mode).objectStore(STORE);
  return {
    async load() {
      const raw = await request((await tx('readonly')).getAll());
      const models: StoredModel[] = [];
      const problems: string[] = [];
      for (const value of raw) {
        const checked = checkStored(value);
        if (typeof checked === 'string') problems.push(checked);
        else models.push(checked);
      }
      return { models, problems };
    },
    async save(model) {
      await request((await tx('readwrite')).put(model));
    },
    async remove(key) {
      await request((await tx('readwrite')).delete(key));
    },
  };
}
