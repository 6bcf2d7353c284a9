/**
 * The model library, for now: the bundled demo models (scanned from the resources folder) and
 * the models opened in this run. Persistence, full validation and `model://` serving come with
 * the model-files issue; this keeps the same ModelEntry shape they will use.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { ModelEntry } from '../app/contract.js';
import { architectureOf, bundledModelEntry, ModelFileError, parseJsonFile } from '../app/formats/bundled.js';

async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new ModelFileError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parseJsonFile(file, text);
}

async function listFiles(dir: string): Promise<{ name: string; size: number }[]> {
  const names = await fs.readdir(dir);
  const files: { name: string; size: number }[] = [];
  for (const name of names) {
    const stat = await fs.stat(path.join(dir, name));
    if (stat.isFile()) files.push({ name, size: stat.size });
  }
  return files;
}

export class Library {
  private readonly user = new Map<string, ModelEntry>();
  private bundled: ModelEntry[] | null = null;
  /** Problems met while scanning bundled models: shown, never fatal. */
  readonly warnings: string[] = [];

  constructor(private readonly bundledDir: string) {}

  async list(): Promise<ModelEntry[]> {
    return [...(await this.bundledModels()), ...this.user.values()];
  }

  async bundledModels(): Promise<ModelEntry[]> {
    if (this.bundled) return this.bundled;
    const entries: ModelEntry[] = [];
    let names: string[] = [];
    try {
      names = (await fs.readdir(this.bundledDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      this.warnings.push(`${this.bundledDir}: bundled models folder not found`);
    }
    for (const name of names.sort()) {
      const dir = path.join(this.bundledDir, name);
      try {
        const [files, studio, config] = await Promise.all([
          listFiles(dir),
          readJson(path.join(dir, 'studio.json')),
          readJson(path.join(dir, 'config.json')),
        ]);
        entries.push({ ...bundledModelEntry({ name, files, studio, config }, `model://bundled:${name}`), path: dir });
      } catch (error) {
        this.warnings.push(error instanceof Error ? error.message : String(error));
      }
    }
    this.bundled = entries;
    return entries;
  }

  /** Opens a model folder or a weights file; throws a ModelFileError naming the path if it is none. */
  async open(target: string): Promise<ModelEntry> {
    const resolved = path.resolve(target);
    let stat;
    try {
      stat = await fs.stat(resolved);
    } catch (error) {
      throw new ModelFileError(resolved, `cannot be opened (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    const dir = stat.isDirectory() ? resolved : path.dirname(resolved);
    const files = stat.isDirectory() ? await listFiles(dir) : [{ name: path.basename(resolved), size: stat.size }];
    const weights = files.filter((f) => /\.(safetensors|gguf)$/i.test(f.name));
    if (weights.length === 0) {
      throw new ModelFileError(resolved, 'no model here: expected a .safetensors or .gguf file, or a folder holding one');
    }
    const format = weights.some((f) => /\.gguf$/i.test(f.name)) && !weights.some((f) => /\.safetensors$/i.test(f.name)) ? 'gguf' : 'safetensors';
    let architecture: ModelEntry['architecture'] = 'unknown';
    if (stat.isDirectory() && files.some((f) => f.name === 'config.json')) {
      architecture = architectureOf(await readJson(path.join(dir, 'config.json')));
    }
    const id = `user:${createHash('sha256').update(resolved).digest('hex').slice(0, 16)}`;
    const entry: ModelEntry = {
      id,
      name: path.basename(resolved),
      source: 'user',
      format,
      architecture,
      files: files.map((f) => f.name).sort(),
      baseUrl: `model://${id}`,
      sizeBytes: files.reduce((sum, f) => sum + f.size, 0),
      path: resolved,
    };
    this.user.set(id, entry);
    return entry;
  }

  remove(id: string): boolean {
    return this.user.delete(id);
  }
}
