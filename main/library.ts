/**
 * The model library: the bundled demo models (first), then the user's models, remembered in a
 * JSON index under userData. The index is written atomically (temp file + rename, the previous
 * version kept as a backup); a corrupt or unreadable index is recovered from the backup, or moved
 * aside and rebuilt, always with a message — never silently dropped. Removing a model from the
 * library never touches its files. Validation reads headers only, and is cached by path + size +
 * mtime of the model's files.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ARCHITECTURE_NAMES } from '../app/arch/registry.js';
import type { ModelEntry } from '../app/contract.js';
import { ModelFileError } from '../app/formats/errors.js';
import { inspectOnDisk, listFilesWithStats, scanBundledModels } from '../app/node/bundled.js';
import { statModelPath } from '../app/node/folder.js';
import { modelBaseUrl } from './model-protocol.js';
import { v, type Validator } from '../app/validate.js';

const INDEX_VERSION = 1;

interface LibraryRecord {
  entry: ModelEntry;
  /** size:mtime of every file of the model when it was validated. */
  validatedKey: string;
}

const entryValidator: Validator<ModelEntry> = (value, where) => {
  const e = v.object({
    id: v.string({ nonEmpty: true }),
    name: v.string(),
    source: v.literal('user'),
    format: v.literal('safetensors', 'gguf'),
    architecture: v.literal(...ARCHITECTURE_NAMES, 'unknown'),
    files: v.array(v.string()),
    baseUrl: v.string(),
    sizeBytes: v.number({ min: 0 }),
    path: v.string({ nonEmpty: true }),
    description: v.optional(v.string()),
    parameters: v.optional(v.number({ min: 0 })),
    config: v.optional((x, p) => {
      if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new Error(`${p}: expected an object`);
      return x as Record<string, unknown>;
    }),
    lastOpened: v.optional(v.string()),
    warnings: v.optional(v.array(v.string())),
  })(value, where);
  return Object.fromEntries(Object.entries(e).filter(([, x]) => x !== undefined)) as unknown as ModelEntry;
};
const indexValidator = v.object({
  version: v.literal(INDEX_VERSION),
  models: v.array(v.object({ entry: entryValidator, validatedKey: v.string() })),
});

/** Reads and writes the index file atomically, with a backup. */
export class LibraryIndexFile {
  readonly file: string;
  readonly backup: string;

  constructor(dir: string) {
    this.file = path.join(dir, 'library.json');
    this.backup = path.join(dir, 'library.json.bak');
  }

  private async readOne(file: string): Promise<LibraryRecord[] | { error: string } | null> {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? null : { error: `cannot be read (${code ?? String(error)})` };
    }
    try {
      return indexValidator(JSON.parse(text), 'library').models;
    } catch (error) {
      return { error: error instanceof SyntaxError ? `is not valid JSON (${error.message})` : (error as Error).message };
    }
  }

  private async moveAside(file: string): Promise<string> {
    const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await fs.rename(file, aside).catch(() => undefined);
    return aside;
  }

  /** Loads the index, recovering from the backup or starting anew; `notices` say what happened. */
  async load(): Promise<{ records: LibraryRecord[]; notices: string[] }> {
    const main = await this.readOne(this.file);
    if (Array.isArray(main)) return { records: main, notices: [] };
    const backup = await this.readOne(this.backup);
    if (main === null) {
      if (Array.isArray(backup)) {
        return { records: backup, notices: [`The library index was missing; restored ${backup.length} model(s) from ${this.backup}.`] };
      }
      return { records: [], notices: [] }; // first run
    }
    const aside = await this.moveAside(this.file);
    if (Array.isArray(backup)) {
      await this.save(backup);
      return {
        records: backup,
        notices: [`The library index ${this.file} ${main.error}; it was moved to ${aside} and the library restored from its backup (${backup.length} model(s)).`],
      };
    }
    if (backup && 'error' in backup) await this.moveAside(this.backup);
    return {
      records: [],
      notices: [`The library index ${this.file} ${main.error}, and no usable backup exists; it was moved to ${aside} and a new, empty library started. Re-open your models to add them again.`],
    };
  }

  async save(records: LibraryRecord[]): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}-${Date.now()}`;
    const handle = await fs.open(tmp, 'w');
    try {
      await handle.writeFile(`${JSON.stringify({ version: INDEX_VERSION, models: records }, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // The current index becomes the backup; a crash between the renames leaves the backup, which load() uses.
    await fs.rename(this.file, this.backup).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await fs.rename(tmp, this.file);
  }
}

