/**
 * The model library: the bundled demo models (first), then the user's models, remembered in a
 * JSON index under userData.
 *
 * The index is only ever written in a form its reader accepts: every record is trimmed to the
 * limits (`LIBRARY_LIMITS`) when it is made, and each write parses the exact text it is about to
 * write with the reader's own parser, refusing to write anything that would not load. Writes are
 * queued one after another, each through a temp file of its own (pid, counter, random) that is
 * synced and renamed over the index; the previous index becomes the backup. Temp files left by
 * a killed write are removed at the next start.
 *
 * Reading is tolerant record by record: an entry that does not pass validation is left out with
 * a notice (the file as it was is copied aside first). An unreadable index is recovered from
 * its backup, or moved aside; when both are unusable both are kept aside, never deleted, and a
 * new library starts, always with a message. A library whose files cannot be moved aside, or
 * that a newer version wrote, is used read-only for the session.
 *
 * A model is recorded with only its own files (app/library/model-files.ts: weights, config,
 * tokenizer, studio.json), each checked by main/model-files.ts; removing a model never touches
 * its files. Inspection reads headers only, and is cached by the size and mtime of those files.
 */
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { ARCHITECTURE_NAMES } from '../app/arch/registry.js';
import { inspectModel } from '../app/arch/inspect.js';
import type { ModelEntry } from '../app/contract.js';
import { ModelFileError } from '../app/formats/errors.js';
import { inspectedFields } from '../app/library/bundled.js';
import { isModelFileName, modelOwnFiles } from '../app/library/model-files.js';
import { scanBundledModels } from '../app/node/bundled.js';
import { modelBaseUrl, type ServedModel } from './model-protocol.js';
import { isPlainName, listedModelFiles, listModel, MAX_MODEL_FILES, type ModelListing } from './model-files.js';
import { v, ValidationError, type Validator } from '../app/validate.js';

export const INDEX_VERSION = 2;

/** What one index may hold; a record is trimmed to these when it is made, and checked against them when read. */
export const LIBRARY_LIMITS = {
  indexBytes: 64 * 1024 * 1024,
  models: 10_000,
  files: MAX_MODEL_FILES,
  fileName: 1024,
  id: 256,
  path: 4096,
  text: 4096,
  warnings: 64,
  warning: 2000,
  /** The canonical config: a small JSON object. */
  config: { depth: 4, entries: 256, nodes: 4096, string: 1024 },
} as const;

