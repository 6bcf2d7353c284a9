/**
 * Scans a bundled-models folder (resources/models) into library entries, inspecting each model's
 * headers. Used by main (desktop) and by the Vite plugin that serves web mode.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ModelEntry } from '../contract.js';
import { inspectModel } from '../arch/inspect.js';
import { bundledModelEntry, bundledWarnings, inspectedFields, parseJsonFile, type InspectedFields } from '../library/bundled.js';
import { folderModelFiles } from './folder.js';

/** Reads a model folder's (or file's) headers: what the library records about it. `name`: how its warnings name the model (default: its path). */
export async function inspectOnDisk(target: string, name?: string): Promise<InspectedFields> {
  const files = await folderModelFiles(target);
  try {
    return inspectedFields(await inspectModel(name === undefined ? files : { ...files, name }));
  } finally {
    await files.close();
  }
}

export async function listFilesWithStats(dir: string): Promise<{ name: string; size: number; mtimeMs: number }[]> {
  const files = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const stat = await fs.stat(path.join(dir, entry.name));
    files.push({ name: entry.name, size: stat.size, mtimeMs: stat.mtimeMs });
  }
  return files.sort((a, b) => a.name.localeCompare(b.name));
}

/** Every model folder under `dir`, as entries; problems become warnings, never exceptions. */
export async function scanBundledModels(
  dir: string,
  baseUrlFor: (name: string) => string,
): Promise<{ models: ModelEntry[]; warnings: string[] }> {
  let names: string[];
  try {
    names = (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch {
    return { models: [], warnings: [`The bundled models folder ${dir} is missing.`] };
  }
  const models: ModelEntry[] = [];
  const warnings: string[] = [];
  for (const name of names) {
    const folder = path.join(dir, name);
    try {
      const read = async (file: string) => parseJsonFile(path.join(folder, file), await fs.readFile(path.join(folder, file), 'utf8'));
      const files = await listFilesWithStats(folder);
      const studio = await read('studio.json');
      const entry = bundledModelEntry({ name, files, studio, config: await read('config.json') }, baseUrlFor(name));
      // Warnings name the model by its folder's name, not its path (web mode serves them to pages).
      const inspected = await inspectOnDisk(folder, name);
      const warnings = bundledWarnings(inspected.warnings ?? [], name, studio);
      const { warnings: _all, ...fields } = inspected;
      models.push({ ...entry, ...fields, ...(warnings.length > 0 ? { warnings } : {}), path: folder });
    } catch (error) {
      warnings.push(`Bundled model ${name} could not be loaded: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { models, warnings };
}