export class Library {
  private records: LibraryRecord[] = [];
  private bundled: ModelEntry[] = [];
  private loaded: Promise<void> | null = null;
  private readonly index: LibraryIndexFile;
  /** Start-up messages: index recovery, bundled models that failed to load. Shown once. */
  readonly notices: string[] = [];

  constructor(
    private readonly bundledDir: string,
    userDataDir: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.index = new LibraryIndexFile(userDataDir);
  }

  private ensureLoaded(): Promise<void> {
    this.loaded ??= (async () => {
      const { records, notices } = await this.index.load();
      this.records = records;
      this.notices.push(...notices);
      const { models, warnings } = await scanBundledModels(this.bundledDir, (name) => modelBaseUrl(`bundled:${name}`));
      this.bundled = models;
      this.notices.push(...warnings);
    })();
    return this.loaded;
  }

  async list(): Promise<ModelEntry[]> {
    await this.ensureLoaded();
    const user = [...this.records].sort((a, b) => (b.entry.lastOpened ?? '').localeCompare(a.entry.lastOpened ?? ''));
    return [...this.bundled, ...user.map((r) => r.entry)];
  }

  /** The entry with this id, or undefined (used by model:// to allow-list paths). */
  async get(id: string): Promise<ModelEntry | undefined> {
    await this.ensureLoaded();
    return this.bundled.find((e) => e.id === id) ?? this.records.find((r) => r.entry.id === id)?.entry;
  }

  /** Validates a model folder or weights file (headers only) and adds or refreshes it. */
  async open(target: string): Promise<ModelEntry> {
    await this.ensureLoaded();
    const { resolved, stat } = await statModelPath(target);
    const dir = stat.isDirectory() ? resolved : path.dirname(resolved);
    const all = await listFilesWithStats(dir).catch((error: NodeJS.ErrnoException) => {
      throw new ModelFileError(dir, `cannot be listed (${error.code ?? String(error)})`);
    });
    const files = stat.isDirectory() ? all : all.filter((f) => f.name === path.basename(resolved) || ['config.json', 'tokenizer.json'].includes(f.name));
    const validatedKey = files.map((f) => `${f.name}:${f.size}:${f.mtimeMs}`).join('|');
    const id = `user:${createHash('sha256').update(resolved).digest('hex').slice(0, 16)}`;
    const existing = this.records.find((r) => r.entry.id === id);
    const inspected = existing && existing.validatedKey === validatedKey ? existing.entry : await inspectOnDisk(resolved);
    const entry: ModelEntry = {
      id,
      name: path.basename(resolved),
      source: 'user',
      format: inspected.format,
      architecture: inspected.architecture,
      files: files.map((f) => f.name),
      baseUrl: modelBaseUrl(id),
      sizeBytes: files.reduce((sum, f) => sum + f.size, 0),
      path: resolved,
      ...(inspected.parameters !== undefined ? { parameters: inspected.parameters } : {}),
      ...(inspected.config ? { config: inspected.config } : {}),
      ...(inspected.warnings ? { warnings: inspected.warnings } : {}),
      lastOpened: this.now().toISOString(),
    };
    this.records = [...this.records.filter((r) => r.entry.id !== id), { entry, validatedKey }];
    await this.index.save(this.records);
    return entry;
  }

  /** Forgets a user model (its files are left alone). */
  async remove(id: string): Promise<boolean> {
    await this.ensureLoaded();
    const before = this.records.length;
    this.records = this.records.filter((r) => r.entry.id !== id);
    if (this.records.length === before) return false;
    await this.index.save(this.records);
    return true;
  }
}