export interface LibraryRecord {
  entry: ModelEntry;
  /** Hash of the name, size and mtime of every candidate file of the model when it was inspected. */
  validatedKey: string;
  /** The folder the model's files are in. Absent in records of index version 1 (then derived from entry.path). */
  folder?: string;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A JSON object within size limits, with no deeper nesting than `depth` (so writing it cannot overflow the stack). */
function boundedJsonObject(limits: { depth: number; entries: number; nodes: number; string: number }): Validator<Record<string, unknown>> {
  return (value, where) => {
    let nodes = 0;
    const walk = (x: unknown, p: string, depth: number): unknown => {
      if (++nodes > limits.nodes) throw new ValidationError(p, `more than ${limits.nodes} values`);
      if (x === null || typeof x === 'boolean') return x;
      if (typeof x === 'number') {
        if (!Number.isFinite(x)) throw new ValidationError(p, 'expected a finite number');
        return x;
      }
      if (typeof x === 'string') {
        if (x.length > limits.string) throw new ValidationError(p, `string longer than ${limits.string} characters`);
        return x;
      }
      if (typeof x !== 'object') throw new ValidationError(p, `expected a JSON value, got ${typeof x}`);
      if (depth >= limits.depth) throw new ValidationError(p, `nested deeper than ${limits.depth} levels`);
      if (Array.isArray(x)) {
        if (x.length > limits.entries) throw new ValidationError(p, `array longer than ${limits.entries}`);
        return x.map((y, i) => walk(y, `${p}[${i}]`, depth + 1));
      }
      const keys = Object.keys(x);
      if (keys.length > limits.entries) throw new ValidationError(p, `more than ${limits.entries} keys`);
      return Object.fromEntries(
        keys.map((k) => {
          if (k.length > limits.string) throw new ValidationError(p, `key longer than ${limits.string} characters`);
          return [k, walk((x as Record<string, unknown>)[k], `${p}.${k.slice(0, 64)}`, depth + 1)];
        }),
      );
    };
    if (!isObject(value)) throw new ValidationError(where, 'expected an object');
    return walk(value, where, 0) as Record<string, unknown>;
  };
}

const L = LIBRARY_LIMITS;
const pathString = v.string({ nonEmpty: true, maxLength: L.path });
const modelFileName: Validator<string> = (value, where) => {
  const name = v.string({ nonEmpty: true, maxLength: L.fileName })(value, where);
  if (!isPlainName(name) || !isModelFileName(name)) throw new ValidationError(where, 'not the name of a model file');
  return name;
};

const entryValidator: Validator<ModelEntry> = (value, where) => {
  const e = v.object({
    id: v.string({ nonEmpty: true, maxLength: L.id }),
    name: v.string({ maxLength: L.fileName }),
    source: v.literal('user'),
    format: v.literal('safetensors', 'gguf', 'pytorch'),
    architecture: v.literal(...ARCHITECTURE_NAMES, 'unknown'),
    files: v.array(modelFileName, { maxLength: L.files }),
    baseUrl: v.string({ maxLength: L.text }),
    sizeBytes: v.number({ min: 0 }),
    path: pathString,
    description: v.optional(v.string({ maxLength: L.text })),
    parameters: v.optional(v.number({ min: 0 })),
    config: v.optional(boundedJsonObject(L.config)),
    lastOpened: v.optional(v.string({ maxLength: 64 })),
    warnings: v.optional(v.array(v.string({ maxLength: L.warning }), { maxLength: L.warnings })),
  })(value, where);
  return Object.fromEntries(Object.entries(e).filter(([, x]) => x !== undefined)) as unknown as ModelEntry;
};

const recordValidator: Validator<LibraryRecord> = (value, where) => {
  const r = v.object({ entry: entryValidator, validatedKey: v.string({ maxLength: 128 }), folder: v.optional(pathString) })(value, where);
  return r.folder === undefined ? { entry: r.entry, validatedKey: r.validatedKey } : (r as LibraryRecord);
};

/**
 * A version-1 record as version 2 reads it: its files narrowed to model files (version 1 recorded
 * every file of the folder), and its validation key cleared (the model is inspected again when
 * next opened).
 */
function migrateV1(raw: unknown): unknown {
  if (!isObject(raw) || !isObject(raw.entry)) return raw;
  const files = Array.isArray(raw.entry.files) ? raw.entry.files.filter((f) => typeof f !== 'string' || isModelFileName(f)) : raw.entry.files;
  return { ...raw, entry: { ...raw.entry, files }, validatedKey: '' };
}

export type ParsedIndex =
  | { records: LibraryRecord[]; dropped: string[] }
  | { error: string; newer?: number };

/** The index reader: the envelope must be right; records are kept one by one, the bad ones listed in `dropped`. */
export function parseIndex(value: unknown): ParsedIndex {
  if (!isObject(value)) return { error: 'is not a library index (expected a JSON object)' };
  const version = value.version;
  if (typeof version === 'number' && Number.isInteger(version) && version > INDEX_VERSION) {
    return { error: `was written by a newer version of Mamba Studio (index version ${version})`, newer: version };
  }
  if (version !== 1 && version !== INDEX_VERSION) return { error: 'is not a library index (no known "version")' };
  if (!Array.isArray(value.models)) return { error: 'is not a library index ("models" is not a list)' };
  const dropped: string[] = [];
  const records: LibraryRecord[] = [];
  const ids = new Set<string>();
  const models = value.models as unknown[];
  if (models.length > L.models) dropped.push(`${models.length - L.models} model(s) beyond the first ${L.models}`);
  for (let i = 0; i < Math.min(models.length, L.models); i++) {
    try {
      const record = recordValidator(version === 1 ? migrateV1(models[i]) : models[i], `models[${i}]`);
      if (ids.has(record.entry.id)) throw new ValidationError(`models[${i}].entry.id`, 'appears twice');
      ids.add(record.entry.id);
      records.push(record);
    } catch (error) {
      dropped.push(error instanceof ValidationError ? error.message : `models[${i}]: ${String(error)}`);
    }
  }
  return { records, dropped };
}

const cap = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/**
 * A record trimmed to what the index accepts: warnings shortened and counted, a config outside the
 * limits left out. Throws a ModelFileError when the model cannot be recorded at all (a path that
 * long, too many files).
 */
export function fitRecord(record: LibraryRecord): LibraryRecord {
  const { entry } = record;
  const warnings = entry.warnings?.map((w) => cap(w, L.warning));
  if (warnings && warnings.length > L.warnings) {
    const more = warnings.length - (L.warnings - 1);
    warnings.splice(L.warnings - 1, warnings.length, `… and ${more} more warning(s)`);
  }
  let config = entry.config;
  if (config !== undefined) {
    try {
      config = boundedJsonObject(L.config)(JSON.parse(JSON.stringify(config)), 'config');
    } catch {
      config = undefined;
    }
  }
  const fitted: ModelEntry = { ...entry, name: cap(entry.name, L.fileName) };
  delete fitted.config;
  delete fitted.warnings;
  if (config) fitted.config = config;
  if (warnings) fitted.warnings = warnings;
  const out: LibraryRecord = { ...record, entry: fitted };
  try {
    return recordValidator(JSON.parse(JSON.stringify(out)), 'record');
  } catch (error) {
    throw new ModelFileError(entry.path ?? entry.name, `cannot be recorded in the library (${error instanceof Error ? error.message : String(error)})`);
  }
}

const stamp = () => `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`;
const errCode = (error: unknown) => (error as NodeJS.ErrnoException).code ?? String(error);

/** Reads and writes the index file: queued, atomic writes with a backup; see the module comment. */
export class LibraryIndexFile {
  readonly file: string;
  readonly backup: string;
  private readonly dir: string;
  private queue: Promise<unknown> = Promise.resolve();
  private counter = 0;
  /** Why this session does not write the index, when it does not. */
  private readOnly: string | null = null;

  constructor(dir: string) {
    this.dir = dir;
    this.file = path.join(dir, 'library.json');
    this.backup = path.join(dir, 'library.json.bak');
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async readOne(file: string): Promise<ParsedIndex | null> {
    let text: string;
    try {
      const stat = await fs.stat(file);
      if (!stat.isFile()) return { error: 'is not a file' };
      if (stat.size > L.indexBytes) return { error: `is ${stat.size} bytes, more than a library index may be (${L.indexBytes})` };
      text = await fs.readFile(file, 'utf8');
    } catch (error) {
      const code = errCode(error);
      return code === 'ENOENT' ? null : { error: `cannot be read (${code})` };
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { error: 'is not valid JSON' };
    }
    return parseIndex(value);
  }

  /** Moves a file aside under a new name; null (and the session read-only) when it cannot be. */
  private async moveAside(file: string, why: string): Promise<string | null> {
    const aside = `${file}.corrupt-${stamp()}`;
    try {
      await fs.rename(file, aside);
      return aside;
    } catch (error) {
      this.readOnly = `${file} ${why} and could not be moved aside (${errCode(error)})`;
      return null;
    }
  }

  /** Removes temp files that a killed write left behind. */
  private async removeStrayTemps(): Promise<void> {
    const prefix = `${path.basename(this.file)}.tmp-`;
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(names.filter((n) => n.startsWith(prefix)).map((n) => fs.unlink(path.join(this.dir, n)).catch(() => undefined)));
  }

  private describeDropped(dropped: string[], kept: string | null): string {
    const shown = dropped.slice(0, 3).map((d) => cap(d, 300)).join('; ');
    const more = dropped.length > 3 ? `; and ${dropped.length - 3} more` : '';
    const where = kept ? ` The index as it was is kept at ${kept}.` : '';
    return `${dropped.length} entr${dropped.length === 1 ? 'y' : 'ies'} of the library index could not be read and ${dropped.length === 1 ? 'was' : 'were'} left out (${shown}${more}); re-open those models to add them again.${where}`;
  }

  /** Keeps a copy of a partly readable index before the next write replaces it. */
  private async copyAside(file: string): Promise<string | null> {
    const aside = `${file}.partial-${stamp()}`;
    try {
      await fs.copyFile(file, aside, fsConstants.COPYFILE_EXCL);
      return aside;
    } catch (error) {
      this.readOnly = `${file} could not be copied aside (${errCode(error)})`;
      return null;
    }
  }

  /** Loads the index, recovering from the backup or starting anew; `notices` say what happened. Never throws. */
  load(): Promise<{ records: LibraryRecord[]; notices: string[] }> {
    return this.enqueue(async () => {
      try {
        return await this.loadNow();
      } catch (error) {
        this.readOnly = `the library index could not be loaded (${error instanceof Error ? error.message : String(error)})`;
        return { records: [], notices: [`The library could not be loaded (${error instanceof Error ? error.message : String(error)}); its files are left as they are and changes are not saved this session.`] };
      }
    });
  }

  private async loadNow(): Promise<{ records: LibraryRecord[]; notices: string[] }> {
    await this.removeStrayTemps();
    const notices: string[] = [];
    const readOnlyNotice = () =>
      this.readOnly ? [`The library is read-only this session (${this.readOnly}): models opened or removed now are not remembered.`] : [];
    const main = await this.readOne(this.file);
    if (main && 'newer' in main) {
      this.readOnly = `${this.file} ${main.error}`;
      return { records: [], notices: readOnlyNotice() };
    }
    if (main && 'records' in main) {
      if (main.dropped.length) notices.push(this.describeDropped(main.dropped, await this.copyAside(this.file)));
      return { records: main.records, notices: [...notices, ...readOnlyNotice()] };
    }
    const backup = await this.readOne(this.backup);
    if (backup && 'newer' in backup) {
      this.readOnly = `${this.backup} ${backup.error}`;
      return { records: [], notices: readOnlyNotice() };
    }
    const backupOk = backup && 'records' in backup ? backup : null;
    if (main === null) {
      if (backupOk) {
        notices.push(`The library index was missing; restored ${backupOk.records.length} model(s) from ${this.backup}.`);
        if (backupOk.dropped.length) notices.push(this.describeDropped(backupOk.dropped, await this.copyAside(this.backup)));
        return { records: backupOk.records, notices: [...notices, ...readOnlyNotice()] };
      }
      if (backup === null) return { records: [], notices: [] }; // first run
      const aside = await this.moveAside(this.backup, (backup as { error: string }).error);
      notices.push(
        `The library index was missing and its backup ${this.backup} ${(backup as { error: string }).error}; ${aside ? `the backup was moved to ${aside} and ` : ''}a new, empty library started. Re-open your models to add them again.`,
      );
      return { records: [], notices: [...notices, ...readOnlyNotice()] };
    }
    const aside = await this.moveAside(this.file, main.error);
    if (backupOk) {
      notices.push(
        `The library index ${this.file} ${main.error}; ${aside ? `it was moved to ${aside} and ` : ''}the library restored from its backup (${backupOk.records.length} model(s)).`,
      );
      if (backupOk.dropped.length) notices.push(this.describeDropped(backupOk.dropped, await this.copyAside(this.backup)));
      if (aside && !this.readOnly) await this.write(backupOk.records);
      return { records: backupOk.records, notices: [...notices, ...readOnlyNotice()] };
    }
    let backupAside: string | null = null;
    if (backup) backupAside = await this.moveAside(this.backup, (backup as { error: string }).error);
    const kept = [aside && `the index is kept at ${aside}`, backupAside && `its backup ${(backup as { error: string }).error} and is kept at ${backupAside}`]
      .filter(Boolean)
      .join('; ');
    notices.push(
      `The library index ${this.file} ${main.error}, and no usable backup exists${kept ? ` (${kept})` : ''}; a new, empty library started. Nothing was deleted. Re-open your models to add them again.`,
    );
    return { records: [], notices: [...notices, ...readOnlyNotice()] };
  }

  /**
   * Writes the index (after every earlier write); false when the session is read-only (nothing
   * written). Rejects, writing nothing, when the text would not load as it is.
   */
  save(records: LibraryRecord[]): Promise<boolean> {
    const snapshot = [...records];
    return this.enqueue(() => this.write(snapshot));
  }

  private async write(records: LibraryRecord[]): Promise<boolean> {
    if (this.readOnly) return false;
    const text = `${JSON.stringify({ version: INDEX_VERSION, models: records }, null, 1)}\n`;
    if (text.length > L.indexBytes) throw new Error(`The library index would be larger than ${L.indexBytes} bytes; it was not saved`);
    const check = parseIndex(JSON.parse(text));
    if ('error' in check || check.dropped.length || check.records.length !== records.length) {
      const why = 'error' in check ? check.error : check.dropped[0];
      throw new Error(`The library index was not saved: it would not load again (${why ?? 'records lost'})`);
    }
    await fs.mkdir(this.dir, { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}-${++this.counter}-${randomBytes(6).toString('hex')}`;
    try {
      const handle = await fs.open(tmp, 'wx');
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      // The current index becomes the backup; a crash between the renames leaves the backup, which load() uses.
      await fs.rename(this.file, this.backup).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await fs.rename(tmp, this.file);
      return true;
    } catch (error) {
      await fs.unlink(tmp).catch(() => undefined);
      throw error;
    }
  }
}

const keyOf = (listing: { resolved: string; files: { name: string; size: number; mtimeMs: number }[] }) =>
  createHash('sha256')
    .update(JSON.stringify([listing.resolved, listing.files.map((f) => [f.name, f.size, f.mtimeMs])]))
    .digest('hex');

/**
 * Who a user model is: a folder, or a single weights file. A `.safetensors` (or PyTorch `.bin`) chosen inside a folder
 * is that folder's model (named after the folder, the same entry as opening the folder — not a
 * second "model.safetensors"); a `.gguf` file is a model of its own, named after the file.
 */
export function userModelIdentity(listing: Pick<ModelListing, 'resolved' | 'folder' | 'single'>): { key: string; name: string } {
  const asFolder = listing.single === null || /\.(safetensors|bin)$/i.test(listing.single);
  const key = asFolder ? listing.folder : listing.resolved;
  return { key, name: path.basename(key) || key };
}

export class Library {
  private records: LibraryRecord[] = [];
  private bundled: ModelEntry[] = [];
  private loaded: Promise<void> | null = null;
  /** Changes to the records, one after another: each computes from the records as the previous left them. */
  private changing: Promise<unknown> = Promise.resolve();
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

  /** Applies a change to the records once the index holds it (or the session is read-only); the records are unchanged when writing fails. */
  private change(edit: (records: LibraryRecord[]) => LibraryRecord[]): Promise<void> {
    const run = this.changing.then(async () => {
      const next = edit(this.records);
      if (next === this.records) return;
      await this.index.save(next);
      this.records = next;
    });
    this.changing = run.catch(() => undefined);
    return run;
  }

  async list(): Promise<ModelEntry[]> {
    await this.ensureLoaded();
    const user = [...this.records].sort((a, b) => (b.entry.lastOpened ?? '').localeCompare(a.entry.lastOpened ?? ''));
    return [...this.bundled, ...user.map((r) => r.entry)];
  }

  /** The entry with this id, or undefined. */
  async get(id: string): Promise<ModelEntry | undefined> {
    await this.ensureLoaded();
    return this.bundled.find((e) => e.id === id) ?? this.records.find((r) => r.entry.id === id)?.entry;
  }

  /**
   * What model:// may serve for this id: the model's folder and its own files. `folder` is null
   * when the model is no longer where it was opened (never its parent instead).
   */
  async served(id: string): Promise<ServedModel | undefined> {
    await this.ensureLoaded();
    const bundled = this.bundled.find((e) => e.id === id);
    if (bundled?.path) return { folder: bundled.path, files: bundled.files.filter(isModelFileName) };
    const record = this.records.find((r) => r.entry.id === id);
    if (!record) return undefined;
    let folder = record.folder ?? null;
    if (folder === null) {
      // A version-1 record: the path is the folder, or the weights file in it.
      const stat = await fs.stat(record.entry.path ?? '').catch(() => null);
      folder = stat?.isDirectory() ? (record.entry.path as string) : stat?.isFile() ? path.dirname(record.entry.path as string) : null;
    }
    const stat = folder === null ? null : await fs.stat(folder).catch(() => null);
    return { folder: stat?.isDirectory() ? folder : null, files: record.entry.files, path: record.entry.path };
  }

  /** Validates a model folder or weights file (headers only) and adds or refreshes it. */
  async open(target: string): Promise<ModelEntry> {
    await this.ensureLoaded();
    const listing = await listModel(target);
    const validatedKey = keyOf(listing);
    const identity = userModelIdentity(listing);
    const id = `user:${createHash('sha256').update(identity.key).digest('hex').slice(0, 16)}`;
    const existing = this.records.find((r) => r.entry.id === id);
    let fields: Pick<ModelEntry, 'format' | 'architecture' | 'parameters' | 'config' | 'warnings'>;
    let own: string[];
    if (existing && existing.validatedKey === validatedKey && existing.folder === listing.folder) {
      fields = existing.entry;
      own = existing.entry.files;
    } else {
      const files = listedModelFiles(listing);
      try {
        const inspection = await inspectModel(files);
        fields = inspectedFields(inspection);
        own = modelOwnFiles(inspection, await files.list());
      } finally {
        await files.close();
      }
    }
    const sizes = new Map(listing.files.map((f) => [f.name, f.size]));
    const record = fitRecord({
      entry: {
        id,
        name: identity.name,
        source: 'user',
        format: fields.format,
        architecture: fields.architecture,
        files: own,
        baseUrl: modelBaseUrl(id),
        sizeBytes: own.reduce((sum, f) => sum + (sizes.get(f) ?? 0), 0),
        path: listing.resolved,
        ...(fields.parameters !== undefined ? { parameters: fields.parameters } : {}),
        ...(fields.config ? { config: fields.config } : {}),
        ...(fields.warnings ? { warnings: fields.warnings } : {}),
        lastOpened: this.now().toISOString(),
      },
      validatedKey,
      folder: listing.folder,
    });
    await this.change((records) => {
      const others = records.filter((r) => r.entry.id !== id);
      if (others.length >= L.models) throw new Error(`The library holds ${L.models} models, the most it can; remove some to add ${listing.resolved}`);
      return [...others, record];
    });
    return record.entry;
  }

  /** Forgets a user model (its files are left alone). */
  async remove(id: string): Promise<boolean> {
    await this.ensureLoaded();
    let removed = false;
    await this.change((records) => {
      const next = records.filter((r) => r.entry.id !== id);
      removed = next.length !== records.length;
      return removed ? next : records;
    });
    return removed;
  }
}
